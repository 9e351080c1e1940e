"""On-disk lookup tables for builders: media files by name, and CSV side tables keyed by sample name.

Joining a corpus' annotation files (labels, descriptions, subtitles) or finding 100k clips by name must not hold
the corpus in memory, so both live in a throw-away SQLite file; the builder streams its main file and looks the
rest up here.
"""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import sys
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

VIDEO_EXTS = frozenset({".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v", ".mpg", ".mpeg", ".wmv"})
AUDIO_EXTS = frozenset({".wav", ".flac", ".mp3", ".m4a", ".ogg", ".opus", ".aac"})
IMAGE_EXTS = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".webp"})
KIND_EXTS = {"video": VIDEO_EXTS, "audio": AUDIO_EXTS, "image": IMAGE_EXTS}


class Scratch:
    """A temporary SQLite database that disappears when the build ends (use as a context manager)."""

    def __init__(self) -> None:
        self._dir = tempfile.TemporaryDirectory(prefix="affectllm-build-")
        self.db = sqlite3.connect(os.path.join(self._dir.name, "index.sqlite"))
        self.db.execute("PRAGMA journal_mode=OFF")
        self.db.execute("PRAGMA synchronous=OFF")
        self._n = 0

    def table_name(self, stem: str) -> str:
        self._n += 1
        return f"{''.join(c if c.isalnum() else '_' for c in stem)}_{self._n}"

    def close(self) -> None:
        self.db.close()
        self._dir.cleanup()

    def __enter__(self) -> Scratch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class MediaIndex:
    """Media files under a root folder, found by file stem (name without extension), built on first use."""

    def __init__(self, scratch: Scratch, root: Path) -> None:
        self.scratch, self.root = scratch, Path(root)
        self.table = scratch.table_name("media")
        self._built = False

    def _build(self) -> None:
        db = self.scratch.db
        db.execute(f"CREATE TABLE {self.table} (stem TEXT, ext TEXT, rel TEXT)")
        exts = VIDEO_EXTS | AUDIO_EXTS | IMAGE_EXTS

        def walk() -> Iterator[tuple[str, str, str]]:
            for dirpath, dirnames, filenames in os.walk(self.root):
                dirnames.sort()
                for name in sorted(filenames):
                    stem, ext = os.path.splitext(name)
                    if ext.lower() in exts:
                        rel = os.path.relpath(os.path.join(dirpath, name), self.root)
                        yield stem, ext.lower(), rel

        db.executemany(f"INSERT INTO {self.table} VALUES (?, ?, ?)", walk())
        db.execute(f"CREATE INDEX {self.table}_stem ON {self.table} (stem)")
        self._built = True

    def find(self, stem: str, kind: str, hint: str | None = None) -> Path | None:
        """The file named ``stem`` of ``kind`` (video/audio/image); with several, prefer a path containing ``hint``."""
        if not self._built:
            self._build()
        rows = self.scratch.db.execute(f"SELECT ext, rel FROM {self.table} WHERE stem = ?", (stem,)).fetchall()
        found = sorted(rel for ext, rel in rows if ext in KIND_EXTS[kind])
        if not found:
            return None
        if hint and len(found) > 1:
            hinted = [rel for rel in found if hint.lower() in rel.lower()]
            found = hinted or found
        return self.root / found[0]


class KeyTable:
    """A side table: sample key -> (annotation line, payload dict), stored on disk; first occurrence wins."""

    def __init__(self, scratch: Scratch, label: str, items: Iterable[tuple[str, int, dict[str, Any]]]) -> None:
        self.scratch, self.label = scratch, label
        self.table = scratch.table_name(label)
        db = scratch.db
        db.execute(f"CREATE TABLE {self.table} (seq INTEGER PRIMARY KEY, key TEXT UNIQUE, line INT, payload TEXT)")
        self.duplicates: list[tuple[str, int]] = []  # (key, line) of the rows ignored as repeats
        for key, line, payload in items:
            cur = db.execute(f"INSERT OR IGNORE INTO {self.table} (key, line, payload) VALUES (?, ?, ?)",
                             (key, line, json.dumps(payload, ensure_ascii=False)))
            if cur.rowcount == 0:
                self.duplicates.append((key, line))
        db.commit()

    def get(self, key: str) -> tuple[int, dict[str, Any]] | None:
        row = self.scratch.db.execute(f"SELECT line, payload FROM {self.table} WHERE key = ?", (key,)).fetchone()
        return None if row is None else (row[0], json.loads(row[1]))

    def __contains__(self, key: str) -> bool:
        return self.get(key) is not None

    def keys(self) -> Iterator[tuple[str, int]]:
        """Keys with their annotation line, in file order (streamed from disk)."""
        last, db = 0, self.scratch.db
        while True:  # in batches, so no read cursor stays open while the caller writes other tables
            batch = db.execute(f"SELECT seq, key, line FROM {self.table} WHERE seq > ? ORDER BY seq LIMIT 1000",
                               (last,)).fetchall()
            if not batch:
                return
            last = batch[-1][0]
            for _, key, line in batch:
                yield key, line


def _raise_csv_field_limit() -> None:
    limit = sys.maxsize
    while True:  # long descriptions exceed csv's 128 kB default field limit
        try:
            csv.field_size_limit(limit)
            return
        except OverflowError:
            limit //= 10


def iter_csv(
    path: Path, need: Sequence[Sequence[str]], optional: Sequence[Sequence[str]] = ()
) -> Iterator[tuple[int, dict[str, str]]]:
    """Stream a CSV as ``(line_no, row)``; ``need`` lists required columns, each as accepted alternative names.

    Each row maps the *first* alternative name to its value (so callers use one spelling); ``optional`` columns
    are included when the file has them (missing ones read as ""). Files are read as
    UTF-8 (BOM allowed); undecodable bytes become U+FFFD rather than stopping the build.
    """
    _raise_csv_field_limit()
    with open(path, encoding="utf-8-sig", errors="replace", newline="") as f:
        reader = csv.DictReader(f)
        header = [h.strip() for h in (reader.fieldnames or [])]
        lower = {h.lower(): h for h in header}
        mapping: dict[str, str] = {}
        for alternatives in need:
            hit = next((lower[a.lower()] for a in alternatives if a.lower() in lower), None)
            if hit is None:
                raise ValueError(f"{path}: no column {' or '.join(repr(a) for a in alternatives)} "
                                 f"(columns: {', '.join(header) or 'none'}); is this the right file?")
            mapping[alternatives[0]] = hit
        for alternatives in optional:
            hit = next((lower[a.lower()] for a in alternatives if a.lower() in lower), None)
            mapping[alternatives[0]] = hit or ""
        reader.fieldnames = header
        for row in reader:
            yield reader.line_num, {name: (row.get(col) or "").strip() if col else "" for name, col in mapping.items()}
