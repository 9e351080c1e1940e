"""The one speaker split of the labelled corpora: no speaker on both sides, a balanced cap, clear errors."""

from __future__ import annotations

import csv
from collections import Counter

import pytest

from affectllm.instruct.labelled_corpora import (
    balanced_cap,
    heldout_speakers,
    read_labels,
    speaker_folds,
    split_by_speaker,
)

LABELS = ["neutral", "happy", "sad", "angry"]


def fake_corpora(tmp_path, speakers: dict[str, int], per_label: int = 5, skew: str | None = None):
    """labels.csv with ``speakers[corpus]`` speakers per corpus, ``per_label`` clips per (speaker, label);
    ``skew``: one corpus whose 'neutral' cell is 4x larger (to test the balance)."""
    rows = []
    for corpus, n in speakers.items():
        for s in range(n):
            for label in LABELS:
                count = per_label * (4 if corpus == skew and label == "neutral" else 1)
                rows += [{"path": f"{corpus}/{s}/{label}_{i}.flac", "corpus": corpus, "label": label,
                          "speaker": f"{corpus}_{s:02d}", "modality": "audio", "source_repo": "x",
                          "licence": "test"} for i in range(count)]
    with (tmp_path / "labels.csv").open("w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return read_labels(tmp_path)


def test_no_speaker_on_both_sides_and_every_corpus_held_out(tmp_path):
    rows = fake_corpora(tmp_path, {"ravdess": 16, "emodb": 7, "casia": 2})
    train, held = split_by_speaker(rows, fold=0, k=4)
    assert len(train) + len(held) == len(rows)
    train_spk, held_spk = {r["speaker"] for r in train}, {r["speaker"] for r in held}
    assert not train_spk & held_spk
    # round-robin over sorted names: ravdess 00, 04, 08, 12; emodb 00, 04; casia 00 (the other CASIA speaker trains)
    assert heldout_speakers(rows, 0, 4) == {"casia": ["casia_00"], "emodb": ["emodb_00", "emodb_04"],
                                            "ravdess": ["ravdess_00", "ravdess_04", "ravdess_08", "ravdess_12"]}
    assert held_spk == {s for v in heldout_speakers(rows, 0, 4).values() for s in v}
    # every fold is a partition by speaker: each clip in exactly one fold, a speaker never in two
    folds = speaker_folds(rows, 4)
    by_speaker: dict[str, set[int]] = {}
    for r, f in zip(rows, folds):
        by_speaker.setdefault(r["speaker"], set()).add(int(f))
    assert all(len(v) == 1 for v in by_speaker.values())
    assert sorted(Counter(folds.tolist())) == [0, 1, 2, 3]


def test_same_speaker_name_in_two_corpora_is_two_speakers(tmp_path):
    rows = fake_corpora(tmp_path, {"a": 2, "b": 2})
    for r in rows:
        r["speaker"] = r["speaker"].split("_")[1]  # "00", "01" in both corpora
    folds = speaker_folds(rows, 2)
    assert {(r["corpus"], r["speaker"], int(f)) for r, f in zip(rows, folds)} == {
        ("a", "00", 0), ("a", "01", 1), ("b", "00", 0), ("b", "01", 1)}


def test_balanced_cap_spreads_over_corpus_and_class(tmp_path):
    rows = fake_corpora(tmp_path, {"ravdess": 4, "emodb": 4, "casia": 4}, per_label=5, skew="ravdess")
    capped = balanced_cap(rows, 48, seed=0)
    assert len(capped) == 48 and len({r["path"] for r in capped}) == 48
    cells = Counter((r["corpus"], r["label"]) for r in capped)
    assert set(cells.values()) == {4}  # 12 cells x 4, although ravdess/neutral has 4x the clips
    assert capped == [r for r in rows if r in capped]  # input order kept
    assert balanced_cap(rows, 48, seed=0) == capped  # deterministic
    assert balanced_cap(rows, None) == rows and balanced_cap(rows, 10**6) == rows
    # a tiny cap still spans every corpus
    assert {r["corpus"] for r in balanced_cap(rows, 3)} == {"ravdess", "emodb", "casia"}


def test_small_cell_gives_all_it_has(tmp_path):
    rows = fake_corpora(tmp_path, {"x": 1}, per_label=10)
    rows = [r for r in rows if not (r["label"] == "sad" and not r["path"].endswith(("_0.flac", "_1.flac")))]
    counts = Counter(r["label"] for r in balanced_cap(rows, 20))
    assert counts["sad"] == 2 and sum(counts.values()) == 20 and counts["neutral"] == 6


def test_bad_labels_file_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="labels.csv"):
        read_labels(tmp_path)
    (tmp_path / "labels.csv").write_text("path,corpus,label\na.flac,x,happy\n")
    with pytest.raises(ValueError, match="speaker"):
        read_labels(tmp_path)


def test_starter_rows_split_by_speaker_and_capped(tmp_path):
    from affectllm.instruct.starter import corpus_samples

    fake_corpora(tmp_path, {"ravdess": 8, "emodb": 4, "casia": 2}, per_label=3)
    samples, info = corpus_samples(tmp_path, max_train=24, max_heldout=12)
    train = [s for s in samples if s.split == "train"]
    held = [s for s in samples if s.split == "heldout"]
    assert (len(train), len(held)) == (24, 12) and info["used"] == {"train": 24, "heldout": 12}
    assert not {s.meta["speaker"] for s in train} & {s.meta["speaker"] for s in held}
    assert {s.meta["speaker"] for s in held} <= {s for v in info["heldout_speakers"].values() for s in v}
    assert Counter(s.source for s in train) == {"ravdess": 8, "emodb": 8, "casia": 8}
    assert all(not s.synthetic and s.path.parent.parent.parent == tmp_path for s in samples)
    assert len({s.id for s in samples}) == len(samples)
