"""Precompute the feature cache for an instruction file (``affectllm features extract``).

Runs each row's media through decoding (and the cue experts when the recipe uses cues) and the frozen towers
once, writing one cache entry per media bundle; rows already cached are verified (corrupt or stale entries
are recomputed). Training with the same recipe then starts with a warm cache.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from affectllm.training.config import TrainConfig


@torch.no_grad()
def extract_features(cfg: TrainConfig, data: str | Path, batch_size: int | None = None,
                     echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Fill the cache for every valid row of ``data``; returns counts (rows, hits, written, invalid, skipped)."""
    from affectllm.engine import experts_for
    from affectllm.loading import resolve_device
    from affectllm.training.build import build_model
    from affectllm.training.data import Collator, load_split
    from affectllm.training.feature_cache import CacheStats, open_cache
    from affectllm.training.features import encode_fresh, store
    from affectllm.utils.paths import cache_dir

    t0 = time.time()
    device = resolve_device("auto")
    rows, report = load_split(Path(data), cfg.data.tasks, cfg.data.limit, cfg.data.check_media)
    model, processor = build_model(cfg, device)
    model.to(device).eval()
    use_cues = {"auto": bool(model.config.use_cues), "on": True, "off": False}[cfg.data.cues]
    experts = experts_for(model) if use_cues else None
    cue_desc = {"whisper": experts.whisper_name, "faces": experts.faces} if experts is not None else None
    root = Path(cfg.cache.dir) if cfg.cache.dir else cache_dir("features")
    cache = open_cache(model, processor, root, cue_desc)
    collator = Collator(processor, cache, experts, alignment=cfg.stage == "alignment",
                        max_length=cfg.data.max_length)
    bs = batch_size or cfg.train.batch_size
    totals, skipped = CacheStats(), []
    for start in range(0, len(rows), bs):
        batch = collator([rows[i] for i in range(start, min(len(rows), start + bs))])
        totals.add(batch.cache)
        skipped.extend(batch.skipped)
        if len(batch):
            store(cache, batch, encode_fresh(model, batch, device))
    result = {"rows": len(rows), "skipped_at_load": report.invalid_rows, "skipped": len(skipped),
              "hits": totals.hits, "written": cache.stats.writes, "invalid": totals.invalid,
              "cache_dir": str(root), "wall_s": round(time.time() - t0, 2)}
    echo(f"{data}: {result['rows']} rows, {result['hits']} already cached, {result['written']} entries written, "
         f"{result['invalid']} invalid entries recomputed, {result['skipped'] + result['skipped_at_load']} rows "
         f"skipped; cache {root} ({result['wall_s']} s)")
    for rid, reason in skipped[:20]:
        echo(f"  skipped {rid}: {reason}")
    return result
