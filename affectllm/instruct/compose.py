"""Turn what a source knows about one clip (a `SourceSample`) into schema rows, one per applicable task.

Builders only parse their corpus into `SourceSample`s; everything about prompts, answers and the output format
lives here, so every source produces the same kind of rows. Report-style answers are written with
`affectllm.report.format_report`; follow-up answers and alignment captions are plain text.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from affectllm.instruct.prompts import PromptPools, media_prefix, row_rng, subtitle_line
from affectllm.instruct.schema import MEDIA_KEYS, TASKS, Row
from affectllm.report import format_report, normalise_labels

PathMode = Literal["auto", "relative", "absolute"]


@dataclass
class SourceSample:
    """Everything a source knows about one clip, before any prompt is written."""

    key: str  # unique within the source, e.g. "sample_00000648" or "train/dia0_utt0"
    source: str  # dataset name, e.g. "meld"
    where: str = ""  # annotation location for messages, e.g. "train_sent_emo.csv:12"
    video: Path | None = None
    audio: Path | None = None
    image: Path | None = None
    subtitle: str | None = None
    labels: list[str] | None = None
    label_set: Sequence[str] | None = None  # closed-set corpora: their classes (enables the onehot task)
    valence: float | None = None
    arousal: float | None = None
    description: str | None = None  # human (or curated) reasoning about the emotions
    explanation: str | None = None  # a short factual explanation when there is no description
    split: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def media(self) -> dict[str, Path]:
        return {k: p for k in MEDIA_KEYS if (p := getattr(self, k)) is not None}


def applicable_tasks(sample: SourceSample) -> list[str]:
    """The tasks whose targets this sample knows, in `TASKS` order."""
    norm = normalise_labels(sample.labels or [])
    labels = bool(norm)
    desc = bool(sample.description and sample.description.strip())
    ok = {
        "describe": labels and desc,
        "ov_labels": labels,
        "onehot": len(norm) == 1 and norm[0] in normalise_labels(list(sample.label_set or [])),
        "valence": labels and sample.valence is not None,
        "followup": labels and desc,
        "alignment": desc,
    }
    return [t for t in TASKS if ok[t]]


def media_ref(path: Path, out_dir: Path | None, mode: PathMode = "auto") -> str:
    """A media path as written into a row: relative to the JSONL folder, or absolute (see `PathMode`)."""
    absolute = Path(os.path.abspath(path))
    if out_dir is None or mode == "absolute":
        return str(absolute)
    out_abs = Path(os.path.abspath(out_dir))
    if mode == "relative" or absolute.is_relative_to(out_abs):
        return Path(os.path.relpath(absolute, out_abs)).as_posix()
    return str(absolute)


def media_noun(media: dict[str, Path] | set[str]) -> str:
    """What prompts call the input: "clip" (video), "recording" (audio only), "image", or "utterance" (text)."""
    if "video" in media:
        return "clip"
    if "audio" in media:
        return "recording"
    return "image" if "image" in media else "utterance"


# --- follow-up answers: the sentences of the description about one modality --------------------------------

_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|(?<=[a-z][.!?])(?=[A-Z])")
_FOCUS_WORDS = {
    "voice": re.compile(r"\b(voice|vocal|tone|audio|speech|speak\w*|spoke|pitch|loud\w*|volume|intonation|pace|"
                        r"sigh\w*|laugh\w*|crying|trembl\w*|shout\w*|yell\w*|whisper\w*|sob\w*)\b", re.I),
    "face": re.compile(r"\b(face|facial|expression\w*|eyes?|eyebrows?|brows?|mouth|lips?|smil\w*|frown\w*|gaze|"
                       r"star\w*|forehead|cheeks?|tears?|grin\w*)\b", re.I),
    "words": re.compile(r"\b(subtitle|says?|said|words?|sentence|text|asks?|asked|question|line)\b", re.I),
}


def focus_sentences(description: str, focus: str) -> str:
    """The sentences of ``description`` about ``focus`` ("why" returns all of it), in their original order."""
    text = " ".join(description.split())
    if focus == "why":
        return text
    sentences = [s.strip() for s in _SENTENCE_END.split(text) if s.strip()]
    return " ".join(s for s in sentences if _FOCUS_WORDS[focus].search(s))


# --- rows ---------------------------------------------------------------------------------------------------


def rows_for_sample(
    sample: SourceSample,
    tasks: Sequence[str] | None,
    pools: PromptPools,
    *,
    seed: int = 0,
    out_dir: Path | None = None,
    path_mode: PathMode = "auto",
) -> list[Row]:
    """One row per task of ``tasks`` (None: all) that the sample's targets allow, deterministic per seed."""
    wanted = set(TASKS if tasks is None else tasks)
    todo = [t for t in applicable_tasks(sample) if t in wanted]
    refs = {k: media_ref(p, out_dir, path_mode) for k, p in sample.media().items()} if todo else {}
    return [_row(sample, task, pools, seed, refs) for task in todo]


def _row(sample: SourceSample, task: str, pools: PromptPools, seed: int, refs: dict[str, str]) -> Row:
    rid = f"{sample.source}/{sample.key}/{task}"
    rng = row_rng(seed, rid)
    media = sample.media()
    labels = normalise_labels(sample.labels or [])
    valence = None if sample.valence is None else round(float(sample.valence), 4)
    arousal = None if sample.arousal is None else round(float(sample.arousal), 4)
    description = " ".join(sample.description.split()) if sample.description else None
    explanation = description or " ".join((sample.explanation or "").split())
    head = media_prefix(media) + (subtitle_line(sample.subtitle) if sample.subtitle else "")

    noun = media_noun(media)

    def report() -> str:
        return format_report(labels, explanation, valence, arousal)

    if task == "onehot":
        label_set = ", ".join(sample.label_set or [])
        conv = [_user(head + pools.pick(task, rng, label_set=label_set, media=noun)), _assistant(report())]
    elif task == "alignment":
        conv = [_user(head + pools.pick(task, rng, media=noun)), _assistant(description or "")]
    elif task == "followup":
        first = rng.choice(("describe", "ov_labels"))
        conv = [_user(head + pools.pick(first, rng, media=noun)), _assistant(report())]
        foci = [f for f in ("why", "voice", "face", "words") if focus_sentences(description or "", f)]
        for focus in rng.sample(foci, k=min(len(foci), rng.choice((1, 2)))):
            conv += [_user(pools.pick_followup(focus, rng)), _assistant(focus_sentences(description or "", focus))]
    else:  # describe, ov_labels, valence
        conv = [_user(head + pools.pick(task, rng, media=noun)), _assistant(report())]

    row: dict[str, Any] = {"id": rid}
    row.update(refs)
    if sample.subtitle:
        row["subtitle"] = " ".join(sample.subtitle.split())
    row.update({"conversations": conv, "task": task, "source": sample.source})
    if labels:
        row["labels"] = labels
    if sample.label_set:
        row["label_set"] = list(sample.label_set)
    if valence is not None:
        row["valence"] = valence
    if arousal is not None:
        row["arousal"] = arousal
    if description:
        row["description"] = description
    if sample.split:
        row["split"] = sample.split
    meta = dict(sample.meta)
    if sample.where:
        meta["annotation"] = sample.where
    if meta:
        row["meta"] = meta
    return row  # type: ignore[return-value]


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": text}


def _assistant(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}
