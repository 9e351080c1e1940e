"""Saving and loading a model together with its processor (one folder, JSON + safetensors only).

The tokenizer travels with the checkpoint by default; ``include_tokenizer=False`` keeps a checkpoint small
(the shipped starter adapter) and the tokenizer is then rebuilt from the config's text model.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from affectllm.utils.fingerprint import write_fingerprint

PROCESSOR_FILE = "processor_config.json"


def save_checkpoint(model, processor, folder: str | Path, include_tokenizer: bool = True,
                    self_contained: bool = False, trained: bool | None = None,
                    state_dict: dict | None = None) -> Path:
    """Write model + processor to ``folder``; ``trained`` (when given) is declared in the config first.

    ``state_dict``: the model's full state gathered from sharded processes (FSDP), saved in place of the
    model's own (sharded) tensors."""
    folder = Path(folder)
    if trained is not None:
        model.config.trained = bool(trained)
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder, self_contained=self_contained, state_dict=state_dict)
    if include_tokenizer:  # chat templates stay inside the JSON files: the folder holds .json + .safetensors only
        processor.tokenizer.save_pretrained(folder, save_jinja_files=False)
    save_processor(processor, folder)
    write_fingerprint(folder)  # again, now that the processor config (part of the hash) is written
    return folder


def save_processor(processor, folder: str | Path) -> None:
    """processor_config.json: the processor's settings and chat template (no tokenizer)."""
    d = {k: v for k, v in processor.to_dict().items() if k not in ("tokenizer", "processor_class", "auto_map")}
    d["chat_template"] = processor.chat_template
    (Path(folder) / PROCESSOR_FILE).write_text(json.dumps(d, indent=2, ensure_ascii=False))


def load_processor(folder: str | Path, text_model: str | None = None):
    from transformers import AutoTokenizer

    from affectllm.model.language_model import resolve_text_model
    from affectllm.model.processing_affectllm import AffectLLMProcessor

    folder = Path(folder)
    kwargs = json.loads((folder / PROCESSOR_FILE).read_text())
    if (folder / "tokenizer_config.json").exists():
        tok = AutoTokenizer.from_pretrained(folder)
    else:
        source = text_model or json.loads((folder / "config.json").read_text()).get("text_model")
        if source is None:
            raise FileNotFoundError(f"{folder}: no tokenizer files and no text_model to take one from; "
                                    "save with include_tokenizer=True")
        tok = AutoTokenizer.from_pretrained(resolve_text_model(source))
    return AffectLLMProcessor(tok, **kwargs)


def load_checkpoint(folder: str | Path, dtype: torch.dtype | None = None, quantization: str | None = None,
                    text_model: str | None = None):
    """-> (model, processor) from a folder written by ``save_checkpoint``."""
    from affectllm.model.builder import bind
    from affectllm.model.modeling_affectllm import AffectLLMForConditionalGeneration

    folder = Path(folder)
    if not (folder / "config.json").is_file():
        raise FileNotFoundError(f"{folder}: not an AffectLLM checkpoint (no config.json); pass a folder written "
                                "by save_checkpoint / affectllm train")
    processor = load_processor(folder, text_model)
    kwargs = {}
    if text_model is not None:
        from affectllm.model.configuration_affectllm import AffectLLMConfig

        config = AffectLLMConfig.from_pretrained(folder)
        config.text_model = text_model
        kwargs["config_override"] = config
    model = AffectLLMForConditionalGeneration.from_pretrained(folder, dtype=dtype, quantization=quantization,
                                                              **kwargs)
    bind(model, processor)
    return model, processor
