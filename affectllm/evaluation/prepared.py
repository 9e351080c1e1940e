"""What depends only on the ground truth, computed once per (resource version, ground-truth labels) and reused by
every prediction file scored against it: the parsed file, the cleaned label lists, their official and strict
masks and their vectorised sets (``GTColumns``); the chance floor is memoised in chance.py. Scoring one more file
then costs only its own reading, parsing, label lookups and the array arithmetic.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from affectllm.evaluation.io import SampleFile, load_samples
from affectllm.evaluation.normalise import Masks, Normaliser
from affectllm.evaluation.ovmer import GTColumns
from affectllm.evaluation.parsing import parse_clean

_MAX = 16  # ground truths kept per process (a few KB each)
_CACHE: OrderedDict[tuple, PreparedGT] = OrderedDict()
_FILES: OrderedDict[tuple, SampleFile] = OrderedDict()
_LOCK = threading.Lock()


def load_gt(source: Any, columns: dict[str, str | None]) -> SampleFile:
    """``load_samples(source, **columns)``, kept per process for a ground-truth file that has not changed (same
    path, size, modification time and inode): scoring many prediction files reads the ground truth once."""
    if not isinstance(source, (str, os.PathLike)):
        return load_samples(source, **columns)
    p = Path(source)
    try:
        st = p.stat()
    except OSError:
        return load_samples(source, **columns)  # says which file is missing
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns, st.st_ino, tuple(sorted(columns.items())))
    with _LOCK:
        hit = _FILES.get(key)
    if hit is not None:
        return hit
    f = load_samples(source, **columns)
    with _LOCK:
        _FILES[key] = f
        while len(_FILES) > _MAX:
            _FILES.popitem(last=False)
    return f


@dataclass(frozen=True)
class PreparedGT:
    labels: list[list[str]]  # cleaned labels per sample, ids order
    official: list[Masks]
    strict: list[Masks]
    official_cols: GTColumns
    strict_cols: GTColumns


def prepared_gt(raw_labels: Sequence[Any], official: Normaliser, strict: Normaliser) -> PreparedGT:
    """``raw_labels``: each sample's ground-truth labels as read (list-string or list), in ids order. The key is the
    labels themselves plus the normalisers' identity (their masks' bit numbering), so it can never go stale."""
    key = (id(official), id(strict), official.tables.fingerprint,
           tuple(r if isinstance(r, str) or r is None else tuple(map(str, r)) for r in raw_labels))
    with _LOCK:
        hit = _CACHE.get(key)
        if hit is not None:
            _CACHE.move_to_end(key)
            return hit
    labels = [parse_clean(r) for r in raw_labels]
    off = [official.masks(x) for x in labels]
    st = [strict.masks(x) for x in labels]
    prep = PreparedGT(labels, off, st, GTColumns(off), GTColumns(st))
    with _LOCK:
        _CACHE[key] = prep
        while len(_CACHE) > _MAX:
            _CACHE.popitem(last=False)
    return prep
