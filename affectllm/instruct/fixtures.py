"""A labelled instruction set from the real media in ../shared (RAVDESS, EmoDB, the labelled face grid).

Used to train and test the starter adapter: every label comes from the corpora's own annotation (file-name
codes, or the words printed on the face grid), nothing is synthetic. Split: for each (source, label) group with
two or more samples, the one whose seeded hash is smallest is held out; singletons train. Rows of one sample
always share a split.
"""

from __future__ import annotations

import hashlib
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from affectllm.instruct.builders import BuildSummary, get_builder, iter_rows
from affectllm.instruct.builders.base import BuildContext, Builder
from affectllm.instruct.compose import SourceSample
from affectllm.instruct.io import write_jsonl
from affectllm.instruct.schema import Row

FIXTURE_TASKS: tuple[str, ...] = ("ov_labels", "onehot", "describe")
FACE_LABELS: tuple[str, ...] = ("angry", "disgusted", "fearful", "happy", "sad", "surprised", "neutral")

# emotion_classification.jpg (1000x1000, a 2x2 grid): inside of each drawn box, below the printed word, measured
# by hand; the descriptions were written by looking at each crop.
_GRID = (
    ("top_left", "surprised", (148, 178, 300, 328),
     "Her eyes are wide open, her eyebrows are raised and her mouth hangs open in an O shape."),
    ("top_right", "happy", (670, 128, 848, 302),
     "He smiles with closed lips; the corners of his mouth are pulled up and his cheeks are raised."),
    ("bottom_left", "sad", (142, 606, 318, 792),
     "The corners of his mouth are pulled down, his lower lip is pushed up and his gaze is lowered."),
    ("bottom_right", "angry", (696, 664, 886, 853),
     "His brows are lowered and drawn together, his eyes are narrowed and his nose is wrinkled."),
)


class FaceGridBuilder(Builder):
    """The four labelled faces of ``faces/emotion_classification.jpg``, cropped to PNGs under ``crop_dir``."""

    name = "faces"
    summary = "the labelled 2x2 face grid of shared/media/faces (fixtures only)"
    layout = "faces/emotion_classification.jpg"

    def __init__(self, crop_dir: Path) -> None:
        self.crop_dir = Path(crop_dir)

    def samples(self, ctx: BuildContext) -> Iterator[SourceSample]:
        from PIL import Image

        path = ctx.locate(["emotion_classification.jpg"], main=True)
        assert path is not None
        self.crop_dir.mkdir(parents=True, exist_ok=True)
        with Image.open(path) as im:
            grid = im.convert("RGB")
        if grid.size != (1000, 1000):
            raise ValueError(f"{path}: expected the 1000x1000 grid of oarriaga/face_classification, got {grid.size}")
        for position, label, box, description in _GRID:
            out = self.crop_dir / f"emotion_classification_{position}.png"
            grid.crop(box).save(out)
            yield SourceSample(key=f"emotion_classification/{position}", source=self.name,
                               where=f"{path.name}:{position}", image=out, labels=[label],
                               label_set=list(FACE_LABELS), description=description,
                               meta={"original_label": {"surprised": "surprise"}.get(label, label)})


def _sample_id(row: Row) -> str:
    return row["id"].rsplit("/", 1)[0]


def _hash(seed: int, text: str) -> str:
    return hashlib.sha256(f"{seed}:{text}".encode()).hexdigest()


def build_fixture_set(
    shared: Path, out_dir: Path, *, seed: int = 0, tasks: Sequence[str] = FIXTURE_TASKS
) -> dict[str, Any]:
    """Write ``train.jsonl`` and ``heldout.jsonl`` (and the face crops) under ``out_dir``; returns a summary."""
    shared, out_dir = Path(shared), Path(out_dir)
    media = shared / "media"
    if not media.is_dir():
        raise FileNotFoundError(f"{shared}: no media/ folder; pass the ../shared fixtures folder")
    parts: list[tuple[Builder, Path]] = [
        (get_builder("ravdess"), media / "ravdess"),
        (get_builder("emodb"), media / "emodb"),
        (FaceGridBuilder(out_dir / "faces"), media / "faces" / "emotion_classification.jpg"),
    ]
    rows: list[Row] = []
    summaries: list[BuildSummary] = []
    for builder, root in parts:
        summary = BuildSummary(source=builder.name)
        rows += list(iter_rows(builder, root, summary, tasks=tasks, seed=seed, out_dir=out_dir))
        summaries.append(summary)

    groups: dict[tuple[str, str], set[str]] = defaultdict(set)
    for row in rows:
        groups[(row["source"], row["labels"][0])].add(_sample_id(row))
    heldout = {min(ids, key=lambda s: _hash(seed, s)) for ids in groups.values() if len(ids) >= 2}
    split_rows: dict[str, list[Row]] = {"train": [], "heldout": []}
    for row in rows:
        split = "heldout" if _sample_id(row) in heldout else "train"
        split_rows[split].append({**row, "split": split})
    for split, items in split_rows.items():
        write_jsonl(out_dir / f"{split}.jsonl", items)
    return {
        "rows": {split: len(items) for split, items in split_rows.items()},
        "samples": {split: len({_sample_id(r) for r in items}) for split, items in split_rows.items()},
        "labels": {split: dict(Counter(r["labels"][0] for r in items if r["task"] == "onehot"))
                   for split, items in split_rows.items()},
        "heldout_samples": sorted(heldout),
        "skipped": {s.source: dict(s.skipped) for s in summaries if s.skipped},
    }
