"""The Engine: one loaded model answering through one path, whoever asks (predict, caption, chat, serve, web, eval).

An ``Engine`` holds the model, its processor, its cue experts (built once, on the model's device), a
content-hash perception cache, the prompt ``Renderer`` and the decoder. Its steps are public so callers can
pipeline them (captioning perceives the next batch while this one decodes)::

    engine = Engine.for_model(model, processor)
    p = engine.perceive("clip.mp4")                       # cached by content hash + settings
    [report] = engine.report([p], prompt=None)            # render -> encode -> decode -> parse
    decoded = engine.reply(conversation, on_text=print)   # multi-turn, streamed

The engine knows nothing about HTTP, terminals or files of records.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from affectllm.engine.decoding import Decoded, GenerationSettings, decode
from affectllm.engine.perceiving import PerceptionCache, experts_for
from affectllm.engine.rendering import Conversation, Renderer
from affectllm.perception.pipeline import Perception
from affectllm.report import EmotionReport, parse_report

_ENGINES: OrderedDict[int, Engine] = OrderedDict()  # the engines of the most recently used models
_KEEP = 2
_REGISTRY_LOCK = threading.Lock()


class Engine:
    """Perceive, render, decode and parse for one ``(model, processor)``."""

    def __init__(self, model: Any, processor: Any, experts: Any = None, cache_size: int = 8,
                 ground_quotes: bool = True, anchor_labels: bool | None = None) -> None:
        self.model, self.processor = model, processor
        # faithful by construction: a quotation can only copy what was said (``affectllm.quote_guard``)
        self.ground_quotes = ground_quotes
        # a report to the default question starts with the fused experts' top class (see ``grounded``)
        self.anchor_labels = model.config.anchor_labels if anchor_labels is None else anchor_labels
        self.experts = experts if experts is not None else experts_for(model)
        self.renderer = Renderer.for_model(model, processor)
        vision = processor.vision or {}  # the model's frame rule, so the engine's frames are the processor's
        self.perceptions = PerceptionCache(self.experts, num_frames=int(vision.get("num_frames", 8)), size=cache_size,
                                           frame_sampling=vision.get("frame_sampling", "uniform"))

    @classmethod
    def for_model(cls, model: Any, processor: Any, experts: Any = None) -> Engine:
        """The engine of ``model`` (made once and reused; a new one when other ``experts`` are given)."""
        with _REGISTRY_LOCK:
            engine = _ENGINES.get(id(model))
            if (engine is None or engine.model is not model or engine.processor is not processor
                    or (experts is not None and engine.experts is not experts)):
                engine = cls(model, processor, experts=experts)
                _ENGINES[id(model)] = engine
            _ENGINES.move_to_end(id(model))
            while len(_ENGINES) > _KEEP:
                _ENGINES.popitem(last=False)
            return engine

    # --- step 1: perception -------------------------------------------------------------------------
    def perceive(self, source: Any = None, **kwargs: Any) -> Perception:
        """Decode one input and run the cue experts (cached; see ``PerceptionCache.perceive``)."""
        return self.perceptions.perceive(source, **kwargs)

    # --- step 2: rendering + encoding ---------------------------------------------------------------
    def encode(self, conversations: list[list[dict[str, Any]]],
               answer_prefix: str | Sequence[str] = "") -> dict[str, Any]:
        """Messages -> the left-padded batch on the model's device (the answer prefix ends each prompt; one for
        every row or one per row)."""
        rendered = [self.processor.render(c, add_generation_prompt=True) for c in conversations]
        for i, r in enumerate(rendered):
            r.text += answer_prefix if isinstance(answer_prefix, str) else answer_prefix[i]
        batch = dict(self.processor.encode(rendered))
        batch = {k: v.to(self.model.device) if hasattr(v, "to") else v for k, v in batch.items()}
        if "pixel_values" in batch:
            batch["pixel_values"] = batch["pixel_values"].to(self.model.dtype)
        return batch

    def prompt_text(self, conversation: list[dict[str, Any]]) -> str:
        """The prompt exactly as the model reads it (media as markers), for tests and cache keys."""
        return self.processor.render(conversation, add_generation_prompt=True).text

    # --- step 3: decoding ---------------------------------------------------------------------------
    def settings(self, settings: GenerationSettings | None = None, **overrides: Any) -> GenerationSettings:
        """``settings`` (default: greedy) with the given fields replaced; None values are ignored."""
        from dataclasses import replace

        return replace(settings or GenerationSettings(), **{k: v for k, v in overrides.items() if v is not None})

    def generate(self, conversations: list[list[dict[str, Any]]], settings: GenerationSettings | None = None,
                 on_text: Callable[[int, str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> list[Decoded]:
        """Answer a batch of conversations (left padding; rows are independent of each other)."""
        s = settings or GenerationSettings()
        batch = self.encode(conversations, s.answer_prefix)
        return decode(self.model, self.processor.tokenizer, batch, s, on_text=on_text, cancelled=cancelled)

    # --- step 4: reports ----------------------------------------------------------------------------
    @staticmethod
    def to_report(decoded: Decoded, perception: Perception | None) -> EmotionReport:
        """Parse the answer; transcript, language and evidence come from the perception, never the text.

        The explanation is composed from the evidence (``instruct.reasoning.explain``: every channel that
        measured, conflicts, what was missing, concluding with the report's labels) when the answer has none (a
        free-form answer) or when the model's own fails the faithfulness check (a quote not in the transcript, a
        figure no expert measured, a loop) or leaves out a channel that measured something
        (``reasoning.uncited_channels``): a report never carries an unfaithful or one-sided explanation. The model's
        answer stays in ``raw``, ``explanation_source`` says which explanation it is, and
        ``explanation_replaced`` why the model's own was replaced."""
        report = parse_report(decoded.text, perception=perception)  # transcript, evidence, faithfulness check
        if perception is None:
            return report
        from affectllm.instruct.reasoning import CHANNEL_NAME, explain, uncited_channels

        problems = list(report.faithfulness_problems)
        if report.explanation:
            problems += [f"does not cite the {CHANNEL_NAME[m]}, which its expert measured"
                         for m in uncited_channels(report.explanation, perception.evidence())]
        if not report.explanation or problems:
            from affectllm.report.faithful import Grounding, mark_faithfulness

            report.explanation_replaced = problems if report.explanation else []
            report.explanation = explain(perception, report.labels or None)
            report.explanation_source = "composed"
            mark_faithfulness(report, Grounding.from_perception(perception))
        return report

    def grounded(self, s: GenerationSettings, perceptions: Sequence[Perception | None],
                 anchor: bool) -> GenerationSettings:
        """``s`` with the engine's grounding added, row by row:

        - a ``QuoteGuard`` (when ``ground_quotes``): inside quotation marks only the row's transcript, its
          translation or subtitle can be copied, and with nothing said no quotation can open;
        - when ``anchor`` (the default question of a cue-reading model, no forced start given) and
          ``anchor_labels``: the answer starts with ``Labels: <evidence.fused.labels>``, so the first
          labels are the calibrated fusion of the experts (never less right than they are); the language model
          adds further labels, valence, arousal and the explanation. Rows without a fused estimate are free.
        """
        from dataclasses import replace

        changes: dict[str, Any] = {}
        if self.ground_quotes:
            from affectllm.report.quote_guard import guard_for

            changes["logits_processors"] = (*s.logits_processors, guard_for(self.processor.tokenizer, perceptions))
        if (anchor and self.anchor_labels and not s.answer_prefix and self.renderer.style is None
                and self.renderer.use_cues):
            prefixes = [fused_prefix(p) for p in perceptions]
            if any(prefixes):
                changes["answer_prefix"] = prefixes
        return replace(s, **changes)

    def report(self, perceptions: list[Perception], prompt: str | None = None,
               history: list[dict[str, str]] | None = None, settings: GenerationSettings | None = None,
               on_text: Callable[[int, str], None] | None = None, cancelled: Callable[[], bool] | None = None,
               explanation: str = "model", **overrides: Any) -> list[EmotionReport]:
        """One report per perception (batched); ``history``: earlier text turns before each user turn.

        ``explanation``: ``"model"`` (default) — the language model writes it (replaced by the composed one when
        it fails the checks, see ``to_report``); ``"evidence"`` — the model stops after labels, valence and
        arousal and the explanation is composed from the evidence (``instruct.reasoning.explain``): the same
        report fields in a fraction of the generated tokens, for batch captioning where speed matters."""
        if explanation not in EXPLANATIONS:
            raise ValueError(f"explanation={explanation!r}: choose one of {', '.join(EXPLANATIONS)}")
        s = self.grounded(self.settings(settings, **overrides), perceptions, anchor=prompt is None and not history)
        if explanation == "evidence":
            from dataclasses import replace

            s = replace(s, stop_strings=(*s.stop_strings, EXPLANATION_FIELD))
        convs = [list(history or []) + self.renderer.single_turn(p, prompt) for p in perceptions]
        decoded = self.generate(convs, s, on_text=on_text, cancelled=cancelled)
        return [self.to_report(d, p) for d, p in zip(decoded, perceptions, strict=True)]

    def reply(self, conversation: Conversation, settings: GenerationSettings | None = None,
              on_text: Callable[[str], None] | None = None, cancelled: Callable[[], bool] | None = None,
              **overrides: Any) -> Decoded:
        """The answer to a conversation's latest user turn, streamed to ``on_text``."""
        stream = (lambda _row, piece: on_text(piece)) if on_text is not None else None
        return self.replies([conversation], settings, on_text=stream, cancelled=cancelled, **overrides)[0]

    def replies(self, conversations: Sequence[Conversation], settings: GenerationSettings | None = None,
                on_text: Callable[[int, str], None] | None = None, cancelled: Callable[[], bool] | None = None,
                **overrides: Any) -> list[Decoded]:
        """The answers to several conversations' latest user turns, decoded as one batch (the server batches
        concurrent requests through this); ``on_text(row, piece)`` streams each row."""
        media = [latest_media(c) for c in conversations]
        s = self.grounded(self.settings(settings, **overrides), media, anchor=False)
        return self.generate([self.renderer.messages(c) for c in conversations], s, on_text=on_text,
                             cancelled=cancelled)

    def predict(self, video: Any = None, audio: Any = None, image: Any = None, text: str | None = None,
                prompt: str | None = None, **overrides: Any) -> EmotionReport:
        """Perceive one input (a path or arrays; ``text`` is a subtitle or the only input) and report on it."""
        p = self.perceive(video=video, audio=audio, image=image, subtitle=text)
        return self.report([p], prompt=prompt, **overrides)[0]


EXPLANATIONS = ("model", "evidence")  # who writes a report's explanation (``Engine.report``)
EXPLANATION_FIELD = "Explanation:"  # the report field that ``explanation="evidence"`` stops generation at


def fused_prefix(p: Perception | None) -> str:
    """``Labels: nervous, worried`` (the fused label set; its top class where it has none) for a perception
    with a fused estimate, else ""."""
    fused = (getattr(p, "fused", None) or {}) if p is not None else {}
    labels = [str(lab) for lab, _ in fused.get("labels") or []] or ([fused["top"]] if fused.get("top") else [])
    return f"Labels: {', '.join(labels)}" if labels else ""


def latest_media(conversation: Conversation) -> Perception | None:
    """The perception of the most recent media in a conversation (the evidence of its report)."""
    for turn in reversed(conversation.turns):
        if turn.media:
            return turn.media[-1]
    return None
