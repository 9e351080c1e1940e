"""Validate a whole instruction file in one streaming pass, and load it as a `datasets.Dataset` for training.

`scan_file` reports every bad row (line, id, field) and counts rows, tasks, sources and media kinds;
`load_dataset` runs that scan, logs and skips bad rows (a malformed line, a missing media file, a duplicate id)
instead of failing mid-epoch, and builds the Dataset from the good rows with media paths made absolute. The
Arrow cache is keyed by the file's SHA-256 and the skipped lines, so an edited file is never served stale.
"""

from __future__ import annotations

import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from affectllm.instruct.io import JsonlError, iter_jsonl
from affectllm.instruct.schema import MEDIA_KEYS, RowError, check_row, resolve_media
from affectllm.utils.fingerprint import sha256_file

if TYPE_CHECKING:
    import datasets

log = logging.getLogger("affectllm.instruct.data")


class DataError(ValueError):
    """An instruction file that cannot be used (every row bad, or any bad row under ``strict``)."""


@dataclass
class FileReport:
    """The result of scanning one JSONL file."""

    path: Path
    rows: int = 0  # non-blank lines
    valid: int = 0
    invalid_rows: int = 0
    missing_media: int = 0  # media paths that do not exist (only counted with check_media)
    bad_lines: set[int] = field(default_factory=set)
    tasks: Counter[str] = field(default_factory=Counter)
    sources: Counter[str] = field(default_factory=Counter)
    media: Counter[str] = field(default_factory=Counter)  # video / audio / image / subtitle only
    first_errors: list[str] = field(default_factory=list)  # the first few, for messages

    @property
    def ok(self) -> bool:
        return self.invalid_rows == 0

    def lines(self, check_media: bool = False) -> list[str]:
        def fmt(c: Counter[str]) -> str:
            return ", ".join(f"{k} {v}" for k, v in sorted(c.items())) or "none"

        out = [f"{self.path}: {self.rows} rows, {self.valid} valid, {self.invalid_rows} with errors",
               f"  tasks: {fmt(self.tasks)}", f"  sources: {fmt(self.sources)}", f"  media: {fmt(self.media)}"]
        if check_media:
            out.append(f"  missing media files: {self.missing_media}")
        return out


def scan_file(
    path: str | os.PathLike[str],
    *,
    check_media: bool = False,
    on_error: Callable[[RowError, str | None], None] | None = None,
    keep_errors: int = 20,
) -> FileReport:
    """Stream ``path`` once: validate every row, count what is there, hand each error to ``on_error``.

    ``on_error(error, row_id)`` is called for every problem (a row may have several). Duplicate ids are errors
    on the later rows. Memory: the set of ids seen, nothing else per row.
    """
    path = Path(path)
    report = FileReport(path=path)
    base_dir = path.resolve().parent
    ids: set[str] = set()

    def emit(err: RowError, rid: str | None) -> None:
        if len(report.first_errors) < keep_errors:
            report.first_errors.append(f"{path.name}:{err.line}" + (f" [{rid}]" if rid else "")
                                       + f" {err.field}: {err.message}")
        if on_error is not None:
            on_error(err, rid)

    def bad_line(e: JsonlError) -> None:
        report.rows += 1
        report.invalid_rows += 1
        report.bad_lines.add(e.line)
        emit(RowError(e.line, "<line>", e.problem), None)

    for line_no, row in iter_jsonl(path, on_bad_line=bad_line):
        report.rows += 1
        errors = check_row(row, line_no, base_dir, check_media)
        rid = row.get("id") if isinstance(row, dict) and isinstance(row.get("id"), str) else None
        if rid is not None:
            if rid in ids:
                errors.append(RowError(line_no, "id", f"duplicate id {rid!r}; ids must be unique", "duplicate"))
            ids.add(rid)
        if isinstance(row, dict):
            if isinstance(row.get("task"), str):
                report.tasks[row["task"]] += 1
            if isinstance(row.get("source"), str):
                report.sources[row["source"]] += 1
            kinds = [k for k in MEDIA_KEYS if isinstance(row.get(k), str)]
            for k in kinds:
                report.media[k] += 1
            if not kinds:
                report.media["subtitle only"] += 1
        report.missing_media += sum(e.kind == "missing_media" for e in errors)
        if errors:
            report.invalid_rows += 1
            report.bad_lines.add(line_no)
            for e in errors:
                emit(e, rid)
        else:
            report.valid += 1
    return report


def validate_file(path: str | os.PathLike[str], check_media: bool = False) -> list[str]:
    """Every error of a file as ``line N, field 'F': problem`` strings (empty: the file is valid)."""
    errors: list[str] = []
    scan_file(path, check_media=check_media, on_error=lambda e, rid: errors.append(str(e)))
    return errors


def _features() -> datasets.Features:
    from datasets import Features, Json, List, Value

    text = Value("string")
    return Features({
        "id": text, "line": Value("int64"),
        "video": text, "audio": text, "image": text, "subtitle": text,
        "conversations": List({"role": text, "content": text}),
        "task": text, "source": text,
        "labels": List(text), "label_set": List(text),
        "valence": Value("float64"), "arousal": Value("float64"),
        "description": text, "split": text, "meta": Json(),
    })


def _generate(path: str, skip: str, digest: str) -> Iterator[dict[str, Any]]:
    """Rows of ``path`` not in ``skip`` (JSON list of line numbers), normalised to the Dataset features."""
    del digest  # only part of the cache key
    skipped = set(json.loads(skip))
    base_dir = Path(path).parent
    for line_no, row in iter_jsonl(path, on_bad_line=lambda e: None):
        if line_no in skipped:
            continue
        out: dict[str, Any] = {k: row.get(k) for k in ("id", "subtitle", "conversations", "task", "source",
                                                       "labels", "label_set", "valence", "arousal",
                                                       "description", "split", "meta")}
        out["line"] = line_no
        for k in MEDIA_KEYS:
            out[k] = str(resolve_media(row[k], base_dir)) if row.get(k) else None
        for k in ("valence", "arousal"):
            out[k] = None if out[k] is None else float(out[k])
        yield out


def read_dataset(
    path: str | os.PathLike[str],
    *,
    check_media: bool = True,
    strict: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> tuple[datasets.Dataset, FileReport]:
    """The good rows of an instruction file as a Dataset, plus the scan report (bad rows logged and skipped).

    Media stay path strings, made absolute. ``strict`` raises `DataError` on any bad row instead of skipping.
    """
    from datasets import Dataset

    path = Path(path).resolve()

    def warn(err: RowError, rid: str | None) -> None:
        log.warning("%s:%d%s skipped: %s: %s", path.name, err.line, f" [{rid}]" if rid else "", err.field,
                    err.message)

    report = scan_file(path, check_media=check_media, on_error=None if strict else warn)
    if strict and not report.ok:
        raise DataError(f"{path}: {report.invalid_rows} bad row(s), e.g. " + "; ".join(report.first_errors[:5])
                        + "; run `affectllm data validate` to list all, or load without strict to skip them")
    if report.valid == 0:
        raise DataError(f"{path}: no valid rows ({report.rows} read); run `affectllm data validate "
                        f"{path}{' --check-media' if check_media else ''}` to see why")
    if report.invalid_rows:
        log.warning("%s: skipped %d of %d rows (%d missing media files); see the warnings above",
                    path.name, report.invalid_rows, report.rows, report.missing_media)
    ds = Dataset.from_generator(
        _generate, features=_features(), cache_dir=str(cache_dir) if cache_dir else None,
        gen_kwargs={"path": str(path), "skip": json.dumps(sorted(report.bad_lines)), "digest": sha256_file(path)},
    )
    return ds, report


def load_dataset(
    path: str | os.PathLike[str],
    *,
    check_media: bool = True,
    strict: bool = False,
    cache_dir: str | os.PathLike[str] | None = None,
) -> datasets.Dataset:
    """An instruction JSONL file as a `datasets.Dataset` of its valid rows (see `read_dataset`)."""
    return read_dataset(path, check_media=check_media, strict=strict, cache_dir=cache_dir)[0]
