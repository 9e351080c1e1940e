"""The labelled speech corpora (``../shared/corpora/labels.csv``): one reader and one speaker split for everyone.

The voice expert (``train/train_voice_expert.py``), the quality benchmark (``bench/quality.py``) and the starter
instruction set (``instruct_data/build_starter.py``) all split by **speaker**, never by clip: the same actor on
both sides inflates accuracy by 20-40 points on acted corpora. Inside each corpus the speakers, sorted by name,
are dealt round-robin into ``k`` folds; fold ``k`` holds out its speakers of every corpus at once. With the
shipped corpora and ``k = 4`` the starter's held-out fold (``HELDOUT_FOLD = 0``) is RAVDESS actors 01, 05, 09,
13, EmoDB speakers 03 and 11, and CASIA's liuchanhg (``heldout_speakers`` prints it for any labels.csv).
"""

from __future__ import annotations

import csv
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path

import numpy as np

FOLDS = 4
HELDOUT_FOLD = 0
REQUIRED = ("path", "corpus", "label", "speaker")


def read_labels(corpora: Path) -> list[dict[str, str]]:
    """Rows of ``corpora/labels.csv`` (path, corpus, label, speaker, ...), in file order."""
    path = Path(corpora) / "labels.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no labels.csv; pass --corpora pointing at ../shared/corpora")
    with path.open(newline="") as f:
        rows = list(csv.DictReader(f))
    missing = [c for c in REQUIRED if rows and c not in rows[0]]
    if missing:
        raise ValueError(f"{path}: missing column(s) {', '.join(missing)}; labels.csv needs {', '.join(REQUIRED)}")
    return rows


def speaker_folds(rows: Sequence[dict[str, str]], k: int = FOLDS) -> np.ndarray:
    """Fold id per row ``[N]``: the speakers of each corpus, sorted by name, dealt round-robin into ``k`` folds."""
    fold_of: dict[tuple[str, str], int] = {}
    for corpus in sorted({r["corpus"] for r in rows}):
        speakers = sorted({r["speaker"] for r in rows if r["corpus"] == corpus})
        fold_of.update({(corpus, s): i % k for i, s in enumerate(speakers)})
    return np.array([fold_of[(r["corpus"], r["speaker"])] for r in rows], dtype=np.int64)


def heldout_speakers(rows: Sequence[dict[str, str]], fold: int = HELDOUT_FOLD, k: int = FOLDS) -> dict[str, list[str]]:
    """corpus -> the speakers of ``fold`` (the ones a fold head never hears)."""
    folds = speaker_folds(rows, k)
    out: dict[str, set[str]] = defaultdict(set)
    for r, f in zip(rows, folds):
        if f == fold:
            out[r["corpus"]].add(r["speaker"])
    return {c: sorted(s) for c, s in sorted(out.items())}


def split_by_speaker(rows: Sequence[dict[str, str]], fold: int = HELDOUT_FOLD,
                     k: int = FOLDS) -> tuple[list[dict[str, str]], list[dict[str, str]]]:
    """(train, heldout): held-out = the rows of ``fold``'s speakers, train = every other speaker's rows."""
    folds = speaker_folds(rows, k)
    train = [r for r, f in zip(rows, folds) if f != fold]
    held = [r for r, f in zip(rows, folds) if f == fold]
    return train, held


def balanced_cap(rows: Sequence[dict[str, str]], cap: int | None, seed: int = 0) -> list[dict[str, str]]:
    """At most ``cap`` rows, spread as evenly as the data allows over (corpus, label) cells.

    Cells are filled round-robin, corpora interleaved (each cell's rows in a seeded shuffle), so a small cell
    gives all it has and the rest goes to the larger ones. The result keeps the input order; ``cap=None`` keeps everything.
    """
    if cap is None or cap >= len(rows):
        return list(rows)
    rng = np.random.default_rng(seed)
    cells: dict[tuple[str, str], list[int]] = defaultdict(list)
    for i, r in enumerate(rows):
        cells[(r["corpus"], r["label"])].append(i)
    rank = {cell: sorted(c for c in cells if c[0] == cell[0]).index(cell) for cell in cells}
    order = sorted(cells, key=lambda cell: (rank[cell], cell[0]))  # corpora interleaved: small caps span them all
    queues = [list(np.array(cells[c])[rng.permutation(len(cells[c]))]) for c in order]
    picked: list[int] = []
    while len(picked) < cap:
        for q in queues:
            if q and len(picked) < cap:
                picked.append(int(q.pop(0)))
    return [rows[i] for i in sorted(picked)]
