"""Safe writes into the AffectLLM cache: a lock per artefact, build in a temp folder, publish by rename.

Several processes (parallel CI jobs, a test run beside ``affectllm models prepare``) may try to convert the
same weights at once. Each conversion holds ``<artefact>.lock``, builds into a private temp folder next to the
final one and renames it into place only when complete, so a reader never sees a half-written folder and a
crash leaves nothing behind but the temp folder (which is removed on the way out).
"""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from filelock import FileLock

from affectllm.utils.fingerprint import sha256_file as sha256_file  # the one file hash, re-exported here

LOCK_TIMEOUT_S = 30 * 60  # a Gemma conversion takes ~1-2 min on 2 cores; a stuck lock should still fail


@contextmanager
def artefact_lock(final: Path) -> Iterator[None]:
    """Hold the inter-process lock that guards building ``final`` (a file or folder path)."""
    final.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(str(final.parent / f".{final.name}.lock"), timeout=LOCK_TIMEOUT_S):
        yield


@contextmanager
def atomic_dir(final: Path) -> Iterator[Path]:
    """Yield an empty temp folder beside ``final``; on success it replaces ``final``, on error it is deleted."""
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    tmp.mkdir()
    try:
        yield tmp
        if final.exists():
            old = final.parent / f".{final.name}.old-{uuid.uuid4().hex[:8]}"
            final.rename(old)
            shutil.rmtree(old, ignore_errors=True)
        tmp.rename(final)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def tree_size(path: Path) -> int:
    """Bytes used by a file or by every file under a folder (0 if absent)."""
    if path.is_file():
        return path.stat().st_size
    if not path.is_dir():
        return 0
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def human_size(n: int) -> str:
    """1536 -> '1.5 KiB'."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GiB"
