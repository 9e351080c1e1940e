"""load_dataset: bad rows are reported with their id and skipped (counted), never a crash; paths absolute."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import pytest

from affectllm.instruct import DataError, load_dataset, read_dataset, scan_file
from affectllm.report import format_report


def row(i: int, media: str = "clips/a.wav", **over: object) -> dict:
    r = {"id": f"t/{i}", "audio": media, "task": "ov_labels", "source": "t", "labels": ["happy"],
         "conversations": [{"role": "user", "content": "<audio>\nWhich emotions?"},
                           {"role": "assistant", "content": format_report(["happy"], "She laughs.")}],
         "meta": {"speaker": i}}
    r.update(over)
    return r


@pytest.fixture
def data(tmp_path: Path) -> Path:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.wav").write_bytes(b"\x00")
    lines = [json.dumps(row(0)),
             json.dumps(row(1, "clips/missing.wav")),  # missing media
             "{not json",  # malformed line
             json.dumps(row(0)),  # duplicate id
             json.dumps(row(4, valence=0.5, arousal=None)),  # arousal null: wrong type
             json.dumps(row(5, subtitle="Ha!"))]
    path = tmp_path / "train.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_rows_are_logged_with_id_and_skipped(data: Path, tmp_path: Path,
                                                 caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="affectllm.instruct.data"):
        ds, report = read_dataset(data, cache_dir=tmp_path / "hf")
    assert ds["id"] == ["t/0", "t/5"]
    assert ds["line"] == [1, 6]
    assert (report.rows, report.valid, report.invalid_rows, report.missing_media) == (6, 2, 4, 1)
    assert report.bad_lines == {2, 3, 4, 5}
    text = caplog.text
    assert "train.jsonl:2 [t/1] skipped: audio: file not found" in text
    assert "train.jsonl:3 skipped: <line>: not valid JSON" in text
    assert "train.jsonl:4 [t/0] skipped: id: duplicate id 't/0'" in text
    assert "train.jsonl:5 [t/4] skipped: arousal" in text
    assert "skipped 4 of 6 rows (1 missing media files)" in text


def test_rows_have_absolute_media_and_typed_fields(data: Path, tmp_path: Path) -> None:
    ds = load_dataset(data, cache_dir=tmp_path / "hf")
    first = ds[0]
    assert first["audio"] == str((data.parent / "clips" / "a.wav").resolve())
    assert first["video"] is None and first["image"] is None and first["valence"] is None
    assert first["meta"] == {"speaker": 0}
    assert first["conversations"][1]["content"].startswith("Labels: happy")
    assert ds[1]["subtitle"] == "Ha!"


def test_strict_and_empty(data: Path, tmp_path: Path) -> None:
    with pytest.raises(DataError, match="4 bad row"):
        load_dataset(data, strict=True, cache_dir=tmp_path / "hf")
    empty = tmp_path / "empty.jsonl"
    empty.write_text("{}\n", encoding="utf-8")
    with pytest.raises(DataError, match="no valid rows"):
        load_dataset(empty, cache_dir=tmp_path / "hf")


def test_media_check_can_be_turned_off(data: Path, tmp_path: Path) -> None:
    assert load_dataset(data, check_media=False, cache_dir=tmp_path / "hf")["id"] == ["t/0", "t/1", "t/5"]


def test_an_edited_file_is_not_served_from_a_stale_cache(data: Path, tmp_path: Path) -> None:
    assert len(load_dataset(data, cache_dir=tmp_path / "hf")) == 2
    with data.open("a", encoding="utf-8") as f:
        f.write(json.dumps(row(9)) + "\n")
    ds = load_dataset(data, cache_dir=tmp_path / "hf")
    assert ds["id"] == ["t/0", "t/5", "t/9"]


def test_scan_counts_tasks_sources_and_media(data: Path) -> None:
    report = scan_file(data, check_media=True)
    assert report.tasks == {"ov_labels": 5} and report.sources == {"t": 5} and report.media == {"audio": 5}
    assert report.lines(True)[-1] == "  missing media files: 1"
