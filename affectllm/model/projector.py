"""The projector: tower features -> a fixed number of LLM-sized tokens per media item and modality.

Every modality's features are first normalised and mapped to the projector width, and get a sinusoidal
*time* embedding (seconds from the start of the clip, so frames and audio frames from the same moment share
it) plus a learned *modality* embedding. Then one of:

- ``qformer``: learnable queries per modality cross-attend to those features through transformers' BLIP-2
  Q-Former (``Blip2QFormerModel``, shared across modalities) -> ``num_queries[m]`` tokens;
- ``attention_pool``: one learned query, one attention layer -> 1 token per modality (as AffectGPT);
- ``mlp``: mask-aware average pooling into ``num_queries[m]`` time slots, then a two-layer MLP (LLaVA style).

A missing modality simply is not called: it contributes no tokens.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from affectllm.model.towers.base import TowerOutput


def sinusoidal_embedding(positions: torch.Tensor, dim: int) -> torch.Tensor:
    """positions [..., L] (float) -> [..., L, dim] fixed sin/cos embedding (transformer style)."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=positions.device, dtype=torch.float32) / half)
    angles = positions.float().unsqueeze(-1) * freqs  # [..., L, half]
    emb = torch.cat([angles.sin(), angles.cos()], dim=-1)
    if dim % 2:
        emb = torch.nn.functional.pad(emb, (0, 1))
    return emb


class ModalityInput(nn.Module):
    """LayerNorm + Linear from a tower's width to the projector width, plus time and modality embeddings."""

    def __init__(self, in_dim: int, hidden: int, modality_index: int, time_scale: float) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(in_dim)
        self.proj = nn.Linear(in_dim, hidden)
        self.modality_index = modality_index
        self.time_scale = time_scale

    def forward(self, out: TowerOutput, modality_embed: nn.Embedding) -> torch.Tensor:
        x = self.proj(self.norm(out.features.to(self.proj.weight.dtype)))  # [B, L, H]
        x = x + sinusoidal_embedding(out.times * self.time_scale, x.shape[-1]).to(x.dtype)
        return x + modality_embed.weight[self.modality_index].to(x.dtype)


class AffectProjector(nn.Module):
    """Maps each modality's TowerOutput to ``[B, n_tokens(m), llm_hidden]``."""

    def __init__(self, spec, tower_dims: dict[str, int], llm_hidden: int) -> None:
        super().__init__()
        from affectllm.model.configuration_affectllm import MODALITIES

        self.spec = spec
        self.modalities = [m for m in MODALITIES if m in tower_dims]
        h = spec.hidden_size
        self.modality_embed = nn.Embedding(len(MODALITIES), h)
        self.inputs = nn.ModuleDict({
            m: ModalityInput(tower_dims[m], h, MODALITIES.index(m), spec.time_scale) for m in self.modalities})
        if spec.type == "qformer":
            from transformers import Blip2QFormerConfig, Blip2QFormerModel

            qcfg = Blip2QFormerConfig(
                hidden_size=h, num_hidden_layers=spec.num_layers, num_attention_heads=spec.num_heads,
                intermediate_size=spec.intermediate_size or 4 * h, encoder_hidden_size=h,
                cross_attention_frequency=1, hidden_dropout_prob=spec.dropout,
                attention_probs_dropout_prob=spec.dropout, max_position_embeddings=512,
            )
            self.qformer = Blip2QFormerModel(qcfg)
            self.queries = nn.ParameterDict({
                m: nn.Parameter(torch.randn(spec.num_queries[m], h) * 0.02) for m in self.modalities})
        elif spec.type == "attention_pool":
            self.pool_attn = nn.MultiheadAttention(h, spec.num_heads, dropout=spec.dropout, batch_first=True)
            self.queries = nn.ParameterDict({m: nn.Parameter(torch.randn(1, h) * 0.02) for m in self.modalities})
        elif spec.type == "mlp":
            self.mlp = nn.Sequential(nn.Linear(h, h), nn.GELU())
        else:
            raise ValueError(f"projector type {spec.type!r} unknown; choose qformer, attention_pool or mlp")
        self.out_norm = nn.LayerNorm(h)
        self.out_proj = nn.Linear(h, llm_hidden)

    def num_tokens(self, modality: str) -> int:
        return 1 if self.spec.type == "attention_pool" else int(self.spec.num_queries[modality])

    def project_all(self, outputs: dict[str, TowerOutput]) -> dict[str, torch.Tensor]:
        """{modality: TowerOutput} -> {placeholder group: tokens [B, n, llm_hidden]}."""
        return {m: self(m, out) for m, out in outputs.items()}

    def forward(self, modality: str, out: TowerOutput) -> torch.Tensor:
        """TowerOutput (features [B, L, D]) -> tokens [B, n_tokens, llm_hidden]."""
        x = self.inputs[modality](out, self.modality_embed)  # [B, L, H]
        mask = out.mask.to(x.device)
        b = x.shape[0]
        if self.spec.type == "qformer":
            q = self.queries[modality].unsqueeze(0).expand(b, -1, -1)  # [B, Nq, H]
            q = q + self.modality_embed.weight[self.inputs[modality].modality_index]
            y = self.qformer(query_embeds=q, encoder_hidden_states=x,
                             encoder_attention_mask=mask.long()).last_hidden_state  # [B, Nq, H]
        elif self.spec.type == "attention_pool":
            q = self.queries[modality].unsqueeze(0).expand(b, -1, -1)  # [B, 1, H]
            y, _ = self.pool_attn(q, x, x, key_padding_mask=~mask)  # [B, 1, H]
        else:
            y = self.mlp(masked_time_pool(x, mask, self.num_tokens(modality)))  # [B, Nq, H]
        return self.out_proj(self.out_norm(y))  # [B, n_tokens, llm_hidden]


def build_projector(spec, tower_dims: dict[str, int], llm_hidden: int) -> nn.Module:
    """The projector for ``spec.type``; ``affectgpt`` is the compat type for converted AffectGPT checkpoints."""
    if spec.type == "affectgpt":
        from affectllm.model.projector_affectgpt import AffectGPTProjector

        return AffectGPTProjector(spec, tower_dims, llm_hidden)
    return AffectProjector(spec, tower_dims, llm_hidden)


def masked_time_pool(x: torch.Tensor, mask: torch.Tensor, slots: int) -> torch.Tensor:
    """Average real tokens into ``slots`` equal time bins per item. x [B, L, H], mask [B, L] -> [B, slots, H]."""
    b, length, h = x.shape
    lengths = mask.sum(1).clamp(min=1)  # [B]
    idx = torch.arange(length, device=x.device)[None].expand(b, -1)  # [B, L]
    bins = (idx * slots // lengths[:, None]).clamp(max=slots - 1)  # [B, L]
    weights = torch.nn.functional.one_hot(bins, slots).to(x.dtype) * mask[..., None].to(x.dtype)  # [B, L, S]
    summed = torch.einsum("bls,blh->bsh", weights, x)
    counts = weights.sum(1).clamp(min=1).unsqueeze(-1)  # [B, S, 1]
    return summed / counts
