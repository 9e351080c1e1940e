"""AffectLLM: a multimodal LLM that watches and listens to a video and says which emotions people show, and why.

Public API (imports are lazy so ``affectllm --help`` and the evaluation harness stay light)::

    model, processor = affectllm.load()
    report = affectllm.predict(model, processor, video="clip.mp4")
"""

from __future__ import annotations

from typing import Any

__version__ = "0.1.0"

from affectllm.utils.moved import install as _install_moved

_install_moved()  # old module paths (affectllm.modeling_affectllm, ...) keep working

_LAZY = {
    "load": "affectllm.api",
    "predict": "affectllm.api",
    "generate_reports": "affectllm.api",
    "AffectLLMConfig": "affectllm.model.configuration_affectllm",
    "AffectLLMForConditionalGeneration": "affectllm.model.modeling_affectllm",
    "AffectLLMProcessor": "affectllm.model.processing_affectllm",
    "EmotionReport": "affectllm.report",
    "parse_report": "affectllm.report",
    "format_report": "affectllm.report",
    "save_checkpoint": "affectllm.model.checkpoint",
    "load_checkpoint": "affectllm.model.checkpoint",
}

__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'affectllm' has no attribute {name!r}")

