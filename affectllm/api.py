"""The public Python API: ``load`` a model with its processor, ``predict`` an EmotionReport for one input.

    import affectllm
    model, processor = affectllm.load()                     # the embedded default, offline
    report = affectllm.predict(model, processor, video="clip.mp4")
    print(report.labels, report.explanation)

Both are thin: loading lives in ``affectllm.loading``, answering in ``affectllm.engine`` (the same engine the
CLI, the server and the web UI use).
"""

from __future__ import annotations

from typing import Any

from affectllm.loading import load
from affectllm.model.limits import MAX_NEW_TOKENS
from affectllm.report import EmotionReport


def predict(model, processor, video: Any = None, audio: Any = None, image: Any = None, text: str | None = None,
            prompt: str | None = None, max_new_tokens: int = MAX_NEW_TOKENS, experts=None, **generation: Any) -> EmotionReport:
    """Perceive one input (a path or arrays; ``text`` is a subtitle or the only input) and report on it.

    ``generation``: ``GenerationSettings`` fields (``do_sample``, ``temperature``, ``stop_strings``, ...), and
    ``explanation="evidence"`` for an explanation composed from the evidence instead of generated (much faster
    on a CPU; ``Engine.report``).
    """
    from affectllm.engine import Engine

    engine = Engine.for_model(model, processor, experts=experts)
    return engine.predict(video=video, audio=audio, image=image, text=text, prompt=prompt,
                          max_new_tokens=max_new_tokens, **generation)


def generate_reports(model, processor, perceptions: list, prompt: str | None = None, max_new_tokens: int = MAX_NEW_TOKENS,
                     history: list[dict[str, Any]] | None = None, **generation: Any) -> list[EmotionReport]:
    """Reports for already-perceived inputs, batched (``history``: earlier text turns before each input's turn)."""
    from affectllm.engine import Engine

    return Engine.for_model(model, processor).report(perceptions, prompt=prompt, history=history,
                                                     max_new_tokens=max_new_tokens, **generation)


__all__ = ["generate_reports", "load", "predict"]
