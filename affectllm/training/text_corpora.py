"""Readers for the labelled emotional text the text-emotion expert trains and is measured on.

Three corpora (``../shared/corpora/text``, see its README for sources and licences), read in place, never copied:

- **GoEmotions** (English Reddit comments): 27 emotions + neutral, multi-label -> a target distribution uniform
  over the labelled fine labels.
- **MELD** (English TV dialogue, *Friends*): 7 classes (neutral + Ekman's six) -> a *group* of fine labels
  (``EKMAN_GROUPS``, Demszky et al. 2020's own Ekman grouping of GoEmotions).
- **CLUE emotion** (Mandarin Weibo posts): 7 classes; ``like`` and ``happiness`` split GoEmotions' joy group
  (``CLUE_GROUPS``). The snapshot has no train split: rows of ``valid.jsonl`` are train (9 in 10) and dev
  (every 10th row); ``test.jsonl`` is the test split. Said in every report that uses it.

A row is ``TextRow(text, fine, group, corpus)``: ``fine`` (GoEmotions labels, multi-label corpora) or ``group``
(the set of fine labels one coarse class covers) is the supervision; exactly one of them is set.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from pathlib import Path

from affectllm.perception.label_sets import CLUE_GROUPS, EKMAN_GROUPS, FINE_LABELS

MELD_CLASSES = ("neutral", "joy", "surprise", "anger", "sadness", "disgust", "fear")
CLUE_CLASSES = ("like", "happiness", "sadness", "anger", "disgust", "fear", "surprise")


@dataclass(frozen=True)
class TextRow:
    text: str
    corpus: str
    label: str  # the corpus's own label (GoEmotions: comma-joined fine labels)
    fine: tuple[str, ...] = ()  # multi-label supervision (GoEmotions)
    group: tuple[str, ...] = ()  # one coarse class = a set of fine labels (MELD, CLUE)


class CorpusMissing(FileNotFoundError):
    """A corpus file is not where the text corpora should be."""


def _need(path: Path) -> Path:
    if not path.is_file():
        raise CorpusMissing(f"{path}: text corpus file not found; point --corpora at ../shared/corpora/text "
                            "(its README lists the three corpora and their sources)")
    return path


def goemotions(root: Path, split: str) -> list[TextRow]:
    """``split`` in train / dev / test; tsv without header: text, comma-separated label ids, comment id."""
    order = _need(root / "goemotions" / "emotions.txt").read_text(encoding="utf-8").split()
    if tuple(order) != FINE_LABELS:
        raise ValueError(f"{root / 'goemotions' / 'emotions.txt'}: label order differs from GoEmotions' 28 labels")
    rows = []
    with _need(root / "goemotions" / f"{split}.tsv").open(encoding="utf-8", newline="") as f:
        for n, line in enumerate(f, 1):
            parts = line.rstrip("\n").split("\t")
            if len(parts) < 2:
                raise ValueError(f"{f.name}:{n}: expected text<TAB>label ids")
            fine = tuple(FINE_LABELS[int(i)] for i in parts[1].split(","))
            rows.append(TextRow(parts[0], "goemotions", ",".join(fine), fine=fine))
    return rows


def _repair(text: str) -> str:
    """MELD's mis-encoded punctuation (cp1252 bytes read as replacement chars) back to ASCII."""
    for bad, good in (("\u2019", "'"), ("\u2018", "'"), ("\u201c", '"'), ("\u201d", '"'), ("\u2014", "-"),
                      ("\u2026", "..."), ("\x92", "'"), ("\x93", '"'), ("\x94", '"'), ("\x85", "..."),
                      ("\x97", "-"), ("\ufffd", "'")):
        text = text.replace(bad, good)
    return " ".join(text.split())


def meld(root: Path, split: str) -> list[TextRow]:
    """``split`` in train / dev / test (``{split}_sent_emo.csv``)."""
    rows = []
    path = _need(root / "meld" / f"{split}_sent_emo.csv")
    with path.open(encoding="utf-8", errors="replace", newline="") as f:
        for rec in csv.DictReader(f):
            label = rec["Emotion"].strip().lower()
            if label not in EKMAN_GROUPS:
                raise ValueError(f"{path}: unknown MELD emotion {label!r} (Sr No. {rec.get('Sr No.')})")
            rows.append(TextRow(_repair(rec["Utterance"]), "meld", label, group=EKMAN_GROUPS[label]))
    return rows


def clue(root: Path, split: str) -> list[TextRow]:
    """``split``: train (valid.jsonl rows i % 10 != 0), dev (valid.jsonl rows i % 10 == 0), test (test.jsonl)."""
    name = "test.jsonl" if split == "test" else "valid.jsonl"
    rows = []
    with _need(root / "clue_emotion" / name).open(encoding="utf-8") as f:
        for i, line in enumerate(f):
            if split == "train" and i % 10 == 0 or split == "dev" and i % 10 != 0:
                continue
            rec = json.loads(line)
            label = rec["label"]
            rows.append(TextRow(rec["content"].strip(), "clue", label, group=CLUE_GROUPS[label]))
    return rows


READERS = {"goemotions": goemotions, "meld": meld, "clue": clue}


def load(root: Path, corpus: str, split: str) -> list[TextRow]:
    return READERS[corpus](Path(root), split)
