"""MER-family builders on tiny synthetic copies of the MER2025 / EMER layouts (plus the real EMER-V1 and
OV-MERD label files in ../shared)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from affectllm.instruct import iter_jsonl, validate_file
from affectllm.instruct.builders import BuildSummary, build, get_builder, iter_rows
from affectllm.instruct.labels import parse_list_string
from affectllm.report import parse_report


def write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")
    return path


@pytest.fixture
def mer2025(tmp_path: Path) -> Path:
    root = tmp_path / "mer2025-dataset"
    for name in ("sample_1", "sample_2", "sample_3", "sample_5"):
        touch(root / "video" / f"{name}.mp4")
    touch(root / "audio" / "sample_1.wav")
    write_csv(root / "track2_train_mercaptionplus.csv", ["name", "openset"], [
        ["sample_1", "['happy', 'relieved']"], ["sample_2", "[]"], ["sample_4", "['sad']"], ["", "['x']"],
        ["sample_1", "['angry']"],
    ])
    write_csv(root / "track3_train_mercaptionplus.csv", ["name", "reason"], [
        ["sample_1", "In the video, she smiles. In the audio, her voice is bright."],
        ["sample_3", "A calm man talks, his tone is flat."],
        ["sample_5", ""],
    ])
    write_csv(root / "subtitle_chieng.csv", ["name", "chinese", "english"], [
        ["sample_1", "太好了", "Great!"], ["sample_2", "你好", ""],
    ])
    return root


def test_mer_caption_plus_joins_labels_descriptions_and_subtitles(mer2025: Path, tmp_path: Path) -> None:
    out = tmp_path / "out" / "mcp.jsonl"
    summary = build(get_builder("mer-caption-plus"), mer2025, out, seed=1)
    rows = {r["id"]: r for _, r in iter_jsonl(out)}
    assert validate_file(out, check_media=True) == []
    s1 = rows["mer-caption-plus/sample_1/describe"]
    assert s1["labels"] == ["happy", "relieved"]
    assert s1["subtitle"] == "Great!"
    assert s1["video"].endswith("video/sample_1.mp4") and s1["audio"].endswith("audio/sample_1.wav")
    assert parse_report(s1["conversations"][1]["content"]).explanation.startswith("In the video, she smiles.")
    assert s1["split"] == "train" and s1["meta"]["annotation"] == "track2_train_mercaptionplus.csv:2"
    s2 = rows["mer-caption-plus/sample_2/ov_labels"]  # empty open set -> neutral, Chinese subtitle as fallback
    assert (s2["labels"], s2["subtitle"], s2["meta"]["empty_openset"]) == (["neutral"], "你好", True)
    assert s2["audio"] == s2["video"]  # no pre-extracted wav: the video's own audio track
    assert rows["mer-caption-plus/sample_3/alignment"]["description"] == "A calm man talks, his tone is flat."
    assert {r["task"] for r in rows.values() if "/sample_3/" in r["id"]} == {"alignment"}  # no labels known
    assert summary.samples_used == 3 and summary.rows == len(rows) == 4 + 1 + 1
    # sample_4 has no clip, one row has no name, sample_1 is listed twice, sample_5 has neither label nor reason
    assert summary.skipped == {"media not found": 1, "malformed row": 1, "duplicate name": 1,
                               "no known target for the requested tasks": 1}


def test_ov_merd_reads_its_own_files_and_limit_counts_samples(tmp_path: Path) -> None:
    root = tmp_path / "d"
    for i in range(5):
        touch(root / "video" / f"s{i}.avi")
    write_csv(root / "track2_train_ovmerd.csv", ["name", "openset"], [[f"s{i}", "['a', \"b\"]"] for i in range(5)])
    summary = BuildSummary(source="ov-merd")
    rows = list(iter_rows(get_builder("ov-merd"), root, summary, limit=2, tasks=["ov_labels"]))
    assert [r["id"] for r in rows] == ["ov-merd/s0/ov_labels", "ov-merd/s1/ov_labels"]
    assert rows[0]["labels"] == ["a", "b"] and rows[0]["video"].endswith("s0.avi")
    with pytest.raises(FileNotFoundError, match="track2_train_ovmerd.csv nor track3_train_ovmerd.csv"):
        list(iter_rows(get_builder("ov-merd"), tmp_path / "d" / "video", BuildSummary(source="x")))


def test_wrong_columns_name_the_file(tmp_path: Path) -> None:
    write_csv(tmp_path / "track2_train_ovmerd.csv", ["id", "labels"], [["a", "b"]])
    with pytest.raises(ValueError, match=r"track2_train_ovmerd.csv: no column 'name' \(columns: id, labels\)"):
        list(iter_rows(get_builder("ov-merd"), tmp_path, BuildSummary(source="x")))


def test_emer_v1_synthetic(tmp_path: Path) -> None:
    write_csv(tmp_path / "gt-eng.csv", ["names", "emotions", "subtitles", "reasons"], [
        ["sample_a", "surprise", "Really?", "His eyes widen and his voice jumps. Therefore he is surprised."],
        ["sample_b", "", "x", "y"],
    ])
    touch(tmp_path / "clips" / "sample_a.mp4")
    out = tmp_path / "v1.jsonl"
    summary = build(get_builder("emer-v1"), tmp_path, out)
    rows = {r["task"]: r for _, r in iter_jsonl(out)}
    assert set(rows) == {"describe", "ov_labels", "onehot", "followup", "alignment"}
    assert rows["onehot"]["labels"] == ["surprised"] and rows["onehot"]["meta"]["original_label"] == "surprise"
    assert "worried" in rows["onehot"]["conversations"][0]["content"]  # the MER2023 label set is offered
    assert summary.skipped == {"malformed row": 1}


def test_emer_v1_real_file_without_clips(shared: Path, tmp_path: Path) -> None:
    """The real 100-row EMER-V1 file: clips are not distributed, so build text-only rows."""
    out = tmp_path / "v1.jsonl"
    summary = build(get_builder("emer-v1"), shared / "data" / "emer_v1" / "gt-eng.csv", out, tasks=["onehot"],
                    require_media=False)
    with open(shared / "data" / "emer_v1" / "gt-eng.csv", encoding="utf-8", newline="") as f:
        gt = [r for r in csv.DictReader(f)]
    with_subtitle = [r for r in gt if r["subtitles"].strip()]
    rows = [r for _, r in iter_jsonl(out)]
    assert len(gt) == 100 and summary.rows == len(rows) == len(with_subtitle)
    assert summary.skipped == {"no media and no subtitle": 100 - len(with_subtitle)}
    for row, ref in zip(rows, with_subtitle, strict=True):
        assert row["id"] == f"emer-v1/{ref['names']}/onehot"
        assert row["meta"]["original_label"] == ref["emotions"]
    assert validate_file(out) == []


def test_emer_v2_joins_open_set_labels(tmp_path: Path) -> None:
    write_csv(tmp_path / "final-EMER-reason.csv", ["name", "chinese", "english"], [
        ["s1", "中文", "In the video he frowns. His voice is low."], ["s2", "中文", "She smiles."], ["s3", "x", ""],
    ])
    write_csv(tmp_path / "check-openset.csv", ["name", "openset"], [["s1", "['worried', 'sad']"]])
    for name in ("s1", "s2", "s3"):
        touch(tmp_path / "video" / f"{name}.mp4")
    out = tmp_path / "v2.jsonl"
    summary = build(get_builder("emer-v2"), tmp_path, out)
    tasks = {(r["id"].split("/")[1], r["task"]) for _, r in iter_jsonl(out)}
    assert tasks == {("s1", t) for t in ("describe", "ov_labels", "followup", "alignment")} | {("s2", "alignment")}
    assert summary.skipped == {"malformed row": 1}


def test_parse_list_string_on_the_real_ov_merd_labels(shared: Path) -> None:
    with open(shared / "data" / "mer2024_ov" / "check-openset.csv", encoding="utf-8", newline="") as f:
        sets = [parse_list_string(r["openset"]) for r in csv.DictReader(f)]
    assert len(sets) == 332
    assert round(sum(map(len, sets)) / len(sets), 1) == 3.4  # DATA.md: mean 3.4 labels
    assert parse_list_string("['Happy', \"relieved\" ,, ' ']") == ["happy", "relieved"]
    assert parse_list_string(None) == [] and parse_list_string("[]") == []
