"""Loading a model with its processor: the one loader behind ``affectllm.load`` and every CLI command.

``load(model=None)`` gives the embedded default (SmolLM2-135M-Instruct with its shipped starter adapter when
present, else the untrained default configuration); ``model`` may name an embedded backbone (``smollm2``,
``gemma``: its shipped starter adapter, see ``STARTERS``), an AffectLLM checkpoint folder, or a causal-LM id/path to put under the default
towers untrained (``registry:smollm2-135m-instruct`` for the bare backbone); ``adapter`` names a checkpoint to
load on top of ``model``. Whether the trainable parts were trained is the checkpoint's declared
``config.trained``, not something decided here.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from affectllm.model.defaults import DEFAULT_BACKBONE

_ASSETS = Path(__file__).parent / "assets"
# The starter adapter trained for each embedded backbone by train/make_starter.sh (BACKBONE=...).
STARTERS = {"smollm2": _ASSETS / "starter-smollm2", "gemma": _ASSETS / "starter"}
STARTER_DIR = STARTERS[DEFAULT_BACKBONE]  # the default's starter


def shipped_starter(model: str | None) -> Path | None:
    """The shipped starter for ``model`` (None: the default; a backbone name), unless a local folder of that
    name exists (a path the user means) or the adapter is absent."""
    if model is None:
        return STARTER_DIR if is_checkpoint(STARTER_DIR) else None
    path = STARTERS.get(model.lower())
    if path is None or Path(model).exists() or not is_checkpoint(path):
        return None
    return path


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def native_cpu_bf16() -> bool:
    """Whether this CPU computes bfloat16 natively (AVX512-BF16 or AMX), where oneDNN's bf16 matmuls beat
    float32; elsewhere bf16 is emulated and slower."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # an older torch, or a build without the check
        return False


def resolve_dtype(dtype: str | torch.dtype = "auto", device: torch.device | None = None,
                  shipped: bool = False) -> torch.dtype:
    """``dtype="auto"``: bfloat16 on a GPU; on the CPU, ``AUTO_CPU_DTYPE`` for a shipped starter (``shipped``)
    where the CPU has native bf16, float32 otherwise (a user's checkpoint loads as trained)."""
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        if device is not None and device.type == "cuda":
            return torch.bfloat16
        from affectllm.model.limits import AUTO_CPU_DTYPE

        on_cpu = device is None or device.type == "cpu"
        bf16 = shipped and on_cpu and AUTO_CPU_DTYPE == "bfloat16" and native_cpu_bf16()
        return torch.bfloat16 if bf16 else torch.float32
    names = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
             "float16": torch.float16, "fp16": torch.float16}
    if dtype not in names:
        raise ValueError(f"dtype {dtype!r}: choose auto, {', '.join(names)}")
    return names[dtype]


def is_checkpoint(path: str | Path) -> bool:
    cfg = Path(path) / "config.json"
    return cfg.is_file() and json.loads(cfg.read_text()).get("model_type") == "affectllm"


def source_name(ckpt: str | Path | None, model: str | None, starter: Path | None) -> str:
    """What records and the server call the loaded model: ``embedded-default`` (no model named) /
    ``embedded-gemma`` for a shipped starter (never the install path), else the checkpoint or model as given."""
    if starter is not None:
        return "embedded-default" if model is None else f"embedded-{model.lower()}"
    return str(ckpt or model or "embedded-default")


def load(model: str | None = None, adapter: str | None = None, device: str = "auto", dtype: str = "auto",
         quantization: str | None = "auto", merge_lora: bool = True):
    """Load ``(model, processor)`` for inference (see the module docstring for what ``model`` and ``adapter`` name).

    ``dtype``: "auto" (``resolve_dtype``: bfloat16 on a GPU, and for a shipped starter on a CPU with native bf16;
    float32 otherwise), float32, bfloat16, float16.
    ``quantization``: None / "none", "8bit" / "4bit" (bitsandbytes, CUDA), "dynamic-int8" (CPU), or "auto":
    ``AUTO_CPU_QUANTIZATION`` for a shipped starter (the embedded default, ``--model gemma``) on the CPU in
    float32, none otherwise. ``merge_lora``: fold the LoRA into the LLM's weights (faster decoding; the adapter
    still saves as before).
    """
    from affectllm.model.builder import build_processor, model_from_config
    from affectllm.model.checkpoint import load_checkpoint
    from affectllm.model.defaults import default_config
    from affectllm.utils.weights_guard import refuse_pickled_weights

    dev = resolve_device(device)
    if model is not None and model.lower() in ("affectgpt", "affectgpt-frame", "affectgpt-face"):
        from affectllm.compat.affectgpt_hub import ensure_affectgpt  # hub download + one-time conversion

        model = str(ensure_affectgpt(model.lower()))
    refuse_pickled_weights(model, "--model")
    refuse_pickled_weights(adapter, "--adapter")
    ckpt = adapter or (model if model is not None and is_checkpoint(model) else None)
    starter = shipped_starter(model) if ckpt is None else None
    name = source_name(ckpt, model, starter)
    dt = resolve_dtype(dtype, dev, shipped=starter is not None)
    quantization = resolve_quantization(quantization, starter is not None, dev, dt)
    if starter is not None:
        ckpt, model = starter, None  # the starter's config names its backbone
    if ckpt is not None:
        text_model = model if (model is not None and not is_checkpoint(model)) else None
        m, proc = load_checkpoint(ckpt, dtype=dt, quantization=quantization, text_model=text_model)
    else:
        from transformers import AutoTokenizer

        from affectllm.model.language_model import resolve_text_model

        config = default_config()  # trained=False: projector and LoRA are freshly initialised
        if model is not None:
            config.text_model = model
        tok = AutoTokenizer.from_pretrained(resolve_text_model(config.text_model))
        proc = build_processor(config, tok)
        m = model_from_config(config, proc, dtype=dt, quantization=quantization)
    if not m.quantized:
        m.to(dev)  # both paths above bound the model to its processor already
    m.eval()
    if merge_lora or quantization == "dynamic-int8":
        m.merge_lora()
    if quantization == "dynamic-int8":
        apply_dynamic_int8(m, dev)
    m.source_name = name
    return m, proc


def resolve_quantization(quantization: str | None, shipped: bool, device: torch.device,
                         dtype: torch.dtype) -> str | None:
    """``load``'s quantisation: "auto" becomes ``AUTO_CPU_QUANTIZATION`` for a shipped starter on the CPU in
    float32 (None elsewhere); "none" becomes None; other names pass through."""
    from affectllm.model.limits import AUTO_CPU_QUANTIZATION, QUANTIZATIONS

    if quantization not in (None, *QUANTIZATIONS):
        raise ValueError(f"quantization={quantization!r}: use one of {', '.join(QUANTIZATIONS)}")
    if quantization == "auto":
        auto = shipped and device.type == "cpu" and dtype == torch.float32
        return AUTO_CPU_QUANTIZATION if auto and AUTO_CPU_QUANTIZATION else None
    return None if quantization == "none" else quantization


def apply_dynamic_int8(model, device) -> None:
    """``quantization="dynamic-int8"``: the merged LLM's linear layers become dynamic int8 (CPU only); the
    model is then inference-only (``model.quantized``: no saving, no further merging)."""
    from affectllm.model.language_model import quantize_dynamic_int8

    if getattr(device, "type", str(device)) != "cpu":
        raise ValueError(f"quantization='dynamic-int8' runs on the CPU only (device {device}); on a GPU use "
                         "--quantization 8bit or 4bit")
    quantize_dynamic_int8(model.language_model)
    model.quantized, model.quantization_kind = True, "dynamic-int8"
