"""Pairing a model with its processor: one place that derives the processor's settings from the config
and writes the tokenizer's placeholder ids back into the config (so checkpoints restore both).

``set_placeholder_ids`` is the only writer of ``config.placeholder_token_ids``; ``bind`` runs it once per built or
loaded model (``model_from_config`` / ``load_checkpoint``), so callers of those never bind again."""

from __future__ import annotations

from typing import Any

from affectllm.model.configuration_affectllm import AffectLLMConfig
from affectllm.model.processing_affectllm import AffectLLMProcessor


def processor_kwargs(config: AffectLLMConfig) -> dict[str, Any]:
    vision = None
    spec = config.spec("vision")
    if spec is not None:
        vision = {"image_size": spec.image_size, "mean": spec.image_mean, "std": spec.image_std,
                  "grayscale": spec.grayscale, "num_frames": spec.num_frames, "input": spec.input,
                  "frame_sampling": spec.frame_sampling, "resize": spec.resize}
    max_audio = max([s.max_seconds for m in ("audio", "whisper") if (s := config.spec(m)) is not None] or [120.0])
    num_tokens = {m: config.num_tokens(m) for m in config.modalities}
    if config.projector.type == "affectgpt":  # its pre-fusion token has a placeholder of its own
        num_tokens["multi"] = 1
    return {"num_tokens": num_tokens,
            "placeholder_tokens": dict(config.placeholder_tokens), "vision": vision,
            "max_audio_seconds": max_audio}


def build_processor(config: AffectLLMConfig, tokenizer, chat_template: str | None = None) -> AffectLLMProcessor:
    return AffectLLMProcessor(tokenizer, chat_template=chat_template, **processor_kwargs(config))


def model_from_config(config: AffectLLMConfig, processor: AffectLLMProcessor, **kwargs: Any):
    """Build the model for ``config`` and bind it to ``processor`` (placeholder ids from its tokenizer)."""
    from affectllm.model.modeling_affectllm import AffectLLMForConditionalGeneration

    model = AffectLLMForConditionalGeneration(config, **kwargs)
    bind(model, processor)
    return model


def set_placeholder_ids(config: AffectLLMConfig, ids: dict[str, int]) -> None:
    """Declare the tokenizer ids of the placeholder tokens in ``config`` (modality -> id)."""
    config.placeholder_token_ids = dict(ids)


def bind(model, processor: AffectLLMProcessor) -> None:
    """Make the model's placeholder ids and generation settings agree with the processor's tokenizer."""
    ids = processor.placeholder_ids
    set_placeholder_ids(model.config, ids)
    vocab = model.get_input_embeddings().weight.shape[0]
    tok = processor.tokenizer
    gen = model.generation_config
    inside = [i for i in ids.values() if i < vocab]  # placeholders the LM head could emit: never allow them
    if inside:
        gen.suppress_tokens = sorted(set((gen.suppress_tokens or []) + inside))
    for key, value in (model.config.generation_overrides or {}).items():
        setattr(gen, key, value)  # e.g. a converted checkpoint's decoding settings (AffectGPT: no repetition penalty)
    if gen.pad_token_id is None:
        gen.pad_token_id = tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id
    if gen.eos_token_id is None:
        gen.eos_token_id = tok.eos_token_id
