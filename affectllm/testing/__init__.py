"""Tiny random AffectLLM models of the real architectures, built offline in seconds (tests, extensions).

``tiny_model_and_processor(**options)`` builds the model of ``tiny_config(**options)`` (``affectllm.model.tiny``:
towers, LLM and tokenizer at hidden sizes of 32-64 and 1-2 layers) with its processor; ``save_tiny_checkpoint``
writes it as a checkpoint folder. Library code never imports this package; it uses ``affectllm.model.tiny``.
"""

from __future__ import annotations

from typing import Any

from affectllm.model.tiny import (
    TINY_HUBERT,
    TINY_OPEN_CLIP,
    TINY_WHISPER,
    tiny_config,
    tiny_text_config,
    tiny_tokenizer,
)

__all__ = ["TINY_HUBERT", "TINY_OPEN_CLIP", "TINY_WHISPER", "save_tiny_checkpoint", "tiny_config",
           "tiny_model_and_processor", "tiny_text_config", "tiny_tokenizer"]


def tiny_model_and_processor(seed: int = 0, **options: Any):
    """(AffectLLMForConditionalGeneration, AffectLLMProcessor) for ``tiny_config(**options)``."""
    import torch

    from affectllm.model.builder import build_processor, model_from_config

    torch.manual_seed(seed)
    config = tiny_config(**options)
    processor = build_processor(config, tiny_tokenizer())
    model = model_from_config(config, processor)
    return model, processor


def save_tiny_checkpoint(folder, seed: int = 0, **options: Any):
    """Write the tiny model as a self-contained checkpoint folder (declared untrained); returns its path.

    The CLI and ``affectllm.load`` take it like any checkpoint (``--model FOLDER``): no special model name.
    """
    from pathlib import Path

    from affectllm.model.checkpoint import save_checkpoint

    model, processor = tiny_model_and_processor(seed=seed, **options)
    return save_checkpoint(model, processor, Path(folder), include_tokenizer=True, self_contained=True,
                           trained=False)
