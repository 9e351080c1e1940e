"""Frozen encoders behind one interface: media tensors in, ``TowerOutput`` (features, mask, times) out.

Every tower is in eval mode with ``requires_grad_(False)``; ``build_tower(modality, spec)`` picks the class.
"""

from __future__ import annotations

from affectllm.model.towers.base import FrozenTower, TowerOutput


def build_tower(modality: str, spec, load_weights: bool = True) -> FrozenTower:
    """Build the frozen tower for ``modality`` ("vision" | "audio" | "whisper") from its spec."""
    if modality == "vision":
        from affectllm.model.towers.vision import build_vision_tower

        return build_vision_tower(spec, load_weights=load_weights)
    if modality == "audio":
        from affectllm.model.towers.audio import HFAudioTower

        return HFAudioTower(spec, load_weights=load_weights)
    if modality == "whisper":
        from affectllm.model.towers.whisper import WhisperTower

        return WhisperTower(spec, load_weights=load_weights)
    raise ValueError(f"unknown modality {modality!r}; expected vision, audio or whisper")


__all__ = ["FrozenTower", "TowerOutput", "build_tower"]
