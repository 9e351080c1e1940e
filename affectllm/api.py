"""The public Python API: ``load`` a model with its processor, ``predict`` an EmotionReport for one input.

    import affectllm
    model, processor = affectllm.load()                     # the embedded default, offline
    report = affectllm.predict(model, processor, video="clip.mp4")
    print(report.labels, report.explanation)
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from affectllm.report import EmotionReport, parse_report

STARTER_DIR = Path(__file__).parent / "assets" / "starter"


def resolve_device(device: str = "auto") -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def resolve_dtype(dtype: str | torch.dtype = "auto", device: torch.device | None = None) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    if dtype == "auto":
        return torch.bfloat16 if device is not None and device.type == "cuda" else torch.float32
    return {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
            "float16": torch.float16, "fp16": torch.float16}[dtype]


def is_checkpoint(path: str | Path) -> bool:
    cfg = Path(path) / "config.json"
    return cfg.is_file() and json.loads(cfg.read_text()).get("model_type") == "affectllm"


def load(model: str | None = None, adapter: str | None = None, device: str = "auto", dtype: str = "auto",
         quantization: str | None = None):
    """Load ``(model, processor)``.

    model: None (the embedded default: the shipped starter adapter if present, else the untrained default
    configuration), an AffectLLM checkpoint folder, or a causal-LM id/path to use as the language model of the
    default towers. adapter: an AffectLLM checkpoint folder (projector + LoRA) to load on top of ``model``.
    """
    from affectllm.builder import bind, build_processor, model_from_config
    from affectllm.checkpoint import load_checkpoint
    from affectllm.defaults import default_config

    dev = resolve_device(device)
    dt = resolve_dtype(dtype, dev)
    if model is not None and model.lower() in ("affectgpt", "affectgpt-frame", "affectgpt-face"):
        from affectllm.compat.affectgpt_hub import ensure_affectgpt  # hub download + one-time conversion

        model = str(ensure_affectgpt(model.lower()))
    ckpt = adapter or (model if model is not None and is_checkpoint(model) else None)
    if ckpt is None and model is None and is_checkpoint(STARTER_DIR):
        ckpt = STARTER_DIR
    if ckpt is not None:
        text_model = model if (model is not None and not is_checkpoint(model)) else None
        m, proc = load_checkpoint(ckpt, dtype=dt, quantization=quantization, text_model=text_model)
        m.trained = True
    else:
        from transformers import AutoTokenizer

        from affectllm.language_model import resolve_text_model

        config = default_config()
        if model is not None:
            config.text_model = model
        tok = AutoTokenizer.from_pretrained(resolve_text_model(config.text_model))
        proc = build_processor(config, tok)
        m = model_from_config(config, proc, dtype=dt, quantization=quantization)
        m.trained = False  # projector and LoRA are freshly initialised: output is not yet meaningful
    if not m.quantized:
        m.to(dev)
    bind(m, proc)
    m.eval()
    m.source_name = str(ckpt or model or "embedded-default")
    return m, proc


def experts_for(model):
    """The cue experts matching the model (Whisper size from its config), cached on the model object."""
    from affectllm.perception.pipeline import Experts

    if getattr(model, "_affect_experts", None) is None:
        spec = model.config.spec("whisper")
        # a model with a random (test) Whisper tower gets no ASR; the embedded default uses its own Whisper
        name = spec.model if spec is not None and spec.model else getattr(model.config, "asr_model", None)
        model._affect_experts = Experts(whisper=name, device="cpu", faces=True)
    return model._affect_experts


def build_messages(perception, prompt: str | None, use_cues: bool, face_input: bool,
                   style: str | None = None) -> list[dict[str, Any]]:
    """The user turn for one perceived input: its media item, the expert cues and the question."""
    from affectllm.defaults import DEFAULT_PROMPT
    from affectllm.media_inputs import MediaItem
    from affectllm.perception.pipeline import cue_lines

    content: list[dict[str, Any]] = []
    item = perception.media_item()
    if item is not None:
        if face_input and item.vision is not None:
            crops = perception.face_crops
            item = MediaItem(item.kind, vision=crops, timestamps=perception.face_times, audio=item.audio,
                             source=item.source)
        if item.vision is not None or item.audio is not None:
            content.append({"type": item.kind, item.kind: item})
    text = prompt or DEFAULT_PROMPT
    if style == "affectgpt":  # converted AffectGPT: its subtitle sentence (given subtitle, else ASR) + question
        from affectllm.compat.affectgpt import DESCRIBE, user_text

        text = user_text(prompt or DESCRIBE, perception.subtitle or perception.transcript)
    elif use_cues:
        lines = cue_lines(perception)
        if lines:
            text = "Observed cues:\n" + "\n".join(f"- {x}" for x in lines) + "\n\n" + text
    content.append({"type": "text", "text": text})
    return [{"role": "user", "content": content}]


@torch.no_grad()
def generate_reports(model, processor, perceptions: list, prompt: str | None = None, max_new_tokens: int = 128,
                     streamer=None, history: list[dict[str, Any]] | None = None) -> list[EmotionReport]:
    """Batched greedy generation (left padding) for already-perceived inputs.

    ``history``: earlier text turns (``{"role", "content": str}``) placed before each input's user turn, for
    multi-turn chat; without it the conversation is the single user turn, as ``predict`` builds it.
    """
    face_input = (processor.vision or {}).get("input") == "faces"
    style = getattr(model.config, "prompt_style", None)
    convs = [list(history or []) + build_messages(p, prompt, model.config.use_cues, face_input, style)
             for p in perceptions]
    batch = processor(convs, add_generation_prompt=True)
    batch = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}
    if "pixel_values" in batch:
        batch["pixel_values"] = batch["pixel_values"].to(model.dtype)
    out = model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer)
    texts = processor.batch_decode(out[:, batch["input_ids"].shape[1]:])
    reports = []
    for p, t in zip(perceptions, texts):
        reports.append(parse_report(t, perception=p))  # transcript, evidence and the faithfulness check
    return reports


def predict(model, processor, video: Any = None, audio: Any = None, image: Any = None, text: str | None = None,
            prompt: str | None = None, max_new_tokens: int = 128, experts=None) -> EmotionReport:
    """Perceive one input (a path or arrays; ``text`` is a subtitle or the only input) and report on it."""
    from affectllm.perception.pipeline import perceive

    num_frames = (processor.vision or {}).get("num_frames", 8)
    perception = perceive(video=video, audio=audio, image=image, subtitle=text, experts=experts or experts_for(model),
                          num_frames=num_frames)
    return generate_reports(model, processor, [perception], prompt=prompt, max_new_tokens=max_new_tokens)[0]
