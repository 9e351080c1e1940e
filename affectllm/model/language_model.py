"""Building the language model: any AutoModelForCausalLM by id/path/registry name or from a config,
optionally 4-bit (bitsandbytes NF4), with LoRA (peft) on the LLM only."""

from __future__ import annotations

from typing import Any

import torch

from affectllm.model.limits import CPU_QUANTIZATIONS, QUANTIZATIONS

REGISTRY_PREFIX = "registry:"


def resolve_text_model(name: str) -> str:
    """Map ``registry:<name>`` (or a bare embedded alias such as ``smollm2`` / ``gemma`` that is not a local
    path) to the converted local folder of an embedded language model; other names pass through."""
    from pathlib import Path

    from affectllm.model.defaults import LLM_BACKBONES
    from affectllm.offline.prepare import ensure_language_model

    if name in LLM_BACKBONES and not Path(name).exists():
        name = LLM_BACKBONES[name]
    if name.startswith(REGISTRY_PREFIX):
        key = name[len(REGISTRY_PREFIX):]
        try:
            return str(ensure_language_model(key))
        except (KeyError, ValueError) as e:
            raise ValueError(f"{name!r}: unknown embedded model; known: "
                             + ", ".join(f"{k} ({v})" for k, v in LLM_BACKBONES.items())) from e
    from affectllm.utils.weights_guard import refuse_pickled_weights

    refuse_pickled_weights(name)
    return name




def bnb_4bit_config(compute_dtype: torch.dtype = torch.bfloat16):
    """The QLoRA quantisation: 4-bit NF4 with double quantisation."""
    from transformers import BitsAndBytesConfig

    return BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
                              bnb_4bit_compute_dtype=compute_dtype)


def quantization_config(quantization: str | None, compute_dtype: torch.dtype | None = None):
    """``BitsAndBytesConfig`` for ``"4bit"`` (NF4, ``bnb_4bit_config``) or ``"8bit"`` (LLM.int8()); None for
    none; ValueError naming the accepted values otherwise."""
    if quantization in (None, "none", *CPU_QUANTIZATIONS):
        return None  # a CPU quantisation is applied after loading (``quantize_dynamic_int8``)
    if quantization == "4bit":
        return bnb_4bit_config(compute_dtype or torch.bfloat16)
    if quantization == "8bit":
        from transformers import BitsAndBytesConfig

        return BitsAndBytesConfig(load_in_8bit=True)
    raise ValueError(f"quantization={quantization!r}: use one of {', '.join(QUANTIZATIONS)}")


def quantize_dynamic_int8(module: torch.nn.Module) -> int:
    """Replace every ``nn.Linear`` under ``module`` (the merged LLM, LM head included) by torch's dynamic int8
    linear in place: int8 weights, activations quantised per call, fp32 accumulation (CPU only). On 2 cores it
    decodes SmolLM2-135M ~2.7x faster than fp32 (``bench/decode_speed.py``). Returns the layers replaced."""
    from torch.ao.quantization import quantize_dynamic

    before = sum(isinstance(m, torch.nn.Linear) for m in module.modules())
    quantize_dynamic(module, {torch.nn.Linear}, dtype=torch.qint8, inplace=True)
    return before - sum(type(m) is torch.nn.Linear for m in module.modules())


def is_quantized(quantization: str | None) -> bool:
    """True for the bitsandbytes kinds (their weights stay on the GPU they were loaded to, LoRA stays unmerged)."""
    return quantization in ("4bit", "8bit")


def check_quantization_supported(quantization: str = "4bit") -> None:
    """bitsandbytes needs its native library; raise a clear error where it cannot run."""
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as e:
        raise ImportError(f"quantization={quantization!r} needs bitsandbytes: pip install 'affectllm[gpu]', or "
                          "load without quantization (--quantization none)") from e
    if quantization != "4bit":
        return  # LLM.int8() checks its device when the weights load
    try:
        from bitsandbytes.functional import quantize_4bit

        quantize_4bit(torch.zeros(64, dtype=torch.float32), quant_type="nf4")
    except Exception as e:  # noqa: BLE001
        raise RuntimeError(
            f"4-bit quantization is not available on this machine ({type(e).__name__}: {e}). "
            "Install bitsandbytes with a backend for your hardware, or load without quantization='4bit'."
        ) from e


def build_language_model(config, load_weights: bool = True, dtype: torch.dtype | None = None,
                         quantization: str | None = None, llm_kwargs: dict[str, Any] | None = None):
    """The causal LM named by ``config.text_model`` (weights loaded) or built from ``config.text_config``."""
    from transformers import AutoModelForCausalLM

    kwargs = dict(llm_kwargs or {})
    # no dtype asked: float32 (the model is built on CPU, where a float16-stored LLM would run slowly and off the
    # reference); callers wanting bf16/fp16 (``load`` on a GPU) pass it
    qconfig = quantization_config(quantization, dtype)  # validates the name first
    if dtype is not None or qconfig is None:
        kwargs["dtype"] = dtype if dtype is not None else torch.float32
    if config.text_model is not None and load_weights:
        if qconfig is not None:
            check_quantization_supported(quantization)
            kwargs["quantization_config"] = qconfig
        return AutoModelForCausalLM.from_pretrained(resolve_text_model(config.text_model), **kwargs), True
    if config.text_config is None:
        raise ValueError("AffectLLMConfig needs `text_model` (id, path or registry name) or `text_config`")
    if qconfig is not None:
        raise ValueError(f"quantization={quantization!r} needs pretrained weights (`text_model`), not a random "
                         "text_config")
    model = AutoModelForCausalLM.from_config(config.text_config, dtype=dtype or torch.float32)
    return model, False


def apply_lora(model, lora_spec, quantized: bool = False):
    """Wrap the LLM with peft LoRA; every non-LoRA LLM weight stays frozen."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    from affectllm.model.configuration_affectllm import DEFAULT_LORA_TARGETS

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    targets = lora_spec.target_modules or _present_targets(model, DEFAULT_LORA_TARGETS)
    cfg = LoraConfig(r=lora_spec.r, lora_alpha=lora_spec.alpha, lora_dropout=lora_spec.dropout,
                     target_modules=targets, bias="none", task_type="CAUSAL_LM")
    return get_peft_model(model, cfg)


def _present_targets(model, candidates: list[str]) -> list[str]:
    names = {n.rsplit(".", 1)[-1] for n, _ in model.named_modules()}
    found = [t for t in candidates if t in names]
    if not found:
        raise ValueError(f"none of the default LoRA targets {candidates} exist in {type(model).__name__}; "
                         "set lora_config.target_modules")
    return found
