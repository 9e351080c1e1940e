"""Reading ground truth and predictions: CSV, JSONL (our caption reports) and the official ``.npz``.

Every problem names the file and line and says how to fix it: text must be UTF-8, CSV quoting is strict (an
unclosed quote is an error, never a swallowed row), empty files are errors, and an ``.npz`` must be a zip archive
of string arrays (checked from its first bytes before numpy opens it). ``.npz`` files are opened with
``allow_pickle=False``: a file that needs unpickling is refused, never executed.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectllm.evaluation.parsing import PANDAS_NA
from affectllm.instruct.io import csv_problem as _csv_problem
from affectllm.utils.fingerprint import sha256_file

ID_COLUMNS = ("name", "names", "id", "sample_id", "filename")
LABEL_COLUMNS = ("openset", "labels", "label", "discrete", "emotion", "emotions")
TEXT_COLUMNS = ("reason", "reasons", "explanation", "description", "response", "raw")
NUMBER_COLUMNS = ("valence", "sentiment", "score")


class EvalInputError(ValueError):
    """A ground-truth or prediction file cannot be used; the message names file, line and fix."""


@dataclass
class Record:
    """One sample of a ground-truth or prediction file."""

    labels: Any = None  # list-string or list, parsed later by the metric's own (official) parser
    text: str | None = None  # free-text explanation / reason
    number: float | None = None  # valence or sentiment score
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class SampleFile:
    """A ground-truth or prediction file: id → Record, in file order, with provenance."""

    records: dict[str, Record]
    path: str | None = None
    sha256: str | None = None
    fmt: str = "mapping"
    duplicates: list[str] = field(default_factory=list)

    @property
    def ids(self) -> list[str]:
        return list(self.records)

    def provenance(self) -> dict[str, Any]:
        return {"path": self.path, "sha256": self.sha256, "format": self.fmt, "n": len(self.records),
                "duplicate_ids": len(self.duplicates)}


def _number(value: str, where: str) -> float | None:
    if value is None or value.strip() in PANDAS_NA:
        return None
    words = {"positive": 1.0, "negative": -1.0, "neutral": 0.0}
    v = value.strip().lower()
    if v in words:
        return words[v]
    try:
        x = float(v)
    except ValueError:
        raise EvalInputError(f"{where}: '{value}' is not a number or positive/negative/neutral") from None
    if not math.isfinite(x):
        raise EvalInputError(f"{where}: '{value}' is not a finite number")
    return x


def _pick(header: list[str], choices: tuple[str, ...], wanted: str | None) -> str | None:
    lower = {h.strip().lower(): h for h in header}
    if wanted is not None:
        return lower.get(wanted.lower())
    return next((lower[c] for c in choices if c in lower), None)


def read_csv(path: Path, id_column: str | None = None, label_column: str | None = None,
             text_column: str | None = None, number_column: str | None = None,
             subtitle_column: str | None = None) -> SampleFile:
    """A CSV with an id column and at least one of labels / text / number columns."""
    records: dict[str, Record] = {}
    dups: list[str] = []
    reader = csv.reader(io.StringIO(_utf8_text(path, bom=True), newline=""), strict=True)
    first_line = 1  # where the row being read starts: a quoted field may span lines
    try:
        header = next(reader, None)
        if not header:
            raise EvalInputError(f"{path}: empty file; expected a header such as 'name,openset'")
        idc = _pick(header, ID_COLUMNS, id_column)
        lab = _pick(header, LABEL_COLUMNS, label_column)
        txt = _pick(header, TEXT_COLUMNS, text_column)
        num = _pick(header, NUMBER_COLUMNS, number_column)
        sub = _pick(header, (), subtitle_column) if subtitle_column else None
        for wanted, got in ((id_column, idc), (label_column, lab), (text_column, txt), (number_column, num),
                            (subtitle_column, sub)):
            if wanted and got is None:
                raise EvalInputError(f"{path}:1: column '{wanted}' (named by the task) is not in the header {header}")
        if idc is None:
            raise EvalInputError(f"{path}:1: no id column (one of {', '.join(id_column and [id_column] or ID_COLUMNS)}) "
                                 f"in header {header}")
        if lab is None and txt is None and num is None:
            raise EvalInputError(f"{path}:1: header {header} has no label column ({', '.join(LABEL_COLUMNS)}), "
                                 f"text column ({', '.join(TEXT_COLUMNS)}) or number column ({', '.join(NUMBER_COLUMNS)})")
        index = {h: i for i, h in enumerate(header)}
        first_line = reader.line_num + 1
        for row in reader:
            line, first_line = first_line, reader.line_num + 1
            if not row or all(not c.strip() for c in row):
                continue
            if len(row) != len(header):
                raise EvalInputError(
                    f"{path}:{line}: {len(row)} fields, expected {len(header)} ({','.join(header)}); "
                    "quote fields that contain commas, e.g. name,\"['happy', 'sad']\"")
            sid = row[index[idc]].strip()
            if not sid:
                raise EvalInputError(f"{path}:{line}: empty id in column '{idc}'")
            for col in (idc, lab):
                if col and "\n" in row[index[col]]:
                    raise EvalInputError(f"{path}:{line}: the '{col}' field runs over lines {line}-{reader.line_num}; "
                                         "a quote is probably not closed: close it so no row is swallowed")
            rec = Record(
                labels=row[index[lab]] if lab else None,
                text=row[index[txt]] if txt else None,
                number=_number(row[index[num]], f"{path}:{line}") if num else None,
                extra={"subtitle": row[index[sub]]} if sub else {},
            )
            if sid in records:
                dups.append(sid)
            records[sid] = rec
    except csv.Error as e:
        raise EvalInputError(_csv_problem(path, first_line, reader.line_num, e)) from None
    return SampleFile(records, str(path), sha256_file(path), "csv", dups)


def _utf8_text(path: Path, bom: bool = False) -> str:
    """The file as text; EvalInputError with the line of the first byte that is not UTF-8."""
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig" if bom else "utf-8")
    except UnicodeDecodeError as e:
        line = data[:e.start].count(b"\n") + 1
        raise EvalInputError(f"{path}:{line}: not UTF-8 text (byte 0x{data[e.start]:02x}); re-save the file as "
                             "UTF-8 (e.g. iconv -f latin1 -t utf-8, or 'CSV UTF-8' in a spreadsheet)") from None


def read_jsonl(path: Path) -> SampleFile:
    """One JSON object per line: ``id`` (or ``name``) plus ``labels`` and/or ``explanation``/``raw``/``valence``
    (an EmotionReport dict, optionally nested under ``report``)."""
    records: dict[str, Record] = {}
    dups: list[str] = []
    for line_no, line in enumerate(_utf8_text(path).split("\n"), start=1):
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except json.JSONDecodeError as e:
            raise EvalInputError(f"{path}:{line_no}: not valid JSON ({e.msg}); write one object per line") from None
        if not isinstance(obj, dict):
            raise EvalInputError(f"{path}:{line_no}: expected a JSON object, found {type(obj).__name__}")
        sid = next((obj[k] for k in ("id", "name", "sample_id") if k in obj), None)
        if sid is None or str(sid).strip() == "":
            raise EvalInputError(f"{path}:{line_no}: no 'id' field; each line needs \"id\": \"<sample id>\"")
        body = obj.get("report") if isinstance(obj.get("report"), dict) else obj
        labels = body.get("labels", body.get("openset"))
        if labels is not None and not isinstance(labels, (list, str)):
            raise EvalInputError(f"{path}:{line_no}: 'labels' must be a list of strings or a list-string")
        text = body.get("explanation") or body.get("reason") or body.get("raw") or None
        num = body.get("valence", body.get("sentiment"))
        number = _number(str(num), f"{path}:{line_no}") if num is not None else None
        sid = str(sid).strip()
        if sid in records:
            dups.append(sid)
        records[sid] = Record(labels=labels, text=text, number=number)
    return SampleFile(records, str(path), sha256_file(path), "jsonl", dups)


def read_npz(path: Path) -> SampleFile:
    """The official AffectGPT ``.npz``: string arrays ``filenames`` and ``fileitems``; never unpickled."""
    import zipfile

    import numpy as np

    with open(path, "rb") as f:
        magic = f.read(4)
    if not magic:
        raise EvalInputError(f"{path}: the file is empty (0 bytes); write the predictions again")
    if magic != b"PK\x03\x04":
        what = ("a single .npy array, not an .npz archive" if magic == b"\x93NUM" else
                "a pickle, which AffectLLM never loads" if magic[:1] == b"\x80" else
                "not a valid .npz (an .npz is a zip archive of .npy arrays; this file is not a zip archive)")
        raise EvalInputError(f"{path}: {what}; save the predictions with np.savez(path, filenames=..., "
                             "fileitems=...) as string arrays, or as CSV/JSONL")
    try:
        with np.load(path, allow_pickle=False) as z:
            missing = [k for k in ("filenames", "fileitems") if k not in z.files]
            if missing:
                raise EvalInputError(f"{path}: missing array(s) {', '.join(missing)}; found {', '.join(z.files)}")
            names, items = z["filenames"], z["fileitems"]
    except ValueError as e:
        if "allow_pickle" in str(e) or "Object arrays" in str(e):
            raise EvalInputError(
                f"{path}: the arrays are pickled Python objects, which AffectLLM refuses to load (unpickling runs "
                "arbitrary code). Re-save them as string arrays: np.savez(path, filenames=np.array(names, dtype=str), "
                "fileitems=np.array([str(x) for x in items], dtype=str))") from None
        raise EvalInputError(f"{path}: not a readable .npz ({e})") from None
    except (zipfile.BadZipFile, EOFError, OSError, KeyError) as e:
        raise EvalInputError(f"{path}: a truncated or corrupt .npz ({type(e).__name__}: {e}); copy or write "
                             "the file again") from None
    if names.shape != items.shape or names.ndim != 1:
        raise EvalInputError(f"{path}: filenames {names.shape} and fileitems {items.shape} must be 1-D of equal length")
    records: dict[str, Record] = {}
    dups: list[str] = []
    for n, it in zip(names.tolist(), items.tolist(), strict=True):
        if n in records:
            dups.append(n)
        records[str(n)] = Record(labels=str(it), text=str(it))
    return SampleFile(records, str(path), sha256_file(path), "npz", dups)


def load_samples(source: str | os.PathLike[str] | SampleFile | Mapping[str, Any], **columns: str | None) -> SampleFile:
    """A file path (.csv / .jsonl / .npz), an already-loaded SampleFile, or a mapping id → labels (or Record)."""
    if isinstance(source, SampleFile):
        return source
    if isinstance(source, Mapping):
        recs = {str(k): v if isinstance(v, Record) else
                Record(number=float(v)) if isinstance(v, (int, float)) else Record(labels=v)
                for k, v in source.items()}
        return SampleFile(recs)
    path = Path(source)
    if not path.is_file():
        raise EvalInputError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".npz":
        loaded = read_npz(path)
    elif suffix in (".jsonl", ".json"):
        loaded = read_jsonl(path)
    else:
        loaded = read_csv(path, **columns)
    if not loaded.records:
        raise EvalInputError(f"{path}: no samples in the file; an empty file would score 0 on everything, so "
                             "write the predictions (or ground truth) into it first")
    return loaded


@dataclass
class Alignment:
    """Which ids the two sides share; predictions are looked up per ground-truth id (missing = empty)."""

    gt_only: list[str]
    pred_only: list[str]

    def to_dict(self, n_examples: int = 5) -> dict[str, Any]:
        return {
            "missing_predictions": {"count": len(self.gt_only), "examples": self.gt_only[:n_examples],
                                    "handling": "scored as an empty prediction (official protocol)"},
            "extra_predictions": {"count": len(self.pred_only), "examples": self.pred_only[:n_examples],
                                  "handling": "ignored (not in the ground truth)"},
        }


def align(gt: SampleFile, pred: SampleFile) -> Alignment:
    gt_ids, pred_ids = gt.records.keys(), pred.records.keys()
    return Alignment([i for i in gt.records if i not in pred_ids], [i for i in pred.records if i not in gt_ids])


def read_synonym_groups(path: str | os.PathLike[str]) -> dict[str, Any]:
    """MER2024 synonym-group cache: a .zip or folder of ``<id>.npy`` string arrays (openset-synonym.zip), or a
    JSON object / JSONL lines mapping id → list of lists. Arrays are read with ``allow_pickle=False``."""
    import io as _io
    import zipfile

    p = Path(path)
    out: dict[str, Any] = {}

    def _npy(name: str, data: bytes) -> None:
        import numpy as np

        try:
            out[Path(name).stem] = np.load(_io.BytesIO(data), allow_pickle=False).tolist()
        except ValueError as e:
            raise EvalInputError(f"{p}: {name} cannot be read without unpickling ({e}); AffectLLM refuses pickled "
                                 "arrays — re-save each file with np.save(path, str(groups))") from None

    if p.is_dir():
        for f in sorted(p.rglob("*.npy")):
            _npy(f.name, f.read_bytes())
    elif p.suffix.lower() == ".zip":
        with zipfile.ZipFile(p) as z:
            for name in sorted(z.namelist()):
                if name.endswith(".npy") and not Path(name).name.startswith("."):
                    _npy(Path(name).name, z.read(name))
    elif p.suffix.lower() in (".json", ".jsonl"):
        text = p.read_text(encoding="utf-8")
        if p.suffix.lower() == ".json":
            out.update(json.loads(text))
        else:
            for i, line in enumerate(text.splitlines(), start=1):
                if line.strip():
                    try:
                        obj = json.loads(line)
                        out[str(obj["id"])] = obj["groups"]
                    except (json.JSONDecodeError, KeyError, TypeError):
                        raise EvalInputError(f"{p}:{i}: expected {{\"id\": ..., \"groups\": [[...], ...]}}") from None
    else:
        raise EvalInputError(f"{p}: synonym groups must be a .zip or folder of .npy files, or .json/.jsonl")
    if not out:
        raise EvalInputError(f"{p}: no synonym groups found (expected <sample id>.npy files)")
    return out
