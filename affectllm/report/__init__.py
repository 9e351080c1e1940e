"""EmotionReport: the one output schema of AffectLLM, its generation format, and a deterministic parser.

The model is taught to emit exactly this block (the instruction data writes targets with `format_report`):

    Labels: happy, excited
    Valence: 0.60
    Arousal: 0.40
    Explanation: She smiles broadly and her voice rises when she says "we won".

`parse_report` never raises: a malformed generation gives ``labels=[]`` and keeps the text in ``raw``. Given
the perception it was generated from, it also checks faithfulness (``affectllm.report.faithful``): quotes must occur in
the transcript or its translation, cited words must have been found or said, the generation must not loop;
``faithful`` is false and ``faithfulness_problems`` says why otherwise.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import asdict, dataclass, field
from typing import Any

_FIELD_RE = re.compile(r"^\s*[*#_-]*\s*(labels?|emotions?|valence|arousal|explanation|reason(?:ing)?)\s*[*_]*\s*[:：]\s*(.*)$", re.I)
_NUM_RE = re.compile(r"[-+]?\d+(?:\.\d+)?")
_MAX_LABELS = 12


@dataclass
class EmotionReport:
    """What AffectLLM says about one clip (or one segment of it)."""

    labels: list[str] = field(default_factory=list)  # open vocabulary, lower-case, unique, in order
    explanation: str = ""
    valence: float | None = None  # [-1, 1]: negative .. positive
    arousal: float | None = None  # [-1, 1]: calm .. excited
    transcript: str | None = None
    language: str | None = None
    evidence: dict[str, Any] = field(default_factory=dict)  # per-modality cues: face, voice, text
    raw: str = ""  # the generated text, as produced
    translation: str | None = None  # English rendering of non-English speech (Whisper translate)
    faithful: bool = True  # set by parse_report: no unsupported quote, cited word or loop
    faithfulness_problems: list[str] = field(default_factory=list)
    labels_source: str | None = None  # "answer" (parsed from the text), "fused" (evidence.fused.labels), None
    # "answer" (the model's own), "composed" (the engine composed it from the evidence: a free-form answer, or the
    # model's own failed the faithfulness check), None
    explanation_source: str | None = None
    explanation_replaced: list[str] = field(default_factory=list)  # why the model's own explanation was replaced

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self, **kw: Any) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, **kw)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> EmotionReport:
        known = {k: d[k] for k in cls.__dataclass_fields__ if k in d}
        return cls(**known)


def _clip(x: float | None) -> float | None:
    if x is None or not math.isfinite(x):
        return None
    return max(-1.0, min(1.0, float(x)))


def normalise_labels(labels: list[str] | str) -> list[str]:
    """Lower-case, strip, de-duplicate (order kept) and drop empties; a string is split on , ; / and 'and'."""
    if isinstance(labels, str):
        labels = re.split(r"[,;/|]|\band\b", labels)
    out: list[str] = []
    for lab in labels:
        lab = re.sub(r"[\s\"'`.*\[\]()]+", " ", str(lab)).strip().lower()
        if lab and lab not in out and len(lab) <= 40:
            out.append(lab)
    return out[:_MAX_LABELS]


def format_report(labels: list[str], explanation: str, valence: float | None = None, arousal: float | None = None) -> str:
    """The exact text the model is trained to generate for a report."""
    lines = [f"Labels: {', '.join(normalise_labels(labels))}"]
    if valence is not None:
        lines.append(f"Valence: {_clip(valence):.2f}")
    if arousal is not None:
        lines.append(f"Arousal: {_clip(arousal):.2f}")
    lines.append(f"Explanation: {explanation.strip()}")
    return "\n".join(lines)


def parse_report(text: str, perception: Any = None) -> EmotionReport:
    """Parse generated text into an EmotionReport; tolerant of markdown, case and order, never raises.

    ``perception`` (an ``affectllm.perception.pipeline.Perception``) is what the text was generated from: the
    report then carries its transcript, language, translation and evidence, and ``faithful`` is checked
    against them. Without it nothing was heard, so any quotation is unsupported.
    """
    report = EmotionReport(raw=text if isinstance(text, str) else str(text))
    try:
        fields: dict[str, list[str]] = {}
        current: str | None = None
        for line in report.raw.splitlines():
            m = _FIELD_RE.match(line)
            if m:
                key = m.group(1).lower()
                key = {"label": "labels", "emotion": "labels", "emotions": "labels"}.get(key, key)
                key = "explanation" if key.startswith("reason") else key
                current = key
                fields.setdefault(key, []).append(m.group(2).strip().lstrip("*_ ").strip())
            elif current == "explanation" and line.strip():
                fields["explanation"].append(line.strip())
            elif line.strip():
                current = None if current != "explanation" else current
        if "labels" in fields:
            report.labels = normalise_labels(fields["labels"][0])
        for key in ("valence", "arousal"):
            if key in fields:
                m = _NUM_RE.search(fields[key][0])
                setattr(report, key, _clip(float(m.group())) if m else None)
        if "explanation" in fields:
            report.explanation = " ".join(x for x in fields["explanation"] if x).strip()
            report.explanation_source = "answer" if report.explanation else None
    except Exception:  # noqa: BLE001 - a malformed generation must never raise
        report.labels = []
    _ground(report, perception)
    if report.labels:
        report.labels_source = "answer"
    else:  # a free-form answer: the labels are the fused experts' label set, said so in labels_source
        fused = (getattr(perception, "fused", None) or {}) if perception is not None else {}
        report.labels = [str(lab) for lab, _ in fused.get("labels") or []]
        report.labels_source = "fused" if report.labels else None
    return report


def _ground(report: EmotionReport, perception: Any) -> None:
    """Attach the perception's transcript/evidence and set ``faithful``; never raises."""
    try:
        from affectllm.report.faithful import Grounding, mark_faithfulness

        grounding = None
        if perception is not None:
            report.transcript = getattr(perception, "transcript", None)
            report.language = getattr(perception, "language", None)
            report.translation = getattr(perception, "translation", None)
            if hasattr(perception, "evidence"):
                report.evidence = perception.evidence()
            grounding = Grounding.from_perception(perception)
        mark_faithfulness(report, grounding)
    except Exception as e:  # noqa: BLE001 - a broken check must not lose the report; it is just not faithful
        report.faithful, report.faithfulness_problems = False, [f"faithfulness check failed: {e!r}"]
