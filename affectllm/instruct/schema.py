"""The instruction-data schema: one JSON object per line, and a validator whose errors name line and field.

A row (see instruct_data/README.md for examples)::

    {"id": "meld/train/dia0_utt0/ov_labels", "video": "clips/dia0_utt0.mp4", "audio": "clips/dia0_utt0.mp4",
     "subtitle": "Oh my God!", "task": "ov_labels", "source": "meld", "labels": ["surprised"],
     "conversations": [{"role": "user", "content": "<video>\\n<audio>\\nSubtitle: ...\\nWhich emotions ...?"},
                       {"role": "assistant", "content": "Labels: surprised\\nExplanation: ..."}]}

Media are path strings (relative paths resolve against the JSONL file's folder); each media key present needs
its placeholder (``<video>``, ``<audio>``, ``<image>``) exactly once in a user turn, and each placeholder needs its
media. Report-style answers are the exact text of `affectllm.report.format_report`, so the model learns one
output format; the validator checks that the answer parses back to the row's labels.
"""

from __future__ import annotations

import difflib
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal, TypedDict

from affectllm.report import normalise_labels, parse_report

TASKS: tuple[str, ...] = ("describe", "ov_labels", "onehot", "valence", "followup", "alignment")
# Tasks whose (first) assistant answer is an EmotionReport written by `format_report`.
REPORT_TASKS: frozenset[str] = frozenset({"describe", "ov_labels", "onehot", "valence", "followup"})
ROLES: tuple[str, ...] = ("system", "user", "assistant")
MEDIA_KEYS: tuple[str, ...] = ("video", "audio", "image")
PLACEHOLDERS: dict[str, str] = {k: f"<{k}>" for k in MEDIA_KEYS}

REQUIRED_KEYS: tuple[str, ...] = ("id", "conversations", "task", "source")
OPTIONAL_KEYS: tuple[str, ...] = (
    *MEDIA_KEYS, "subtitle", "labels", "label_set", "valence", "arousal", "description", "split", "meta",
)
ALL_KEYS: frozenset[str] = frozenset(REQUIRED_KEYS + OPTIONAL_KEYS)


class Turn(TypedDict):
    role: Literal["system", "user", "assistant"]
    content: str


class Row(TypedDict, total=False):
    """One instruction sample, as stored on one JSONL line."""

    id: str  # unique in the file, e.g. "ravdess/01-01-05-02-01-01-01/onehot"
    video: str  # path to a video container (frames; its audio track when also named under "audio")
    audio: str  # path to an audio file, or to a video container whose audio stream is meant
    image: str  # path to a still image
    subtitle: str  # what is said, when known (also written into the user turn by the builders)
    conversations: list[Turn]
    task: str  # one of TASKS
    source: str  # dataset name, e.g. "mer-caption-plus"
    labels: list[str]  # known emotion labels (open vocabulary)
    label_set: list[str]  # the dataset's closed label set (one-hot tasks)
    valence: float  # [-1, 1]
    arousal: float  # [-1, 1]
    description: str  # known free-text reasoning / caption
    split: str  # the source's split name when it has one ("train", "dev", "test", "heldout" ...)
    meta: dict[str, Any]  # anything source-specific (original label, speaker, annotation file:line ...)


@dataclass(frozen=True)
class RowError:
    """One problem in one row: where, which field, what is wrong and how to fix it."""

    line: int
    field: str
    message: str
    kind: str = "invalid"  # "invalid" | "missing_media" | "duplicate"

    def __str__(self) -> str:
        return f"line {self.line}, field '{self.field}': {self.message}"


def resolve_media(path: str, base_dir: str | os.PathLike[str] | None) -> Path:
    """A media path string as an absolute Path: relative paths resolve against ``base_dir`` (the JSONL folder)."""
    p = Path(os.path.expanduser(path))
    if not p.is_absolute() and base_dir is not None:
        p = Path(base_dir) / p
    return Path(os.path.abspath(p))


def check_row(
    row: Any, line_no: int, base_dir: str | os.PathLike[str] | None = None, check_media: bool = False
) -> list[RowError]:
    """Every problem of one parsed row (structure, types, conversation shape, targets, media files)."""
    errs: list[RowError] = []

    def err(field: str, message: str, kind: str = "invalid") -> None:
        errs.append(RowError(line_no, field, message, kind))

    if not isinstance(row, Mapping):
        err("<row>", f"expected a JSON object, got {type(row).__name__}; write one object per line")
        return errs
    for key in row:
        if key not in ALL_KEYS:
            close = difflib.get_close_matches(str(key), sorted(ALL_KEYS), n=1)
            hint = f"did you mean '{close[0]}'?" if close else "put source-specific fields under 'meta'"
            err(str(key), f"unknown field; {hint}")
    for key in REQUIRED_KEYS:
        if key not in row:
            err(key, "required field is missing")

    _check_str(row, "id", err, required=True)
    _check_str(row, "source", err, required=True)
    task = row.get("task")
    if "task" in row and task not in TASKS:
        err("task", f"{task!r} is not a task; use one of {', '.join(TASKS)}")

    media = _check_media(row, base_dir, check_media, err)
    subtitle = _check_str(row, "subtitle", err)
    if not media and subtitle is None:
        err("video/audio/image/subtitle", "a row needs at least one media path or a subtitle")

    _check_targets(row, err)
    turns = _check_conversations(row.get("conversations"), media, err) if "conversations" in row else []
    if task in TASKS and turns is not None:
        _check_task(row, str(task), turns, err)
    return errs


def validate_row(
    row: Any, line_no: int, base_dir: str | os.PathLike[str] | None = None, check_media: bool = False
) -> list[str]:
    """Errors of one row as readable strings (``line N, field 'F': problem; fix``); an empty list means valid."""
    return [str(e) for e in check_row(row, line_no, base_dir, check_media)]


# --- field checks ------------------------------------------------------------------------------------------


def _check_str(row: Mapping[str, Any], key: str, err: Any, required: bool = False) -> str | None:
    if key not in row:
        return None
    value = row[key]
    if not isinstance(value, str):
        err(key, f"expected a string, got {type(value).__name__}")
        return None
    if not value.strip():
        err(key, "is empty; drop the field or give a value" if not required else "is empty; give a value")
        return None
    return value


def _check_media(row: Mapping[str, Any], base_dir: Any, check_media: bool, err: Any) -> set[str]:
    present: set[str] = set()
    for key in MEDIA_KEYS:
        path = _check_str(row, key, err)
        if path is None:
            continue
        present.add(key)
        if check_media:
            resolved = resolve_media(path, base_dir)
            if not resolved.is_file():
                err(key, f"file not found: {resolved} (relative paths resolve against the JSONL file's folder)",
                    "missing_media")
    return present


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool)


def _check_targets(row: Mapping[str, Any], err: Any) -> None:
    for key in ("labels", "label_set"):
        if key not in row:
            continue
        value = row[key]
        if not isinstance(value, list) or not value:
            err(key, "expected a non-empty list of strings, e.g. [\"happy\", \"excited\"]")
        elif not all(isinstance(x, str) and x.strip() for x in value):
            err(key, "every label must be a non-empty string")
    for key in ("valence", "arousal"):
        if key not in row:
            continue
        value = row[key]
        if not _is_number(value) or not math.isfinite(value):
            err(key, f"expected a number in [-1, 1], got {value!r}")
        elif not -1.0 <= value <= 1.0:
            err(key, f"{value} is outside [-1, 1]; rescale (e.g. a 1..5 rating v -> (v - 3) / 2)")
    _check_str(row, "description", err)
    _check_str(row, "split", err)
    if "meta" in row and not isinstance(row["meta"], Mapping):
        err("meta", f"expected a JSON object, got {type(row['meta']).__name__}")


def _check_conversations(conv: Any, media: set[str], err: Any) -> list[Turn] | None:
    if not isinstance(conv, list) or not conv:
        err("conversations", "expected a non-empty list of {\"role\", \"content\"} objects")
        return None
    turns: list[Turn] = []
    for i, turn in enumerate(conv):
        where = f"conversations[{i}]"
        if not isinstance(turn, Mapping):
            err(where, "expected an object with 'role' and 'content'")
            continue
        extra = set(turn) - {"role", "content"}
        if extra:
            err(where, f"unknown keys {sorted(extra)}; a turn has only 'role' and 'content'")
        role, content = turn.get("role"), turn.get("content")
        if role not in ROLES:
            err(f"{where}.role", f"{role!r} is not a role; use system, user or assistant")
        if not isinstance(content, str) or not content.strip():
            err(f"{where}.content", "expected non-empty text")
            content = ""
        turns.append({"role": role, "content": content})  # type: ignore[typeddict-item]
    if len(turns) != len(conv):
        return None

    # Order: optional system first, then user/assistant alternating, ending on an assistant turn.
    body = turns[1:] if turns[0]["role"] == "system" else turns
    for i, turn in enumerate(body):
        idx = i + (len(turns) - len(body))
        expected = "user" if i % 2 == 0 else "assistant"
        if turn["role"] == "system":
            err(f"conversations[{idx}].role", "a system turn may only come first")
        elif turn["role"] in ("user", "assistant") and turn["role"] != expected:
            err(f"conversations[{idx}].role", f"expected '{expected}': turns alternate user, assistant")
    if not body or body[-1]["role"] != "assistant":
        err("conversations", "must end with an assistant turn (the training target)")

    # Placeholders: user turns only, once each, and exactly for the media present.
    counts = {k: 0 for k in MEDIA_KEYS}
    for i, turn in enumerate(turns):
        for key, ph in PLACEHOLDERS.items():
            n = turn["content"].count(ph)
            if n and turn["role"] != "user":
                err(f"conversations[{i}].content", f"{ph} may only appear in a user turn")
            counts[key] += n
    for key, ph in PLACEHOLDERS.items():
        if counts[key] > 1:
            err("conversations", f"{ph} appears {counts[key]} times; put it once, where the {key} goes")
        if counts[key] and key not in media:
            err("conversations", f"{ph} is used but the row has no '{key}' path; add it or remove {ph}")
        if not counts[key] and key in media:
            err("conversations", f"the row has a '{key}' path but no {ph} placeholder; add {ph} to a user turn")
    return turns


def _check_task(row: Mapping[str, Any], task: str, turns: list[Turn], err: Any) -> None:
    need: dict[str, tuple[str, ...]] = {
        "describe": ("labels", "description"),
        "ov_labels": ("labels",),
        "onehot": ("labels", "label_set"),
        "valence": ("labels", "valence"),
        "followup": ("labels",),
        "alignment": ("description",),
    }
    for key in need[task]:
        if key not in row:
            err(key, f"task '{task}' needs the known target '{key}'")
    answers = [t["content"] for t in turns if t["role"] == "assistant"]
    if task == "onehot" and isinstance(row.get("labels"), list):
        labels, label_set = row["labels"], row.get("label_set")
        if len(labels) != 1:
            err("labels", f"task 'onehot' needs exactly one label, got {len(labels)}")
        elif isinstance(label_set, list) and labels[0] not in label_set:
            err("labels", f"{labels[0]!r} is not in label_set {label_set}")
    if task == "followup" and len(answers) < 2:
        err("conversations", "task 'followup' needs at least two assistant turns (the report, then the answer)")
    if task in REPORT_TASKS and answers and isinstance(row.get("labels"), list):
        _check_report(row, task, answers[0], err)


def _check_report(row: Mapping[str, Any], task: str, answer: str, err: Any) -> None:
    if not answer.lstrip().startswith("Labels:"):
        err("conversations", "the report answer must be written by affectllm.report.format_report "
            "(it starts with 'Labels:')")
        return
    report = parse_report(answer)
    want = normalise_labels([x for x in row["labels"] if isinstance(x, str)])
    if report.labels != want:
        err("conversations", f"the report answer says labels {report.labels} but the row's labels are {want}")
    for key in ("valence", "arousal"):
        value = row.get(key)
        got = getattr(report, key)
        if got is None and not (task == "valence" and key == "valence"):
            continue  # a report may leave out a known arousal/valence, except the valence task's valence
        if not _is_number(value) or not -1.0 <= value <= 1.0:
            continue  # already reported on the field itself
        if got is None or abs(got - float(value)) > 0.006:
            err("conversations", f"the report answer's {key} ({got}) does not match the row's {key} ({value})")
