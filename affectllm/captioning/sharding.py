"""Splitting one caption job over several processes: ``--num-shards K --shard-index I`` or ``accelerate launch``.

An input belongs to shard ``sha256(id) mod K``: deterministic, independent of the order the inputs were listed
in and of inputs added later, so K processes started with the same arguments cover every input exactly once.
Under ``accelerate launch`` (or ``torchrun``) the shard is the process: K = ``WORLD_SIZE``, I = ``RANK``, and
each process uses its own GPU (``cuda:LOCAL_RANK``) when there is one.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Shard:
    index: int
    count: int
    local_rank: int | None = None  # set under a distributed launcher

    @property
    def active(self) -> bool:
        return self.count > 1


def shard_of(item_id: str, num_shards: int) -> int:
    """The shard an id belongs to (stable across runs, machines and Python versions)."""
    return int(hashlib.sha256(item_id.encode("utf-8")).hexdigest()[:16], 16) % num_shards


def select_shard(items: Sequence[T], shard: Shard, key: str = "id") -> list[T]:
    """The items of ``shard`` (all of them when there is a single shard), order kept."""
    if shard.count <= 1:
        return list(items)
    return [x for x in items if shard_of(str(getattr(x, key)), shard.count) == shard.index]


def resolve_shard(num_shards: int | None, shard_index: int | None) -> Shard:
    """The shard of this process from the options, else from a distributed launcher's environment."""
    if num_shards is not None or shard_index is not None:
        k = 1 if num_shards is None else int(num_shards)
        i = 0 if shard_index is None else int(shard_index)
        if k < 1:
            raise ValueError(f"--num-shards must be at least 1, got {k}")
        if not 0 <= i < k:
            raise ValueError(f"--shard-index must be in 0..{k - 1} for --num-shards {k}, got {i}")
        return Shard(i, k)
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    if world > 1:  # accelerate launch / torchrun: one shard per process
        return Shard(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))
    return Shard(0, 1)


def shard_device(shard: Shard) -> str:
    """The device for this process: its own GPU under a launcher, else ``auto``."""
    if shard.local_rank is not None:
        import torch

        if torch.cuda.is_available():
            return f"cuda:{shard.local_rank % torch.cuda.device_count()}"
    return "auto"


def shard_path(out: str | os.PathLike[str] | None, shard: Shard) -> str | None:
    """``captions.jsonl`` -> ``captions.shard-00001-of-00004.jsonl`` so shards never write one file."""
    if out is None or not shard.active or str(out) == "-":
        return None if out is None else str(out)
    p = Path(out)
    return str(p.with_name(f"{p.stem}.shard-{shard.index:05d}-of-{shard.count:05d}{p.suffix}"))
