"""Writing caption records: JSONL (default) or CSV, flushed per record, resumable after a kill.

A record is written with one ``write`` + ``flush`` + ``fsync``, so a killed run leaves at most one partial last
line. ``open_writer(path, resume=True)`` reads the ids already present, cuts a partial last line (or CSV row)
off the file, and appends; the captioner then skips those ids, so a killed run restarted with ``--resume``
ends with every id exactly once. Without ``resume`` an existing file is replaced.

Records pass through ``portable_record`` first, so a file name that is not valid UTF-8 never stops the writer: it
is stored escaped, losslessly, with ``name_encoding`` saying so (see ``records``). CSV columns are ``RECORD_KEYS``; lists and objects (labels, evidence, segments, model, timing) are JSON text.
"""

from __future__ import annotations

import csv
import io
import json
import os
import sys
from pathlib import Path
from typing import Any, TextIO

from affectllm.captioning.records import RECORD_KEYS, portable_record

_NESTED = ("labels", "evidence", "segments", "model", "timing")


class RecordWriter:
    """Base writer: ``write(record)`` then ``close()``; ``existing`` maps ids already in the file to status."""

    def __init__(self) -> None:
        self.existing: dict[str, str] = {}
        self.path: Path | None = None

    def write(self, record: dict[str, Any]) -> None:
        raise NotImplementedError

    def close(self) -> None:
        pass

    def __enter__(self) -> RecordWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class StdoutWriter(RecordWriter):
    """JSON lines on stdout (no resume: there is no file to read back)."""

    def __init__(self, stream: TextIO | None = None) -> None:
        super().__init__()
        self.stream = stream or sys.stdout

    def write(self, record: dict[str, Any]) -> None:
        self.stream.write(json.dumps(portable_record(record), ensure_ascii=False) + "\n")
        self.stream.flush()


class _FileWriter(RecordWriter):
    def __init__(self, path: Path) -> None:
        super().__init__()
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self._f: TextIO | None = None

    def _emit(self, text: str) -> None:
        assert self._f is not None
        self._f.write(text)
        self._f.flush()
        os.fsync(self._f.fileno())

    def close(self) -> None:
        if self._f is not None:
            self._f.close()
            self._f = None


class JsonlWriter(_FileWriter):
    def __init__(self, path: Path, resume: bool = False) -> None:
        super().__init__(path)
        if resume and path.exists():
            self.existing = read_jsonl_ids(path, repair=True)
        self._f = path.open("a" if resume else "w", encoding="utf-8", newline="\n")

    def write(self, record: dict[str, Any]) -> None:
        self._emit(json.dumps(portable_record(record), ensure_ascii=False) + "\n")


class CsvWriter(_FileWriter):
    def __init__(self, path: Path, resume: bool = False) -> None:
        super().__init__(path)
        header_needed = True
        if resume and path.exists() and path.stat().st_size > 0:
            self.existing = read_csv_ids(path, repair=True)
            header_needed = path.stat().st_size == 0
        self._f = path.open("a" if resume else "w", encoding="utf-8", newline="")
        if header_needed:
            self._emit(_csv_line(list(RECORD_KEYS)))

    def write(self, record: dict[str, Any]) -> None:
        record = portable_record(record)
        row = []
        for k in RECORD_KEYS:
            v = record.get(k)
            row.append(json.dumps(v, ensure_ascii=False) if k in _NESTED else ("" if v is None else str(v)))
        self._emit(_csv_line(row))


def _csv_line(row: list[str]) -> str:
    buf = io.StringIO()
    csv.writer(buf, lineterminator="\n").writerow(row)
    return buf.getvalue()


def open_writer(out: str | os.PathLike[str] | None, resume: bool = False) -> RecordWriter:
    """The writer for ``--out``: None -> stdout JSONL, ``*.csv`` -> CSV, anything else -> JSONL."""
    if out is None or str(out) == "-":
        if resume:
            raise ValueError("--resume needs --out FILE (records on stdout cannot be read back)")
        return StdoutWriter()
    path = Path(out)
    if path.is_dir():
        raise ValueError(f"{path}: --out is a directory; give a file such as {path / 'captions.jsonl'}")
    return CsvWriter(path, resume) if path.suffix.lower() == ".csv" else JsonlWriter(path, resume)


def read_jsonl_ids(path: Path, repair: bool = False) -> dict[str, str]:
    """id -> status of the complete records in a JSONL file. ``repair`` truncates a partial last line.

    A complete line that is not valid JSON (not something this writer produces) is reported and ignored.
    """
    data = path.read_bytes()
    cut = data.rfind(b"\n") + 1  # bytes after the last newline are a partial record
    if repair and cut < len(data):
        with path.open("r+b") as f:
            f.truncate(cut)
    ids: dict[str, str] = {}
    for n, line in enumerate(data[:cut].splitlines(), start=1):
        if not line.strip():
            continue
        try:
            rec = json.loads(line)
        except json.JSONDecodeError:
            print(f"warning: {path}:{n} is not a JSON record; it is ignored (its input will be captioned again)",
                  file=sys.stderr)
            continue
        if isinstance(rec, dict) and "id" in rec:
            ids[str(rec["id"])] = str(rec.get("status", "ok"))
    return ids


def read_csv_ids(path: Path, repair: bool = False) -> dict[str, str]:
    """id -> status of the complete rows of a caption CSV; ``repair`` truncates a partial last row.

    Rows may span lines (quoted newlines), so completeness is judged row by row: a row is complete when it
    ends with a newline, its quotes are closed and it has every column.
    """
    text = path.read_bytes().decode("utf-8", errors="replace")
    lines = text.splitlines(keepends=True)
    reader = csv.reader(iter(lines), strict=True)
    ids: dict[str, str] = {}
    good_lines = 0
    header: list[str] | None = None
    try:
        for row in reader:
            consumed = reader.line_num
            if not lines[consumed - 1].endswith("\n"):
                break
            if header is None:
                header = row
            elif len(row) == len(header):
                rec = dict(zip(header, row, strict=True))
                ids[rec.get("id", "")] = rec.get("status", "ok")
            else:
                break
            good_lines = consumed
    except csv.Error:
        pass
    if header is not None and "id" not in header:
        raise ValueError(f"{path}: not a caption CSV (no 'id' column); choose another --out or drop --resume")
    if repair and good_lines < len(lines):
        keep = "".join(lines[:good_lines]).encode("utf-8")
        with path.open("r+b") as f:
            f.truncate(len(keep))
    return ids
