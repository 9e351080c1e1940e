"""Speech SSL tower: any HF audio encoder (HuBERT, wav2vec2, WavLM, data2vec-audio, ...) via ``AutoModel``.

Input: 16 kHz mono waveforms ``input_values [B, S]`` with ``input_values_mask [B, S]``. Output: the average of
the configured hidden-state layers, trimmed to each item's real length and pooled by ``stride``: [B, L, D].
"""

from __future__ import annotations

import torch

from affectllm.model.towers.base import FrozenTower, TowerOutput, average_layers, pool_time

SAMPLE_RATE = 16000


class HFAudioTower(FrozenTower):
    def __init__(self, spec, load_weights: bool = True) -> None:
        super().__init__()
        from transformers import AutoConfig, AutoModel

        self.spec = spec
        if spec.model is not None and load_weights:
            self.encoder = AutoModel.from_pretrained(spec.model)
            self.source_loaded = True
        else:
            if spec.arch is None:
                raise ValueError("audio tower: give `model` (HF id or path) or an `arch` config dict")
            arch = dict(spec.arch)
            self.encoder = AutoModel.from_config(AutoConfig.for_model(arch.pop("model_type"), **arch))
        self.output_dim = self.encoder.config.hidden_size
        self.freeze()

    def fingerprint_payload(self) -> dict:
        return {"tower": "hf_audio", **self.spec.to_dict()}

    def _frame_lengths(self, n_samples: torch.Tensor) -> torch.Tensor:
        fn = getattr(self.encoder, "_get_feat_extract_output_lengths", None)
        if fn is not None:
            return fn(n_samples).long()
        return (n_samples // 320).long()  # the usual 20 ms conv stride

    @torch.no_grad()
    def forward(self, input_values: torch.Tensor, input_values_mask: torch.Tensor | None = None) -> TowerOutput:
        x = input_values.to(self.device, self.dtype)  # [B, S]
        if input_values_mask is None:
            input_values_mask = torch.ones_like(x, dtype=torch.bool)
        if self.spec.clips > 0:
            from affectllm.model.affectgpt import clip_mode_features

            return clip_mode_features(self, x, input_values_mask.to(x.device))
        m = input_values_mask.to(x.device)
        max_len = int(self.spec.max_seconds * SAMPLE_RATE)
        x, m = x[:, :max_len], m[:, :max_len]
        if self.spec.normalize:  # zero mean, unit variance over the real samples of each item
            mf = m.to(x.dtype)
            n = mf.sum(1, keepdim=True).clamp(min=1)
            mean = (x * mf).sum(1, keepdim=True) / n
            var = (((x - mean) * mf) ** 2).sum(1, keepdim=True) / n
            x = (x - mean) / torch.sqrt(var + 1e-7) * mf
        attn = m.long() if getattr(self.encoder.config, "feat_extract_norm", "layer") == "layer" else None
        out = self.encoder(x, attention_mask=attn, output_hidden_states=True)
        feats = average_layers(out, self.spec)  # [B, L, D]
        lengths = self._frame_lengths(m.sum(1)).clamp(max=feats.shape[1])
        frame_mask = torch.arange(feats.shape[1], device=x.device)[None] < lengths[:, None]  # [B, L]
        hop = x.shape[1] / max(feats.shape[1], 1) / SAMPLE_RATE
        times = torch.arange(feats.shape[1], device=x.device, dtype=torch.float32)[None].expand(feats.shape[0], -1) * hop
        feats, frame_mask, times = pool_time(feats, frame_mask, times.contiguous(), self.spec.stride)
        return TowerOutput(feats, frame_mask, times)
