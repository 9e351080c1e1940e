"""Tower features for a training batch: cached entries are reused, fresh media go through the frozen towers once.

``batch_tower_outputs`` runs ``model.encode_media`` on the batch's freshly decoded items only, splits the
result per item (trailing padding trimmed), writes each row's entry to the feature cache, and assembles the
``tower_outputs`` dict the model's ``forward`` accepts in place of raw media: per modality, one padded
``TowerOutput [N, L, D]`` whose rows follow the placeholder order of the batch (row by row, item by item).
"""

from __future__ import annotations

import torch

from affectllm.model.configuration_affectllm import MODALITIES
from affectllm.model.towers.base import TowerOutput
from affectllm.training.data import TrainBatch
from affectllm.training.feature_cache import CacheEntry, FeatureCache, ItemFeatures
from affectllm.training.sharding import unsharded

VISION_INPUTS = ("pixel_values", "pixel_mask", "video_timestamps")
AUDIO_INPUTS = ("input_values", "input_values_mask")


def _trim(out: TowerOutput, j: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Row ``j`` of a padded TowerOutput without its trailing padding: ([L, D], [L], [L])."""
    mask = out.mask[j]
    real = torch.nonzero(mask).flatten()
    n = int(real[-1]) + 1 if real.numel() else 0
    return out.features[j, :n].detach(), mask[:n].detach(), out.times[j, :n].detach()


@torch.no_grad()
def encode_fresh(model, batch: TrainBatch, device: torch.device) -> list[list[ItemFeatures] | None]:
    """Per row: its items' features (cached ones as loaded, fresh ones encoded now)."""
    per_row: list[list[ItemFeatures] | None] = []
    for rm in batch.rows:
        if rm.cached is not None:
            per_row.append(rm.cached)
        else:
            per_row.append([ItemFeatures(it.kind, it.vision is not None, it.audio is not None) for it in rm.items])
    if not batch.fresh_vision and not batch.fresh_audio:
        return per_row
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point() and not p.requires_grad),
                 torch.float32)
    inputs = {k: v.to(device) for k, v in batch.media_inputs.items()}
    if "pixel_values" in inputs:
        inputs["pixel_values"] = inputs["pixel_values"].to(dtype)
    towers = [t for m in MODALITIES if (t := getattr(model, f"{m}_tower", None)) is not None]
    with unsharded(model, towers):  # FSDP2: the towers run outside the model's forward, so on whole weights
        outs = model.encode_media(**inputs)
    for m, out in outs.items():
        owners = batch.fresh_vision if m == "vision" else batch.fresh_audio
        for j, (r, i) in enumerate(owners):
            per_row[r][i].outputs[m] = _trim(out, j)
    return per_row


def store(cache: FeatureCache | None, batch: TrainBatch, per_row: list[list[ItemFeatures]]) -> None:
    """Write the entries of freshly encoded rows to the cache."""
    if cache is None:
        return
    for rm, feats in zip(batch.rows, per_row):
        if rm.cached is None and rm.key is not None:
            cache.put(rm.key, CacheEntry(feats, rm.cues))


def assemble(batch: TrainBatch, per_row: list[list[ItemFeatures]], device: torch.device,
             dtype: torch.dtype | None = None) -> dict[str, TowerOutput]:
    """Per modality, the items' features in placeholder order, right-padded into one TowerOutput."""
    seqs: dict[str, list[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]] = {}
    for rm, feats in zip(batch.rows, per_row):
        for i in rm.order:
            for m, triple in feats[i].outputs.items():
                seqs.setdefault(m, []).append(triple)
    out: dict[str, TowerOutput] = {}
    for m, items in seqs.items():
        n = max(1, max(f.shape[0] for f, _, _ in items))
        d = items[0][0].shape[-1]
        fdtype = dtype or items[0][0].dtype
        feats = torch.zeros(len(items), n, d, dtype=fdtype, device=device)
        mask = torch.zeros(len(items), n, dtype=torch.bool, device=device)
        times = torch.zeros(len(items), n, device=device)
        for k, (f, mk, t) in enumerate(items):
            feats[k, : f.shape[0]] = f.to(device, fdtype)
            mask[k, : f.shape[0]] = mk.to(device)
            times[k, : f.shape[0]] = t.to(device, torch.float32)
        out[m] = TowerOutput(feats, mask, times)  # [N, L, D], [N, L], [N, L]
    return out


def batch_tower_outputs(model, batch: TrainBatch, cache: FeatureCache | None, device: torch.device,
                        dtype: torch.dtype | None = None) -> dict[str, TowerOutput]:
    """Cached + freshly encoded features for ``batch`` (fresh entries are written to ``cache``)."""
    per_row = encode_fresh(model, batch, device)
    store(cache, batch, per_row)
    return assemble(batch, per_row, device, dtype)
