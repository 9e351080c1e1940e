"""Writers: JSONL/CSV flushed per record, and resume that repairs a partial last record."""

from __future__ import annotations

import csv
import io
import json

import pytest

from affectllm.captioning.records import RECORD_KEYS
from affectllm.captioning.writer import CsvWriter, JsonlWriter, StdoutWriter, open_writer, read_csv_ids


def _rec(i, status="ok", explanation="fine"):
    rec = dict.fromkeys(RECORD_KEYS)
    rec.update(id=f"id{i}", source=f"/m/{i}.mp4", status=status, labels=["calm", "happy"], explanation=explanation,
               evidence={"face": {"frames": 4}}, segments=[], model={"name": "t", "trained": False},
               timing={"total_s": 0.1})
    return rec


def test_jsonl_records_are_on_disk_after_each_write(tmp_path):
    path = tmp_path / "o.jsonl"
    w = JsonlWriter(path)
    w.write(_rec(0))
    assert json.loads(path.read_text().splitlines()[0])["id"] == "id0"  # flushed before close
    w.write(_rec(1))
    w.close()
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["id0", "id1"]


def test_jsonl_resume_cuts_a_partial_last_line_and_appends(tmp_path):
    path = tmp_path / "o.jsonl"
    with JsonlWriter(path) as w:
        w.write(_rec(0))
        w.write(_rec(1, status="error"))
    whole = path.read_bytes()
    path.write_bytes(whole + json.dumps(_rec(2)).encode()[:37])  # killed mid-write
    with JsonlWriter(path, resume=True) as w:
        assert w.existing == {"id0": "ok", "id1": "error"}
        w.write(_rec(2))
    lines = path.read_text().splitlines()
    assert [json.loads(x)["id"] for x in lines] == ["id0", "id1", "id2"]


def test_jsonl_without_resume_replaces_the_file(tmp_path):
    path = tmp_path / "o.jsonl"
    path.write_text('{"id": "old"}\n')
    with JsonlWriter(path) as w:
        assert w.existing == {}
        w.write(_rec(5))
    assert [json.loads(x)["id"] for x in path.read_text().splitlines()] == ["id5"]


def test_csv_round_trip_keeps_newlines_and_nested_json(tmp_path):
    path = tmp_path / "o.csv"
    with CsvWriter(path) as w:
        w.write(_rec(0, explanation="line one\nline two, with \"quotes\""))
    rows = list(csv.DictReader(path.open(newline="")))
    assert list(rows[0]) == list(RECORD_KEYS)
    assert rows[0]["explanation"] == "line one\nline two, with \"quotes\""
    assert json.loads(rows[0]["labels"]) == ["calm", "happy"]
    assert json.loads(rows[0]["evidence"]) == {"face": {"frames": 4}}
    assert rows[0]["valence"] == ""  # None


@pytest.mark.parametrize("cut", [5, 40, -3])
def test_csv_resume_drops_a_partial_row_even_inside_a_quoted_newline(tmp_path, cut):
    path = tmp_path / "o.csv"
    with CsvWriter(path) as w:
        w.write(_rec(0))
        w.write(_rec(1, explanation="first\nsecond"))
    full = path.read_bytes()
    first_row_end = full.index(b"\n", full.index(b"id0")) + 1
    partial = full[: len(full) + cut] if cut < 0 else full[: first_row_end + cut]
    path.write_bytes(partial)
    assert read_csv_ids(path) == {"id0": "ok"}
    with CsvWriter(path, resume=True) as w:
        w.write(_rec(1, explanation="first\nsecond"))
    assert path.read_bytes() == full


def test_csv_resume_after_a_partial_header_rewrites_it(tmp_path):
    path = tmp_path / "o.csv"
    path.write_text("id,sou")
    with CsvWriter(path, resume=True) as w:
        assert w.existing == {}
        w.write(_rec(0))
    assert [r["id"] for r in csv.DictReader(path.open(newline=""))] == ["id0"]


def test_open_writer_picks_the_format_and_refuses_resume_on_stdout(tmp_path):
    assert isinstance(open_writer(tmp_path / "a.csv"), CsvWriter)
    assert isinstance(open_writer(tmp_path / "a.jsonl"), JsonlWriter)
    assert isinstance(open_writer(None), StdoutWriter)
    with pytest.raises(ValueError, match="--resume needs --out"):
        open_writer(None, resume=True)
    with pytest.raises(ValueError, match="is a directory"):
        open_writer(tmp_path)


def test_stdout_writer_writes_one_json_line_per_record():
    buf = io.StringIO()
    StdoutWriter(buf).write(_rec(3))
    assert json.loads(buf.getvalue())["id"] == "id3" and buf.getvalue().count("\n") == 1
