"""The OV-MER label-normalisation resources (format.csv, synonym.xlsx, wheel1-5.xlsx): locate, hash and read them.

The maps are built exactly as the AffectGPT reference builds them (see ../shared/DATA.md, "How the official metric
uses them"): surface form → canonical names, canonical/synonym → emotion-wheel words, and the three-level wheels
with forward-filled blank cells. xlsx files are read with openpyxl (pandas is slow to import and not needed).
"""

from __future__ import annotations

import csv
import hashlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from affectllm.evaluation.parsing import PANDAS_NA, parse_list_string
from affectllm.utils.fingerprint import sha256_file
from affectllm.utils.paths import cache_dir, shared_dir

WHEEL_FILES = ("format.csv", "synonym.xlsx", "wheel1.xlsx", "wheel2.xlsx", "wheel3.xlsx", "wheel4.xlsx", "wheel5.xlsx")
N_WHEELS = 5
N_SYNONYM_RUNS = 8

# wheel k → level1 → level2 → [level3 words] (insertion order of the sheet)
Wheel = dict[str, dict[str, list[str]]]


class ResourceError(FileNotFoundError):
    """A wheel resource is missing or unreadable; the message names the file and the fix."""


def resolve_wheel_dir(wheel_dir: str | os.PathLike[str] | None = None) -> Path:
    """``wheel_dir``, else ``$AFFECTLLM_WHEEL_DIR``, else ../shared/data/emotion_wheel, else the user cache."""
    candidates: list[Path] = []
    if wheel_dir is not None:
        candidates = [Path(wheel_dir)]
    elif os.environ.get("AFFECTLLM_WHEEL_DIR"):
        candidates = [Path(os.environ["AFFECTLLM_WHEEL_DIR"])]
    else:
        sd = shared_dir()
        if sd is not None:
            candidates.append(sd / "data" / "emotion_wheel")
        candidates.append(cache_dir("emotion_wheel", create=False))
    for c in candidates:
        if all((c / f).is_file() for f in WHEEL_FILES):
            return c.resolve()
    where = ", ".join(str(c) for c in candidates)
    missing = [f for f in WHEEL_FILES if not (candidates[0] / f).is_file()]
    raise ResourceError(
        f"emotion-wheel resources not found (looked in {where}; missing there: {', '.join(missing)}). "
        "Pass --wheel-dir DIR (a folder with format.csv, synonym.xlsx, wheel1..5.xlsx), set AFFECTLLM_WHEEL_DIR, "
        "or run `affectllm eval fetch-resources` once with internet access."
    )


_HASHES: dict[tuple, dict[str, str]] = {}  # (file, size, mtime, inode) of all seven files → their sha256


def resource_hashes(wheel_dir: Path) -> dict[str, str]:
    """sha256 of each resource file, re-hashed only when a file's size, modification time or inode changed."""
    paths = [Path(wheel_dir) / name for name in WHEEL_FILES]
    try:
        key = tuple((str(p), st.st_size, st.st_mtime_ns, st.st_ino) for p in paths for st in [p.stat()])
    except OSError:
        key = None
    if key is not None and key in _HASHES:
        return dict(_HASHES[key])
    out = {name: sha256_file(p) for name, p in zip(WHEEL_FILES, paths)}
    if key is not None:
        if len(_HASHES) > 8:
            _HASHES.clear()
        _HASHES[key] = out
    return dict(out)


def _cell(value: object) -> str | None:
    """An xlsx cell as pandas.read_excel would see it: None for blank or an NA string, else str."""
    if value is None:
        return None
    s = value if isinstance(value, str) else str(value)
    return None if s in PANDAS_NA else s


def _read_xlsx(path: Path) -> tuple[list[str], list[list[str | None]]]:
    """Header and data rows of the first sheet; fully blank rows are skipped (as pandas does)."""
    import openpyxl  # local: ~60 ms to import, only needed when the tables are (re)built

    try:
        wb = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:  # noqa: BLE001 - any openpyxl failure means the same thing to the user
        raise ResourceError(f"{path}: cannot read as xlsx ({e}); re-download it with `affectllm eval fetch-resources`") from e
    try:
        rows = [[_cell(v) for v in row] for row in wb.worksheets[0].iter_rows(values_only=True)]
    finally:
        wb.close()
    if not rows:
        raise ResourceError(f"{path}: empty sheet; re-download it with `affectllm eval fetch-resources`")
    header = [h.strip() if h else "" for h in rows[0]]
    data = [r for r in rows[1:] if any(v is not None for v in r)]
    return header, data


def read_wheel(path: Path) -> Wheel:
    """level1 → level2 → [level3]; blank cells repeat the value above; words lower-cased and stripped."""
    header, rows = _read_xlsx(path)
    try:
        cols = [header.index(c) for c in ("level1", "level2", "level3")]
    except ValueError:
        raise ResourceError(f"{path}: expected columns level1, level2, level3, found {header}") from None
    wheel: Wheel = {}
    current = ["", "", ""]
    for row in rows:
        for i, c in enumerate(cols):
            v = row[c] if c < len(row) else None
            if v is not None:
                current[i] = v
        l1, l2, l3 = (x.lower().strip() for x in current)
        wheel.setdefault(l1, {}).setdefault(l2, []).append(l3)
    return wheel


def read_synonym_map(path: Path, wheel_words: set[str]) -> dict[str, list[str]]:
    """Union over the 8 runs of (wheel word → itself) and (synonym → wheel word); values sorted, unique."""
    header, rows = _read_xlsx(path)
    merged: dict[str, set[str]] = {}
    for run in range(1, N_SYNONYM_RUNS + 1):
        try:
            wi, si = header.index(f"word_run{run}"), header.index(f"synonym_run{run}")
        except ValueError:
            raise ResourceError(f"{path}: missing column word_run{run} or synonym_run{run}") from None
        for line, row in enumerate(rows, start=2):
            word = row[wi] if wi < len(row) else None
            if word is None:
                raise ResourceError(f"{path}: row {line} has an empty word_run{run}; the file is damaged")
            raw = word.strip().lower()
            if raw not in wheel_words:
                raise ResourceError(f"{path}: row {line}: '{raw}' is not a word of wheel1..5.xlsx; mismatched files")
            merged.setdefault(raw, set()).add(raw)
            for syn in parse_list_string(row[si] if si < len(row) else None):
                merged.setdefault(syn.strip().lower(), set()).add(raw)
    return {k: sorted(v) for k, v in merged.items()}


def read_format_map(path: Path) -> dict[str, list[str]]:
    """Surface form → canonical names (and each canonical name → itself); values sorted, unique."""
    out: dict[str, set[str]] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader, [])
        try:
            ni, fi = header.index("name"), header.index("format")
        except ValueError:
            raise ResourceError(f"{path}: expected columns name, format, found {header}") from None
        for line, row in enumerate(reader, start=2):
            if len(row) != len(header):
                raise ResourceError(f"{path}:{line}: {len(row)} fields, expected {len(header)}; the file is damaged")
            raw = "" if row[ni] in PANDAS_NA else row[ni]
            for form in parse_list_string(row[fi]):
                out.setdefault(form, set()).add(raw)
            out.setdefault(raw, set()).add(raw)
    return {k: sorted(v) for k, v in out.items()}


@dataclass
class WheelResources:
    """Everything the OV-MER metrics need from the resource folder, read once."""

    wheel_dir: Path
    hashes: dict[str, str]
    format_map: dict[str, list[str]]
    synonym_map: dict[str, list[str]]
    wheels: list[Wheel] = field(default_factory=list)  # index 0 = wheel1

    @property
    def fingerprint(self) -> str:
        return fingerprint_of(self.hashes)


def fingerprint_of(hashes: dict[str, str]) -> str:
    """One sha256 over the seven resource files' sha256 (identifies a resource version)."""
    return hashlib.sha256("".join(hashes[f] for f in WHEEL_FILES).encode()).hexdigest()


def read_resources(wheel_dir: Path, hashes: dict[str, str] | None = None) -> WheelResources:
    wheels = [read_wheel(wheel_dir / f"wheel{k}.xlsx") for k in range(1, N_WHEELS + 1)]
    words = {w for wh in wheels for l1, sub in wh.items() for w in [l1, *sub, *(x for v in sub.values() for x in v)]}
    return WheelResources(
        wheel_dir=wheel_dir,
        hashes=hashes or resource_hashes(wheel_dir),
        format_map=read_format_map(wheel_dir / "format.csv"),
        synonym_map=read_synonym_map(wheel_dir / "synonym.xlsx", words),
        wheels=wheels,
    )
