"""What to caption: files, folders, globs and CSV/JSONL manifests turned into ``CaptionInput`` rows with stable ids.

An id is what ``--resume`` and the shards key on, so it must not depend on the run: a file's id is its name, a
file found in a folder (or by a glob) is its path relative to that folder (or the glob's fixed prefix), and a
manifest row's id is its ``id`` column (else its ``path``). The list is sorted within each argument, so every
process of a sharded run sees the same inputs in the same order.

Explicit paths are always kept, even when they do not exist or are not media: they become error records that
name the problem. So does a folder argument with no media in it, and an unreadable sub-folder. Folders are walked for media extensions only (``notes.txt`` beside the clips is not an input).
"""

from __future__ import annotations

import glob
import os
from dataclasses import dataclass
from pathlib import Path

from affectllm.captioning.records import escape_name

VIDEO_EXTS = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".m4v", ".mpg", ".mpeg", ".wmv", ".flv", ".ts", ".3gp"}
AUDIO_EXTS = {".wav", ".flac", ".mp3", ".ogg", ".oga", ".opus", ".m4a", ".aac", ".wma", ".aiff", ".aif"}
IMAGE_EXTS = {".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif"}
MEDIA_EXTS = VIDEO_EXTS | AUDIO_EXTS | IMAGE_EXTS
MANIFEST_EXTS = {".csv", ".jsonl"}
_GLOB_CHARS = set("*?[")


class InputError(ValueError):
    """An argument that cannot be turned into inputs at all (a broken manifest, duplicate ids)."""


@dataclass(frozen=True)
class CaptionInput:
    """One thing to caption: a stable ``id``, the media ``path`` and an optional ``subtitle`` (what was said)."""

    id: str
    path: str
    subtitle: str | None = None

    def __post_init__(self) -> None:  # ids are always valid UTF-8 (resume, shards, writers key on them)
        object.__setattr__(self, "id", escape_name(self.id))


@dataclass
class Collected:
    """The inputs in order, plus the non-media files skipped while walking folders (reported, not captioned)."""

    inputs: list[CaptionInput]
    ignored: list[str]


def is_manifest(path: str | os.PathLike[str]) -> bool:
    return Path(path).suffix.lower() in MANIFEST_EXTS and Path(path).is_file()


def collect_inputs(specs: list[str]) -> Collected:
    """Expand command-line arguments (files, folders, globs, manifests) into unique, ordered inputs.

    Raises InputError when two different files would get the same id, or a manifest is malformed.
    """
    rows: list[CaptionInput] = []
    ignored: list[str] = []
    for spec in specs:
        if is_manifest(spec):
            rows.extend(read_manifest(spec))
        elif Path(spec).is_dir():
            found, skipped = _walk(Path(spec))
            rows.extend(CaptionInput(_rel_id(p, Path(spec)), str(p)) for p in found)
            ignored.extend(str(p) for p in skipped)
            if not found:  # a folder that yields nothing is still an input: its error record says why
                rows.append(CaptionInput(Path(spec).name or spec, spec))
        elif not Path(spec).exists() and _GLOB_CHARS & set(spec):
            rows.extend(_expand_glob(spec))
        else:  # a file, or a path that does not exist: an error record will say so
            rows.append(CaptionInput(Path(spec).name or spec, spec))
    return Collected(_dedupe(rows), ignored)


def _walk(root: Path) -> tuple[list[Path], list[Path]]:
    """(media files, other files) under ``root``; a sub-folder that cannot be read counts as a media input,
    so it gets an error record instead of vanishing."""
    media, other = [], []
    unreadable: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root, onerror=lambda e: unreadable.append(Path(e.filename))):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for name in sorted(filenames):
            if name.startswith("."):
                continue
            p = Path(dirpath) / name
            (media if p.suffix.lower() in MEDIA_EXTS else other).append(p)
    media.extend(p for p in unreadable if p != root)  # root itself: the caller makes it one error input
    return sorted(media, key=lambda p: p.relative_to(root).as_posix()), other


def _expand_glob(pattern: str) -> list[CaptionInput]:
    base = _glob_base(pattern)
    matches = sorted(glob.glob(pattern, recursive=True))
    out = []
    for m in matches:
        p = Path(m)
        if p.is_dir():
            found, _ = _walk(p)
            out.extend(CaptionInput(_rel_id(f, base), str(f)) for f in found)
        else:
            out.append(CaptionInput(_rel_id(p, base), str(p)))
    if not out:  # a pattern that matches nothing is reported like a missing file
        out.append(CaptionInput(pattern, pattern))
    return out


def _glob_base(pattern: str) -> Path:
    """The folder part of a glob before its first wildcard (``clips/**/*.mp4`` -> ``clips``)."""
    parts = Path(pattern).parts
    fixed = []
    for part in parts:
        if _GLOB_CHARS & set(part):
            break
        fixed.append(part)
    return Path(*fixed) if fixed else Path(".")


def _rel_id(path: Path, base: Path) -> str:
    try:
        return path.relative_to(base).as_posix()
    except ValueError:
        return path.as_posix()


def read_manifest(path: str | os.PathLike[str]) -> list[CaptionInput]:
    """Rows of a CSV (header ``id,path[,subtitle]``) or JSONL (``{"id", "path", "subtitle"}``) manifest.

    Relative media paths are resolved against the manifest's folder. ``id`` defaults to ``path``. A malformed
    row (an unclosed quote, the wrong number of fields) raises InputError naming the file and line: no row is
    ever dropped or merged into another.
    """
    mpath = Path(path)
    records: list[tuple[int, dict]] = []
    if mpath.suffix.lower() == ".csv":
        records = _read_csv_manifest(mpath)
    else:
        from affectllm.instruct.io import JsonlError, iter_jsonl

        try:
            for n, obj in iter_jsonl(mpath):
                if not isinstance(obj, dict):
                    raise InputError(f"{mpath}:{n}: expected a JSON object with 'path', got {type(obj).__name__}")
                records.append((n, obj))
        except JsonlError as e:
            raise InputError(str(e)) from None
    out = []
    for n, rec in records:
        media = str(rec.get("path") or "").strip()
        if not media:
            raise InputError(f"{mpath}:{n}: the row has no 'path'; give every row the media file's path")
        full = media if Path(media).is_absolute() else str(mpath.parent / media)
        rid = str(rec.get("id") or "").strip() or media
        sub = rec.get("subtitle")
        sub = str(sub).strip() if sub is not None and str(sub).strip() else None
        out.append(CaptionInput(rid, full, sub))
    seen: dict[str, int] = {}
    for i, row in enumerate(out):
        if row.id in seen:
            raise InputError(f"{mpath}: id {row.id!r} appears twice (rows {records[seen[row.id]][0]} and "
                             f"{records[i][0]}); ids must be unique so --resume can skip finished rows")
        seen[row.id] = i
    return out


def _read_csv_manifest(mpath: Path) -> list[tuple[int, dict]]:
    """(line, row) pairs of a CSV manifest, header checked, every row the header's width, no field over lines."""
    from affectllm.instruct.io import CsvError, iter_csv_rows

    out: list[tuple[int, dict]] = []
    header: list[str] | None = None
    try:
        for line, row in iter_csv_rows(mpath):
            if header is None:
                header = [c.strip() for c in row]
                if "path" not in header:
                    raise InputError(f"{mpath}:{line}: a caption manifest needs a header with a 'path' column "
                                     "(and optionally 'id' and 'subtitle'); add the header line")
                continue
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise InputError(f"{mpath}:{line}: {len(row)} fields, expected {len(header)} ({','.join(header)}); "
                                 "quote fields that contain commas and close every quote")
            rec = dict(zip(header, row))
            for col in ("id", "path"):
                if "\n" in (rec.get(col) or ""):
                    raise InputError(f"{mpath}:{line}: the '{col}' field runs over several lines; a quote is "
                                     "probably not closed: close it so no row is swallowed")
            out.append((line, rec))
    except CsvError as e:
        raise InputError(str(e)) from None
    if header is None:
        raise InputError(f"{mpath}: empty manifest; write a header line 'id,path[,subtitle]' and one row per file")
    return out


def _dedupe(rows: list[CaptionInput]) -> list[CaptionInput]:
    """Drop repeats of the same file under the same id; two different files under one id is an error."""
    by_id: dict[str, CaptionInput] = {}
    out = []
    for row in rows:
        prev = by_id.get(row.id)
        if prev is None:
            by_id[row.id] = row
            out.append(row)
        elif _same_file(prev.path, row.path) and prev.subtitle == row.subtitle:
            continue
        else:
            raise InputError(f"two inputs share the id {row.id!r} ({prev.path} and {row.path}); pass their "
                             "common parent folder instead, or use a manifest with explicit ids")
    return out


def _same_file(a: str, b: str) -> bool:
    try:
        return os.path.realpath(a) == os.path.realpath(b)
    except OSError:  # pragma: no cover - realpath only fails on exotic filesystems
        return a == b
