"""Convert AffectGPT's published checkpoint (a ``torch.save`` dict) into a normal AffectLLM checkpoint folder.

The input is read with ``torch.load(weights_only=True)`` only; every key of its ``"model"`` dict is mapped
(LoRA tensors -> ``language_model.…``, projector Linear layers -> ``multi_modal_projector.…``) or named in the
error. The output folder holds ``config.json`` (towers and LLM named by id/path), ``generation_config.json``
(greedy, ``stop_strings: ["###"]``), ``model.safetensors`` (projector + LoRA), the tokenizer and
``processor_config.json`` (AffectGPT's plain-text template). No tower or LLM weight is copied.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch

from affectllm.model import affectgpt as ag

LORA_PREFIX = "llama_model.base_model.model."
PROJECTOR_KEYS = ("image_llama_proj", "video_attention_mlp", "affectgpt_proj", "audio_attention_mlp",
                  "audio_llama_proj", "multi_video_embs", "multi_audio_embs", "attention_mlp", "fc_att",
                  "multi_llama_proj")
# non-trainable buffers their saver keeps from the frozen towers/LLM (transformers 4.x); rebuilt from the source
TOWER_BUFFER_SUFFIXES = ("position_ids", "inv_freq", "original_inv_freq")


class ConversionError(ValueError):
    """The checkpoint cannot be converted; the message names the file, the problem and the fix."""


def load_affectgpt_state(path: str | Path) -> dict[str, torch.Tensor]:
    """The ``"model"`` dict of their checkpoint, loaded with ``weights_only=True`` (nothing else is tried)."""
    path = Path(path)
    if not path.is_file():
        raise ConversionError(f"{path}: no such file; pass AffectGPT's checkpoint_0000NN_loss_*.pth")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, AttributeError, TypeError) as e:
        raise ConversionError(
            f"{path}: refused: it cannot be read with torch.load(weights_only=True) ({type(e).__name__}: "
            f"{str(e).splitlines()[0][:200]}). Published AffectGPT checkpoints hold only tensors, numbers and "
            "strings; this file needs arbitrary code to unpickle and will not be loaded.") from e
    state = obj.get("model") if isinstance(obj, dict) else None
    if not isinstance(state, dict) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConversionError(f"{path}: not an AffectGPT checkpoint (expected a dict whose 'model' entry maps "
                              "parameter names to tensors)")
    return state


def map_keys(state: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str], list[str]]:
    """-> (AffectLLM-named tensors, dropped tower buffers, unknown keys)."""
    mapped, dropped, unknown = {}, [], []
    for key, tensor in state.items():
        head = key.split(".", 1)[0]
        if key.startswith(LORA_PREFIX) and ".lora_" in key:
            mapped["language_model.base_model.model." + key[len(LORA_PREFIX):]] = tensor
        elif head in PROJECTOR_KEYS:
            mapped["multi_modal_projector." + key] = tensor
        elif head in ("visual_encoder", "acoustic_encoder", "llama_model") and key.endswith(TOWER_BUFFER_SUFFIXES):
            dropped.append(key)
        else:
            unknown.append(key)
    return mapped, dropped, unknown


def _sub_config(source: str, published: dict, sub: str | None = None) -> dict:
    """The config dict of a tower/LLM source; the embedded published values when it cannot be fetched."""
    from transformers import AutoConfig

    try:
        cfg = AutoConfig.from_pretrained(source).to_dict()
    except Exception as e:  # noqa: BLE001
        if source not in (ag.VISION_MODEL, ag.AUDIO_MODEL, ag.TEXT_MODEL):
            raise ConversionError(f"{source}: cannot read its config.json ({type(e).__name__}); pass a local "
                                  "folder or a hub id reachable from here") from e
        cfg = dict(published)
    return cfg


def skeleton(config):
    """The model on the meta device (no memory, no download): names and shapes of every tensor."""
    from affectllm.model.modeling_affectllm import AffectLLMForConditionalGeneration

    with torch.device("meta"):
        return AffectLLMForConditionalGeneration(config, load_weights=False)


def arch_config(vision_model: str, audio_model: str, text_model: str, variant: str,
                vision_arch: dict | None = None, audio_arch: dict | None = None, text_arch: dict | None = None):
    """AffectGPT's config with the architecture dicts filled in (so a meta skeleton can be built)."""
    vision_arch = vision_arch or _sub_config(vision_model, ag.PUBLISHED_VISION_ARCH)
    audio_arch = audio_arch or _sub_config(audio_model, ag.PUBLISHED_AUDIO_ARCH)
    text_arch = text_arch or _sub_config(text_model, ag.PUBLISHED_TEXT_ARCH)
    return ag.affectgpt_config(vision_model, audio_model, text_model, variant, vision_arch=_clean(vision_arch),
                               audio_arch=_clean(audio_arch), text_arch=_clean(text_arch))


def _clean(cfg: dict) -> dict:
    drop = ("architectures", "transformers_version", "_name_or_path", "torch_dtype", "dtype", "auto_map")
    return {k: v for k, v in cfg.items() if k not in drop}


def convert_checkpoint(checkpoint: str | Path, out: str | Path, vision_model: str = ag.VISION_MODEL,
                       audio_model: str = ag.AUDIO_MODEL, text_model: str = ag.TEXT_MODEL,
                       variant: str = "frame") -> dict:
    """Convert; returns a summary {tensors, dropped_buffers, out}. Raises ConversionError with key names."""
    from safetensors.torch import save_file
    from transformers import AutoTokenizer

    from affectllm.model.builder import build_processor, set_placeholder_ids
    from affectllm.model.checkpoint import save_processor

    ag.media_template(variant)  # validates the variant
    state = load_affectgpt_state(checkpoint)
    mapped, dropped, unknown = map_keys(state)
    config = arch_config(vision_model, audio_model, text_model, variant)
    tokenizer = AutoTokenizer.from_pretrained(text_model)
    processor = build_processor(config, tokenizer, chat_template=ag.CHAT_TEMPLATE)
    processor.media_template = ag.media_template(variant)
    meta = skeleton(config)
    expected = {k: v.shape for k, v in meta.state_dict().items()
                if k.startswith("multi_modal_projector.") or ".lora_" in k}
    missing = sorted(set(expected) - set(mapped))
    leftover = sorted(unknown + [k for k in mapped if k not in expected])
    wrong = sorted(k for k in mapped if k in expected and tuple(mapped[k].shape) != tuple(expected[k]))
    if missing or leftover or wrong:
        lines = [f"{checkpoint}: does not fit AffectGPT (CLIP {vision_model}, HuBERT {audio_model}, LLM {text_model})"]
        for title, keys in (("missing", missing), ("left over", leftover), ("wrong shape", wrong)):
            if keys:
                lines.append(f"  {len(keys)} {title}: " + ", ".join(keys[:8]) + (" ..." if len(keys) > 8 else ""))
        lines.append("  pass the --vision-model/--audio-model/--text-model it was trained with, or a complete "
                     "checkpoint_*.pth from the AffectGPT release")
        raise ConversionError("\n".join(lines))
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    config.weights_included = []
    set_placeholder_ids(config, processor.placeholder_ids)
    config.save_pretrained(out)
    generation_config(text_model, tokenizer).save_pretrained(out)
    tmp = out / "model.safetensors.tmp"
    save_file({k: v.contiguous() for k, v in mapped.items()}, str(tmp), metadata={"format": "pt"})
    tmp.replace(out / "model.safetensors")
    tokenizer.save_pretrained(out, save_jinja_files=False)
    save_processor(processor, out)
    return {"tensors": len(mapped), "dropped_buffers": dropped, "out": str(out)}


def generation_config(text_model: str, tokenizer):
    """Greedy decoding that stops at AffectGPT's ``###`` separator (or the LLM's end of sequence)."""
    from transformers import GenerationConfig

    try:
        gen = GenerationConfig.from_pretrained(text_model)
    except Exception:  # noqa: BLE001  (offline with a hub id: the tokenizer's eos is enough)
        gen = GenerationConfig()
    gen.do_sample, gen.temperature, gen.top_p, gen.top_k = False, None, None, None
    gen.repetition_penalty = 1.0  # as their answer_sample
    gen.stop_strings = [ag.STOP]
    gen.max_new_tokens = 1200  # their inference setting
    if gen.eos_token_id is None:
        gen.eos_token_id = tokenizer.eos_token_id
    if gen.pad_token_id is None:
        gen.pad_token_id = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return gen
