"""GGUF -> a plain transformers model, the one conversion path of every embedded language model.

transformers dequantises the GGUF (its loader knows llama, gemma3, ...), but a gguf-loaded model refuses
``save_pretrained``; ``dequantise_gguf`` re-wraps the weights in a fresh ``AutoModelForCausalLM.from_config``
(strict ``load_state_dict``: nothing dropped) and returns it with the GGUF's tokenizer.
"""

from __future__ import annotations

import time
from pathlib import Path

import torch


def dequantise_gguf(src: Path, gguf_name: str, timings: dict[str, float] | None = None, progress: bool = False):
    """``(model, tokenizer)`` from ``src / gguf_name``: an fp32 plain model without a quantization config."""
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from transformers.utils import logging as hf_logging

    timings = timings if timings is not None else {}
    if not progress:
        hf_logging.disable_progress_bar()
    try:
        t = time.perf_counter()
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=gguf_name)
        timings["tokenizer"] = time.perf_counter() - t
        t = time.perf_counter()
        gguf_model = AutoModelForCausalLM.from_pretrained(src, gguf_file=gguf_name, dtype=torch.float32)
        timings["dequantise"] = time.perf_counter() - t
    finally:
        if not progress:
            hf_logging.enable_progress_bar()
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config  # the weights are plain tensors now
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict(), strict=True)
    return model.eval(), tokenizer
