"""Streaming readers and atomic writers for instruction data: JSONL and strict CSV with line numbers, big JSON.

Nothing here holds a whole file in memory: `iter_jsonl` reads line by line and `iter_json_items` walks the
top-level object (or array) of a large JSON file item by item (MERR's annotation files are one big object).
"""

from __future__ import annotations

import csv
import io
import json
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any


class JsonlError(ValueError):
    """A line of a JSONL file that is not one JSON object; names the file, the line and the fix."""

    def __init__(self, path: str | os.PathLike[str], line: int, problem: str) -> None:
        self.path, self.line, self.problem = str(path), line, problem
        super().__init__(f"{path}:{line}: {problem}")


def iter_jsonl(
    path: str | os.PathLike[str], on_bad_line: Callable[[JsonlError], None] | None = None
) -> Iterator[tuple[int, Any]]:
    """Yield ``(line_no, value)`` for each non-blank line (1-based numbers).

    A line that is not valid UTF-8 JSON raises `JsonlError`, or, when ``on_bad_line`` is given, is handed to it
    and skipped, so a validator can report every bad line in one pass.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such JSONL file; check the path")
    with path.open("rb") as f:
        for line_no, raw in enumerate(f, start=1):
            if line_no == 1 and raw.startswith(b"\xef\xbb\xbf"):
                raw = raw[3:]
            if not raw.strip():
                continue
            try:
                text = raw.decode("utf-8")
                value = json.loads(text)
            except UnicodeDecodeError as e:
                bad = JsonlError(path, line_no, f"not UTF-8 ({e.reason} at byte {e.start}); re-save as UTF-8")
            except json.JSONDecodeError as e:
                bad = JsonlError(path, line_no, f"not valid JSON ({e.msg} at column {e.colno}); "
                                                "each line must be one complete JSON object")
            else:
                yield line_no, value
                continue
            if on_bad_line is None:
                raise bad
            on_bad_line(bad)


class CsvError(ValueError):
    """A CSV file that cannot be read row by row; names the file, the line(s) and the fix."""


def iter_csv_rows(path: str | os.PathLike[str]) -> Iterator[tuple[int, list[str]]]:
    """Yield ``(first_line, row)`` for every row of a UTF-8 CSV (header included), quoting read strictly.

    An unclosed quote never swallows the rows after it: a field that spans lines in a row of the wrong length, or
    a quote still open at the end of the file, raises `CsvError` naming where the broken row starts.
    """
    path = Path(path)
    data = path.read_bytes()
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise CsvError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); re-save the file as UTF-8 "
                       "(e.g. iconv -f latin1 -t utf-8, or 'CSV UTF-8' in a spreadsheet)") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    first = 1  # where the row being read starts: a quoted field may span lines
    try:
        for row in reader:
            yield first, row
            first = reader.line_num + 1
    except csv.Error as e:
        raise CsvError(csv_problem(path, first, reader.line_num, e)) from None


def csv_problem(path: str | os.PathLike[str], first: int, last: int, err: csv.Error) -> str:
    """The message for a `csv.Error` raised while reading lines ``first``..``last`` of ``path``."""
    text = str(err)
    line = f"{first}" if last <= first else f"{first}-{last}"
    if "field larger than field limit" in text:
        return (f"{path}:{line}: a field is longer than {csv.field_size_limit()} characters; shorten it (or write "
                "the rows as JSONL), and check for an unclosed quote that swallowed the rest of the file")
    if "unexpected end of data" in text or "expected after" in text:
        return (f"{path}:{line}: a quoted field is not closed ({text}); close the quote, and double quotes "
                "inside a quoted field (\"\")")
    return f"{path}:{line}: malformed CSV ({text}); fix the quoting of that row"


def write_jsonl(path: str | os.PathLike[str], rows: Iterable[dict[str, Any]]) -> int:
    """Write rows as UTF-8 JSONL atomically (a temp file in the same folder, then rename); returns the count."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    n = 0
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the file the usual permissions
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            for row in rows:
                f.write(json.dumps(row, ensure_ascii=False) + "\n")
                n += 1
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return n


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


_WS = re.compile(r"\s*")


class _JsonStream:
    """A growing text window over a file, for decoding one JSON value at a time."""

    def __init__(self, f: Any, path: Path, chunk_size: int) -> None:
        self.f, self.path, self.chunk_size = f, path, chunk_size
        self.buf, self.pos, self.eof = "", 0, False
        self.decoder = json.JSONDecoder()

    def _fill(self) -> None:
        chunk = self.f.read(self.chunk_size)
        self.eof = not chunk
        self.buf = self.buf[self.pos:] + chunk
        self.pos = 0

    def peek(self) -> str:
        """The next non-whitespace character ('' at the end of the file)."""
        while True:
            self.pos = _WS.match(self.buf, self.pos).end()  # type: ignore[union-attr]
            if self.pos < len(self.buf) or self.eof:
                return self.buf[self.pos] if self.pos < len(self.buf) else ""
            self._fill()

    def expect(self, chars: str, what: str) -> str:
        c = self.peek()
        if not c or c not in chars:
            raise ValueError(f"{self.path}: malformed JSON: expected {what}, found {c or 'end of file'!r}")
        self.pos += 1
        return c

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = self.decoder.raw_decode(self.buf, self.pos)
            except json.JSONDecodeError as e:
                if self.eof:
                    raise ValueError(f"{self.path}: malformed JSON: {e.msg}") from None
                self._fill()
                continue
            if end >= len(self.buf) and not self.eof:  # a number may continue in the next chunk
                self._fill()
                continue
            self.pos = end
            return value


def iter_json_items(path: str | os.PathLike[str], chunk_size: int = 1 << 20) -> Iterator[tuple[Any, Any]]:
    """Stream a JSON file's top level: ``(key, value)`` for an object, ``(index, value)`` for an array."""
    path = Path(path)
    with path.open("r", encoding="utf-8-sig") as f:
        s = _JsonStream(f, path, chunk_size)
        opener = s.expect("{[", "'{' or '[' at the start")
        closer = "}" if opener == "{" else "]"
        index = 0
        if s.peek() == closer:
            return
        while True:
            if opener == "{":
                key = s.value()
                if not isinstance(key, str):
                    raise ValueError(f"{path}: malformed JSON: object key {key!r} is not a string")
                s.expect(":", "':' after a key")
            else:
                key = index
            yield key, s.value()
            index += 1
            if s.expect("," + closer, f"',' or '{closer}'") == closer:
                return
