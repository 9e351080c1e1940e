"""Fast label normalisation: resource tables loaded once per process, labels turned into per-metric bit masks.

A sample's normalised label set under one metric is an int whose set bits index that metric's vocabulary, so
|G ∩ P| is ``(g & p).bit_count()``. Each distinct raw label is looked up once per process (memoised), which is
what makes scoring many prediction files against one ground truth cheap.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterable
from functools import reduce
from operator import or_

from affectllm.evaluation.resources import (
    WheelResources,
    fingerprint_of,
    read_resources,
    resolve_wheel_dir,
    resource_hashes,
)
from affectllm.evaluation.tables import (
    METRICS,
    TABLES_VERSION,
    NormTables,
    build_tables,
    load_cached_tables,
    save_cached_tables,
)
from affectllm.utils.paths import cache_dir

Masks = tuple[int, ...]  # one bit mask per metric, METRICS order
_ZERO: Masks = (0,) * len(METRICS)

_LOCK = threading.Lock()
_TABLES: dict[str, NormTables] = {}  # resource fingerprint → tables
_RESOURCES: dict[str, WheelResources] = {}
LOAD_STATS: dict[str, float | str] = {}  # how the last tables were obtained (for the benchmark / results.json)


def get_resources(wheel_dir: str | os.PathLike[str] | None = None) -> WheelResources:
    """The parsed resource files (only needed by callers that want the raw maps, e.g. the lexicon judge)."""
    d = resolve_wheel_dir(wheel_dir)
    hashes = resource_hashes(d)
    fp = fingerprint_of(hashes)
    with _LOCK:
        if fp not in _RESOURCES:
            _RESOURCES[fp] = read_resources(d, hashes)
        return _RESOURCES[fp]


def get_tables(wheel_dir: str | os.PathLike[str] | None = None, use_disk_cache: bool = True) -> NormTables:
    """Normalisation tables for a resource folder: in-process cache, then disk cache, then built from the files."""
    t0 = time.perf_counter()
    d = resolve_wheel_dir(wheel_dir)
    hashes = resource_hashes(d)
    fp = fingerprint_of(hashes)
    with _LOCK:
        if fp in _TABLES:
            LOAD_STATS.update(source="memory", seconds=time.perf_counter() - t0)
            return _TABLES[fp]
        path = cache_dir("eval", create=False) / "tables" / f"{fp[:32]}-v{TABLES_VERSION}.json"
        tables = load_cached_tables(path, fp) if use_disk_cache else None
        source = "disk cache"
        if tables is None:
            res = _RESOURCES.get(fp) or read_resources(d, hashes)
            _RESOURCES[fp] = res
            tables = build_tables(res)
            source = "resource files"
            if use_disk_cache:
                save_cached_tables(path, tables)
        _TABLES[fp] = tables
        LOAD_STATS.update(source=source, seconds=time.perf_counter() - t0)
        return tables


def clear_caches() -> None:
    """Forget in-process tables and normalisers (tests use this to time a cold load)."""
    with _LOCK:
        _TABLES.clear()
        _RESOURCES.clear()
        _NORMALISERS.clear()


_NORMALISERS: dict[tuple[str, bool], Normaliser] = {}


def get_normaliser(tables: NormTables, strict: bool = False) -> Normaliser:
    """One Normaliser per (resource version, rules) per process, so its label memo survives between files."""
    key = (tables.fingerprint, strict)
    with _LOCK:
        n = _NORMALISERS.get(key)
        if n is None or n.tables is not tables:
            n = _NORMALISERS[key] = Normaliser(tables, strict=strict)
        return n


class Normaliser:
    """Turns raw label lists into per-metric masks / sets under the official or the strict rules."""

    def __init__(self, tables: NormTables, strict: bool = False) -> None:
        self.tables = tables
        self.strict = strict
        self.metrics = METRICS
        self._vocab: list[dict[str, int]] = [{} for _ in METRICS]  # per metric: word → bit index
        self._words: list[list[str]] = [[] for _ in METRICS]  # per metric: bit index → word
        self._cache: dict[str, Masks] = {}  # label → masks
        self._set_cache: dict[tuple[str, ...], Masks] = {}  # label tuple → union masks
        self._words_cache: dict[tuple[int, int], list[str]] = {}  # (metric, mask) → sorted words
        self._ids: dict[str, tuple[int, ...]] = {}  # label → word id per metric
        self._lock = threading.Lock()

    def label_masks(self, label: str) -> Masks:
        """Masks of one lower-cased, stripped label (zero where the metric drops it)."""
        m = self._cache.get(label)
        if m is None:
            with self._lock:  # bit numbering must not race when threads share a normaliser
                return self._new_label(label)
        return m

    def _new_label(self, label: str) -> Masks:
        m = self._cache.get(label)
        if m is None:
            row = self.tables.lookup(label, self.strict)
            out = []
            for i, word in enumerate(row):
                if not word:
                    out.append(0)
                    continue
                bit = self._vocab[i].get(word)
                if bit is None:
                    bit = self._vocab[i][word] = len(self._words[i])
                    self._words[i].append(word)
                out.append(1 << bit)
            m = self._cache[label] = tuple(out)
        return m

    def label_ids(self, label: str) -> tuple[int, ...]:
        """Word id of one label under each metric (the bit index of its mask; -1 where the metric drops it)."""
        ids = self._ids.get(label)
        if ids is None:
            ids = self._ids[label] = tuple(m.bit_length() - 1 for m in self.label_masks(label))
        return ids

    def masks(self, labels: Iterable[str]) -> Masks:
        """Union of the label masks: the normalised label set of one sample under each metric."""
        key = labels if isinstance(labels, tuple) else tuple(labels)
        m = self._set_cache.get(key)
        if m is None:
            rows = [self.label_masks(lab) for lab in key]
            m = rows[0] if len(rows) == 1 else tuple(reduce(or_, col) for col in zip(*rows, strict=True)) if rows \
                else _ZERO
            if len(self._set_cache) > 500_000:  # bounded: a long-lived process scoring many files
                self._set_cache.clear()
            self._set_cache[key] = m
        return m

    def words(self, metric_index: int, mask: int) -> list[str]:
        """The normalised labels a mask stands for (sorted), for samples.jsonl."""
        key = (metric_index, mask)
        out = self._words_cache.get(key)
        if out is None:
            words = self._words[metric_index]
            out = self._words_cache[key] = sorted(words[i] for i in range(mask.bit_length()) if mask >> i & 1)
            if len(self._words_cache) > 200_000:
                self._words_cache.clear()
        return list(out)

    def normalise(self, label: str) -> dict[str, str]:
        """One label under every metric ('' = dropped); handy for inspection and tests."""
        return dict(zip(METRICS, self.tables.lookup(label.lower().strip(), self.strict), strict=True))
