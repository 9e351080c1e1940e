"""Merging the shard files of one caption job into one file: ``affectllm caption-merge captions.jsonl``.

``--num-shards K`` writes ``captions.shard-0000I-of-0000K.jsonl`` per shard (``sharding.shard_path``). Merging
finds all K files of that name (or takes the files it is given), checks that none is missing, that none ends in
a partial record (a killed shard: finish it with ``--resume`` first) and that no id appears twice, then writes
the records in shard order to the one output. Nothing is written when a check fails, so a bad merge never
replaces a good file. JSONL and CSV shards both work; the output format follows the output's suffix.
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectllm.captioning.writer import _NESTED, open_writer

_SHARD_NAME = re.compile(r"^(?P<stem>.*)\.shard-(?P<index>\d{5})-of-(?P<count>\d{5})$")


class MergeError(ValueError):
    """A shard set that cannot be merged (the message names the file, the problem and the fix)."""


@dataclass
class MergeSummary:
    out: Path
    shards: list[Path]
    records: int
    failed: int  # records with status "error" (kept: they are part of the job's result)


def find_shards(out: str | Path) -> list[Path]:
    """The shard files of the job whose unsharded output is ``out``, checked complete (all K present)."""
    out = Path(out)
    pattern = re.compile(rf"^{re.escape(out.stem)}\.shard-(\d{{5}})-of-(\d{{5}}){re.escape(out.suffix)}$")
    found: dict[int, dict[int, Path]] = {}
    for p in sorted(out.parent.glob(f"{out.stem}.shard-*-of-*{out.suffix}")):
        m = pattern.match(p.name)
        if m:
            found.setdefault(int(m.group(2)), {})[int(m.group(1))] = p
    if not found:
        raise MergeError(f"{out}: no shard files {out.stem}.shard-*-of-*{out.suffix} beside it; run "
                         f"`affectllm caption ... --out {out} --num-shards K --shard-index I` first, or name the "
                         "shard files explicitly")
    if len(found) > 1:
        raise MergeError(f"{out}: shard files of several job sizes ({', '.join(f'of-{k:05d}' for k in sorted(found))})"
                         " sit beside it; delete the stale ones or name the files to merge explicitly")
    count, files = next(iter(found.items()))
    missing = [i for i in range(count) if i not in files]
    if missing:
        names = ", ".join(f"{out.stem}.shard-{i:05d}-of-{count:05d}{out.suffix}" for i in missing)
        raise MergeError(f"{out}: {len(missing)} of {count} shard files missing ({names}); run those shards "
                         f"(--num-shards {count} --shard-index I) and merge again")
    return [files[i] for i in range(count)]


def read_records(path: Path) -> list[dict[str, Any]]:
    """Every record of a caption JSONL/CSV file; a partial last record (a killed run) is an error."""
    data = path.read_bytes()
    if path.suffix.lower() == ".csv":
        return _read_csv(path, data)
    if data and not data.endswith(b"\n"):
        raise MergeError(f"{path}: ends in a partial record (the shard was interrupted); finish it with the same "
                         "caption command plus --resume, then merge again")
    from affectllm.instruct.io import JsonlError, iter_jsonl

    out = []
    try:
        for n, rec in iter_jsonl(path):
            if not isinstance(rec, dict) or "id" not in rec:
                raise MergeError(f"{path}:{n}: a JSON line without an 'id'; is this a caption output?")
            out.append(rec)
    except JsonlError as e:
        raise MergeError(f"{e}; is this a caption output?") from None
    return out


def _read_csv(path: Path, data: bytes) -> list[dict[str, Any]]:
    if data and not data.endswith(b"\n"):
        raise MergeError(f"{path}: ends in a partial row (the shard was interrupted); finish it with --resume")
    rows = list(csv.reader(io.StringIO(data.decode("utf-8"), newline="")))
    if not rows:
        return []
    header, out = rows[0], []
    if "id" not in header:
        raise MergeError(f"{path}: not a caption CSV (no 'id' column)")
    for n, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise MergeError(f"{path}: row {n} has {len(row)} fields, the header {len(header)}")
        rec: dict[str, Any] = {}
        for k, v in zip(header, row, strict=True):
            rec[k] = json.loads(v) if k in _NESTED and v else (v if v != "" else None)
        out.append(rec)
    return out


def merge_shards(out: str | Path, shards: list[str | Path] | None = None) -> MergeSummary:
    """Merge ``shards`` (default: the complete set found beside ``out``) into ``out``; every id exactly once."""
    out = Path(out)
    files = [Path(s) for s in shards] if shards else find_shards(out)
    if out.resolve() in {f.resolve() for f in files}:
        raise MergeError(f"{out}: the output is one of the shard files; choose another --out")
    seen: dict[str, Path] = {}
    records: list[dict[str, Any]] = []
    for f in files:
        if not f.is_file():
            raise MergeError(f"{f}: no such shard file")
        for rec in read_records(f):
            rid = str(rec["id"])
            if rid in seen:
                raise MergeError(f"{f}: id {rid!r} is also in {seen[rid]}; were the shards run with different "
                                 "--num-shards or inputs? Re-run the shard that is wrong")
            seen[rid] = f
            records.append(rec)
    tmp = out.with_name(f".{out.stem}.merging{out.suffix}")  # same format as out; renamed when complete
    with open_writer(tmp) as w:
        for rec in records:
            w.write(rec)
    tmp.replace(out)
    return MergeSummary(out, files, len(records), sum(1 for r in records if r.get("status") == "error"))


def shard_job_name(path: str | Path) -> str | None:
    """``caps.shard-00001-of-00004.jsonl`` -> ``caps.jsonl`` (None when the name is not a shard file's)."""
    p = Path(path)
    m = _SHARD_NAME.match(p.stem)
    return None if m is None else str(p.with_name(m.group("stem") + p.suffix))
