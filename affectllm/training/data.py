"""Instruction rows -> training batches: loading, a seeded resumable order, and the collator.

The collator turns a list of rows into a ``TrainBatch``: token ids and labels from ``AffectLLMProcessor``
(labels are -100 everywhere except assistant tokens), and for each row either its cached tower features (no
decoding at all) or freshly decoded media plus the tower input tensors for them. A row that cannot be used (a
missing or unreadable media file, a malformed conversation) is reported with its id, skipped and counted; it
never stops the epoch. The order of rows is a permutation seeded by (seed, epoch), so a run resumed at batch k
of epoch e sees exactly the batches an uninterrupted run would.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from affectllm.training.feature_cache import CacheEntry, CacheStats, FeatureCache, ItemFeatures
from affectllm.training.samples import (
    DecodedItems,
    build_messages,
    decode_plain,
    decode_with_cues,
    item_specs,
    stub_item,
)

log = logging.getLogger("affectllm.training.data")


@dataclass
class RowMedia:
    """One usable row of a batch: its decoded (or stub) items in spec order and their cache state."""

    row_id: str
    key: str | None
    items: list  # MediaItem per ItemSpec, spec order
    cached: list[ItemFeatures] | None  # from the cache (then ``items`` are stubs)
    cues: list[str]
    order: list[int]  # indices into ``items`` in the order the processor met them (placeholder order)
    target: str | None = None  # the first answer (prompt_only batches, for generation)


@dataclass
class TrainBatch:
    ids: list[str]
    text: dict[str, torch.Tensor]  # input_ids, attention_mask, labels [B, L]
    rows: list[RowMedia]
    fresh_vision: list[tuple[int, int]] = field(default_factory=list)  # (row, item) of each vision input row
    fresh_audio: list[tuple[int, int]] = field(default_factory=list)
    media_inputs: dict[str, torch.Tensor] = field(default_factory=dict)  # pixel_values..., input_values...
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (row id, reason)
    cache: CacheStats = field(default_factory=CacheStats)

    def __len__(self) -> int:
        return len(self.ids)


def load_split(path: Path, tasks: list[str] | None, limit: int | None, check_media: bool):
    """The valid rows of an instruction file (bad rows are logged by line and id and skipped) + the scan report."""
    from affectllm.instruct import read_dataset
    from affectllm.utils.paths import cache_dir

    ds, report = read_dataset(path, check_media=check_media, cache_dir=cache_dir("datasets"))
    if tasks:
        wanted = set(tasks)
        ds = ds.filter(lambda t: t in wanted, input_columns="task")
        if len(ds) == 0:
            raise ValueError(f"{path}: no rows of task(s) {sorted(wanted)}; set data.tasks to tasks present in "
                             f"the file ({dict(report.tasks)})")
    if limit is not None:
        ds = ds.select(range(min(limit, len(ds))))
    return ds, report


def holdout_split(ds, fraction: float, seed: int):
    """Deterministic train/eval split by a hash of each row id (stable under row reordering and appends)."""
    if fraction <= 0:
        return ds, None

    def is_eval(rid: str) -> bool:
        h = int(hashlib.sha256(f"{seed}:{rid}".encode()).hexdigest()[:8], 16)
        return h / 0xFFFFFFFF < fraction

    flags = [is_eval(r) for r in ds["id"]]
    ev = [i for i, f in enumerate(flags) if f]
    tr = [i for i, f in enumerate(flags) if not f]
    if not ev or not tr:
        return ds, None
    return ds.select(tr), ds.select(ev)


def epoch_order(n: int, seed: int, epoch: int) -> list[int]:
    """The row order of ``epoch``: a permutation seeded by (seed, epoch), independent of anything else."""
    g = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))
    return torch.randperm(n, generator=g).tolist()


class Collator:
    """rows -> TrainBatch (see module docstring). Picklable, so DataLoader workers can run it."""

    def __init__(self, processor, cache: FeatureCache | None, experts=None, alignment: bool = False,
                 max_length: int | None = None, prompt_only: bool = False) -> None:
        self.processor = processor
        self.cache = cache
        self.experts = experts  # perception Experts when cue lines go into prompts, else None
        self.alignment = alignment
        self.max_length = max_length
        self.prompt_only = prompt_only  # generation: the conversation up to its first answer, left-padded

    def _row(self, row: dict[str, Any]) -> tuple[RowMedia, Any]:
        specs = item_specs(row)
        key = self.cache.key(specs) if self.cache is not None else None
        entry: CacheEntry | None = self.cache.get(key) if key is not None else None
        if entry is not None and len(entry.items) == len(specs):
            decoded = DecodedItems([stub_item(it.kind, it.has_vision, it.has_audio) for it in entry.items], entry.cues)
        else:
            entry = None
            if self.experts is not None:
                decoded = decode_with_cues(specs, self.processor, self.experts)
            else:
                decoded = DecodedItems([decode_plain(s, self.processor) for s in specs])
        messages = build_messages(row, specs, decoded, alignment=self.alignment or self.prompt_only)
        target = None
        if self.prompt_only:
            target = messages[-1]["content"]
            messages = messages[:-1]
        rendered = self.processor.render(messages, add_generation_prompt=self.prompt_only)
        order = [next(i for i, it in enumerate(decoded.items) if it is m) for m in rendered.media]
        rm = RowMedia(str(row["id"]), key, decoded.items, entry.items if entry else None, decoded.cues, order,
                      target)
        return rm, rendered

    def __call__(self, rows: list[dict[str, Any]]) -> TrainBatch:
        from affectllm.model.media_inputs import prepare_audio_batch, prepare_vision_batch

        saved = None
        if self.cache is not None:  # count this batch's reads apart (workers hold their own cache copy)
            saved, self.cache.stats = self.cache.stats, CacheStats()
        kept: list[RowMedia] = []
        rendered_all = []
        skipped: list[tuple[str, str]] = []
        for row in rows:
            rid = str(row.get("id", "<no id>"))
            try:
                rm, rendered = self._row(row)
            except Exception as e:  # noqa: BLE001 - one bad row must never stop the epoch
                reason = f"{type(e).__name__}: {e}"
                log.warning("skipping row %s: %s", rid, reason)
                skipped.append((rid, reason))
                continue
            kept.append(rm)
            rendered_all.append(rendered)
        stats = CacheStats()
        if self.cache is not None:
            stats, self.cache.stats = self.cache.stats, saved
        if not kept:
            return TrainBatch([], {}, [], skipped=skipped, cache=stats)
        fresh_v, fresh_a, v_items, a_items = [], [], [], []
        for r, (rm, rendered) in enumerate(zip(kept, rendered_all)):
            if rm.cached is None:
                for i, it in enumerate(rm.items):
                    if it.vision is not None:
                        fresh_v.append((r, i))
                        v_items.append(it)
                    if it.audio is not None:
                        fresh_a.append((r, i))
                        a_items.append(it)
            # token expansion only needs each item's shape: stubs keep the processor from preprocessing twice
            rendered.media = [stub_item(m.kind, m.vision is not None, m.audio is not None) for m in rendered.media]
        enc = self.processor.encode(rendered_all, train=not self.prompt_only, max_length=self.max_length)
        text = {k: enc[k] for k in ("input_ids", "attention_mask", "labels") if k in enc}
        media: dict[str, torch.Tensor] = {}
        proc = self.processor
        if v_items and proc.vision is not None and "vision" in proc.num_tokens:
            media.update(prepare_vision_batch(v_items, proc.vision))
        else:
            fresh_v = []
        if a_items and ("audio" in proc.num_tokens or "whisper" in proc.num_tokens):
            media.update(prepare_audio_batch(a_items, int(proc.max_audio_seconds * proc.sample_rate)))
        else:
            fresh_a = []
        return TrainBatch([rm.row_id for rm in kept], text, kept, fresh_v, fresh_a, media, skipped, stats)


class EpochBatches(torch.utils.data.Dataset):
    """Batches ``start..`` of one epoch (global batch index b holds rows order[b*B:(b+1)*B]); item = TrainBatch.

    With several processes, process ``rank`` takes global batches ``rank, rank + world, ...``.
    """

    def __init__(self, rows, order: list[int], batch_size: int, collator: Collator, start: int = 0,
                 rank: int = 0, world: int = 1) -> None:
        self.rows, self.order, self.bs, self.collator = rows, order, batch_size, collator
        # drop the last partial batch (every step has the same size) and keep a multiple of the process count
        n_batches = len(order) // batch_size // world * world
        self.batches = list(range(start, n_batches))[rank::world] if world > 1 else list(range(start, n_batches))

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, i: int) -> TrainBatch:
        b = self.batches[i]
        idx = self.order[b * self.bs:(b + 1) * self.bs]
        return self.collator([self.rows[j] for j in idx])


def batches_per_epoch(n_rows: int, batch_size: int, world: int = 1) -> int:
    return n_rows // batch_size // world * world


def make_loader(dataset: EpochBatches, num_workers: int):
    """A DataLoader over pre-collated batches (batch_size=None): workers decode media in parallel, in order."""
    return torch.utils.data.DataLoader(dataset, batch_size=None, shuffle=False, num_workers=num_workers,
                                       collate_fn=_identity, persistent_workers=False)


def _identity(batch: TrainBatch) -> TrainBatch:
    return batch
