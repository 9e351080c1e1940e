"""AffectGPT's projector (ICML 2025 release, ouyangjutian/AffectGPT @ d961cab0), as an AffectLLM projector type.

Re-implemented from the published architecture description (not copied): per modality a *raw* linear score
pooling (no softmax) to one vector, a linear map to the LLM width, plus one pre-fusion ("multi") token built
from the time-averaged vision and audio features. Submodule names equal the checkpoint's key names, so the
converter maps ``<name>.weight`` to ``multi_modal_projector.<name>.weight`` one to one.

Shapes (Dv: vision feature width, Da: audio width, M = max(Dv, Da), D: LLM width):
- vision  x [B, T, Dv] -> s = video_attention_mlp(x) [B, T, 1] -> x^T s [B, Dv] -> affectgpt_proj -> [B, 1, D]
- audio   x [B, C, Da] -> s = audio_attention_mlp(x) [B, C, 1] -> x^T s [B, Da] -> audio_llama_proj -> [B, 1, D]
- multi   v = multi_video_embs(mean_t x_v) [B, M], a = multi_audio_embs(mean_t x_a) [B, M]
          w = fc_att(attention_mlp([v; a])) [B, 2] -> w0 v + w1 a [B, M] -> multi_llama_proj -> [B, 1, D]
"""

from __future__ import annotations

import torch
from torch import nn

from affectllm.model.towers.base import TowerOutput

MULTI = "multi"  # the pseudo-modality of the pre-fusion token (its own placeholder in the prompt)


class AffectGPTProjector(nn.Module):
    """Projector type ``affectgpt``: one token per modality plus one ``multi`` token (vision + audio)."""

    def __init__(self, spec, tower_dims: dict[str, int], llm_hidden: int) -> None:
        super().__init__()
        if "vision" not in tower_dims or "audio" not in tower_dims:
            raise ValueError("projector type 'affectgpt' needs a vision and an audio tower "
                             f"(configured: {sorted(tower_dims)})")
        self.spec = spec
        self.modalities = ["vision", "audio"]
        dv, da = tower_dims["vision"], tower_dims["audio"]
        m = max(dv, da)
        # vision ("video_fusion_type: attention"); image_llama_proj is their still-image path, kept for fidelity
        self.video_attention_mlp = nn.Linear(dv, 1)
        self.affectgpt_proj = nn.Linear(dv, llm_hidden)
        self.image_llama_proj = nn.Linear(dv, llm_hidden)
        # audio ("audio_fusion_type: attention")
        self.audio_attention_mlp = nn.Linear(da, 1)
        self.audio_llama_proj = nn.Linear(da, llm_hidden)
        # pre-fusion ("multi_fusion_type: attention")
        self.multi_video_embs = nn.Linear(dv, m)
        self.multi_audio_embs = nn.Linear(da, m)
        self.attention_mlp = nn.Linear(2 * m, m)
        self.fc_att = nn.Linear(m, 2)
        self.multi_llama_proj = nn.Linear(m, llm_hidden)

    def num_tokens(self, modality: str) -> int:
        return 1

    @staticmethod
    def _masked(out: TowerOutput, dtype: torch.dtype) -> tuple[torch.Tensor, torch.Tensor]:
        x = out.features.to(dtype)  # [B, L, D]
        return x, out.mask.to(x.device).unsqueeze(-1).to(dtype)  # [B, L, D], [B, L, 1]

    def _score_pool(self, out: TowerOutput, score: nn.Linear, proj: nn.Linear) -> torch.Tensor:
        x, m = self._masked(out, proj.weight.dtype)
        s = score(x) * m  # [B, L, 1] raw scores, padding contributes nothing
        pooled = torch.matmul(x.transpose(1, 2), s).squeeze(-1)  # [B, D]
        return proj(pooled).unsqueeze(1)  # [B, 1, D_llm]

    def forward(self, modality: str, out: TowerOutput) -> torch.Tensor:
        """TowerOutput (features [B, L, D]) -> [B, 1, D_llm]."""
        if modality == "vision":
            return self._score_pool(out, self.video_attention_mlp, self.affectgpt_proj)
        if modality == "audio":
            return self._score_pool(out, self.audio_attention_mlp, self.audio_llama_proj)
        raise ValueError(f"projector 'affectgpt' has no {modality!r} path (vision and audio only)")

    def fuse(self, vision: TowerOutput, audio: TowerOutput) -> torch.Tensor:
        """The pre-fusion token from both modalities -> [B, 1, D_llm]."""
        dtype = self.multi_llama_proj.weight.dtype
        xv, mv = self._masked(vision, dtype)
        xa, ma = self._masked(audio, dtype)
        v = self.multi_video_embs((xv * mv).sum(1) / mv.sum(1).clamp(min=1))  # [B, M]
        a = self.multi_audio_embs((xa * ma).sum(1) / ma.sum(1).clamp(min=1))  # [B, M]
        w = self.fc_att(self.attention_mlp(torch.cat([v, a], dim=1)))  # [B, 2] raw weights
        fused = torch.matmul(torch.stack([v, a], dim=2), w.unsqueeze(2)).squeeze(2)  # [B, M]
        return self.multi_llama_proj(fused).unsqueeze(1)  # [B, 1, D_llm]

    def project_all(self, outputs: dict[str, TowerOutput]) -> dict[str, torch.Tensor]:
        """Every modality's tokens, plus ``multi`` when each media item has both vision and audio."""
        tokens = {m: self(m, o) for m, o in outputs.items()}
        v, a = outputs.get("vision"), outputs.get("audio")
        if v is not None and a is not None and v.features.shape[0] == a.features.shape[0]:
            tokens[MULTI] = self.fuse(v, a)
        return tokens
