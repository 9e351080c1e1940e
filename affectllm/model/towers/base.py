"""The tower interface shared by the vision, audio and Whisper encoders."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import torch
from torch import nn


@dataclass
class TowerOutput:
    """Features of a batch of media items, padded to the longest item."""

    features: torch.Tensor  # [B, L, D]
    mask: torch.Tensor  # [B, L] bool, True = real token
    times: torch.Tensor  # [B, L] float seconds from the start of the item

    def to(self, device: torch.device | str, dtype: torch.dtype | None = None) -> TowerOutput:
        return TowerOutput(self.features.to(device=device, dtype=dtype or self.features.dtype),
                           self.mask.to(device), self.times.to(device))

    def __getitem__(self, idx) -> TowerOutput:
        return TowerOutput(self.features[idx], self.mask[idx], self.times[idx])


class FrozenTower(nn.Module):
    """Base class: frozen, eval-mode encoder with an ``output_dim`` and a stable ``fingerprint``."""

    output_dim: int
    source_loaded: bool = False  # True when weights came from a named source (id, registry name, path)

    def freeze(self) -> None:
        self.eval()
        self.requires_grad_(False)

    def train(self, mode: bool = True) -> FrozenTower:  # frozen towers never leave eval mode
        return super().train(False)

    def fingerprint_payload(self) -> dict:
        raise NotImplementedError

    @property
    def fingerprint(self) -> str:
        """Identifies the encoder and its preprocessing: part of every feature-cache key."""
        payload = json.dumps(self.fingerprint_payload(), sort_keys=True, default=str)
        if not self.source_loaded:  # random weights: the weights themselves identify the tower
            h = hashlib.sha256()
            for name, t in sorted(self.state_dict().items()):
                h.update(name.encode())
                h.update(t.detach().float().cpu().numpy().tobytes()[:4096])
            payload += h.hexdigest()
        return hashlib.sha256(payload.encode()).hexdigest()[:16]

    @property
    def device(self) -> torch.device:
        p = next(self.parameters(), None)
        return p.device if p is not None else torch.device("cpu")

    @property
    def dtype(self) -> torch.dtype:
        p = next((p for p in self.parameters() if p.is_floating_point()), None)
        return p.dtype if p is not None else torch.float32


def pool_time(x: torch.Tensor, mask: torch.Tensor, times: torch.Tensor, stride: int):
    """Average-pool features over time by ``stride`` (mask-aware). x [B, L, D] -> [B, ceil(L/s), D]."""
    if stride <= 1:
        return x, mask, times
    b, length, d = x.shape
    pad = (-length) % stride
    if pad:
        x = torch.nn.functional.pad(x, (0, 0, 0, pad))
        mask = torch.nn.functional.pad(mask, (0, pad), value=False)
        times = torch.nn.functional.pad(times, (0, pad))
    m = mask.view(b, -1, stride).to(x.dtype)  # [B, L', s]
    cnt = m.sum(-1).clamp(min=1)
    x = (x.view(b, -1, stride, d) * m.unsqueeze(-1)).sum(2) / cnt.unsqueeze(-1)
    times = (times.view(b, -1, stride) * m).sum(-1) / cnt
    return x, mask.view(b, -1, stride).any(-1), times


def pad_sequences(seqs: list[torch.Tensor], times: list[torch.Tensor]) -> TowerOutput:
    """Right-pad a list of [L_i, D] features (and [L_i] times) into a TowerOutput."""
    n = max(1, max(s.shape[0] for s in seqs))
    d = seqs[0].shape[-1]
    feats = seqs[0].new_zeros(len(seqs), n, d)
    mask = torch.zeros(len(seqs), n, dtype=torch.bool, device=seqs[0].device)
    tt = torch.zeros(len(seqs), n, device=seqs[0].device)
    for i, (s, t) in enumerate(zip(seqs, times)):
        feats[i, : s.shape[0]] = s
        mask[i, : s.shape[0]] = True
        tt[i, : s.shape[0]] = t
    return TowerOutput(feats, mask, tt)


def average_layers(out, spec) -> torch.Tensor:
    """Mean of the ``spec.layers`` hidden states of an encoder output -> [B, L, D].

    ``spec.last_layer="last_hidden_state"`` makes layer -1 the encoder output: transformers 5 returns a
    stable-layer-norm model's ``hidden_states[-1]`` before the encoder's final layer norm, 4.x returned it after
    (equal to ``last_hidden_state``), and checkpoints trained under 4.x expect that."""
    hs = list(out.hidden_states)
    if spec.last_layer == "last_hidden_state":
        hs[-1] = out.last_hidden_state
    layers = spec.layers if spec.layers is not None else [len(hs) - 1]
    return torch.stack([hs[i] for i in layers]).mean(0)  # [B, L, D]
