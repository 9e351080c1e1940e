"""Streaming JSONL (line numbers, clear errors), atomic writes, and the streaming JSON object reader."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from affectllm.instruct import JsonlError, iter_json_items, iter_jsonl, write_jsonl


def test_iter_jsonl_numbers_lines_and_skips_blanks(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'\xef\xbb\xbf{"a": 1}\n\n  \n{"a": "\xc3\xa9"}\n')
    assert list(iter_jsonl(p)) == [(1, {"a": 1}), (4, {"a": "é"})]


def test_iter_jsonl_bad_line_raises_with_file_and_line(tmp_path: Path) -> None:
    p = tmp_path / "a.jsonl"
    p.write_bytes(b'{"a": 1}\n{"a": \n\xff\xfe\n')
    with pytest.raises(JsonlError) as e:
        list(iter_jsonl(p))
    assert e.value.line == 2 and str(e.value).startswith(f"{p}:2: not valid JSON")
    bad: list[JsonlError] = []
    assert list(iter_jsonl(p, on_bad_line=bad.append)) == [(1, {"a": 1})]
    assert [(b.line, b.problem.split(" (")[0]) for b in bad] == [(2, "not valid JSON"), (3, "not UTF-8")]


def test_iter_jsonl_missing_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such JSONL file"):
        list(iter_jsonl(tmp_path / "nope.jsonl"))


def test_write_jsonl_is_atomic_and_round_trips(tmp_path: Path) -> None:
    p = tmp_path / "sub" / "out.jsonl"
    rows = [{"id": "1", "text": "ünïcode ✓"}, {"id": "2", "n": [1, 2]}]
    assert write_jsonl(p, rows) == 2
    assert [r for _, r in iter_jsonl(p)] == rows
    assert "ünïcode ✓" in p.read_text(encoding="utf-8")  # not \u-escaped
    umask = os.umask(0)
    os.umask(umask)
    assert p.stat().st_mode & 0o777 == 0o666 & ~umask  # not mkstemp's 0600

    def failing() -> object:
        yield {"id": "3"}
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_jsonl(p, failing())  # type: ignore[arg-type]
    assert [r for _, r in iter_jsonl(p)] == rows  # the old file is intact
    assert sorted(x.name for x in p.parent.iterdir()) == ["out.jsonl"]  # no temp file left


@pytest.mark.parametrize("chunk", [1, 3, 7, 64, 1 << 20])
def test_iter_json_items_streams_objects_and_arrays(tmp_path: Path, chunk: int) -> None:
    obj = {"s1": {"caption": "a \"quoted\" word", "n": 12345678, "x": [1.5e3, None, True]},
           "s2": {"caption": "ünï"}, "s3": 1234567890123}
    p = tmp_path / "o.json"
    p.write_text(json.dumps(obj, indent=2, ensure_ascii=False), encoding="utf-8")
    assert dict(iter_json_items(p, chunk_size=chunk)) == obj
    p.write_text(json.dumps(list(obj.values())), encoding="utf-8")
    assert list(iter_json_items(p, chunk_size=chunk)) == list(enumerate(obj.values()))
    p.write_text(" { } ", encoding="utf-8")
    assert list(iter_json_items(p, chunk_size=chunk)) == []


@pytest.mark.parametrize(("text", "needle"), [('{"a": 1 "b": 2}', "expected ','"), ('{"a" 1}', "expected ':'"),
                                              ('{"a": [1, 2}', "malformed JSON"), ("3", r"expected '\{' or '\['"),
                                              ('{1: 2}', "malformed JSON")])
def test_iter_json_items_malformed(tmp_path: Path, text: str, needle: str) -> None:
    p = tmp_path / "bad.json"
    p.write_text(text, encoding="utf-8")
    with pytest.raises(ValueError, match=needle):
        list(iter_json_items(p, chunk_size=4))
