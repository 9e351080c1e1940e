"""Whisper tower: openai-whisper's audio encoder over 30-s windows, features trimmed to the real length.

A clip longer than 30 s is cut into several windows, encoded as one batch and concatenated (20 ms a frame),
then average-pooled by ``stride``. Input: ``input_values [B, S]`` 16 kHz and ``input_values_mask [B, S]``.
"""

from __future__ import annotations

import math

import torch

from affectllm.model.towers.base import FrozenTower, TowerOutput, pad_sequences, pool_time

SAMPLE_RATE = 16000
WINDOW = 30 * SAMPLE_RATE  # samples per encoder window
SAMPLES_PER_FRAME = 320  # mel hop 160 x conv stride 2


class WhisperTower(FrozenTower):
    def __init__(self, spec, load_weights: bool = True) -> None:
        super().__init__()
        self.spec = spec
        if spec.model is not None and load_weights:
            from affectllm.offline.whisper_convert import load_whisper

            model = load_whisper(spec.model)
            self.encoder = model.encoder
            self.n_mels = model.dims.n_mels
            self.source_loaded = True
        else:
            if spec.dims is None:
                raise ValueError("whisper tower: give `model` ('base', 'tiny.en', a checkpoint path) or `dims`")
            from whisper.model import AudioEncoder

            d = spec.dims
            self.encoder = AudioEncoder(d["n_mels"], d["n_audio_ctx"], d["n_audio_state"], d["n_audio_head"],
                                        d["n_audio_layer"])
            self.n_mels = d["n_mels"]
        self.output_dim = self.encoder.ln_post.normalized_shape[0]
        self.freeze()

    def fingerprint_payload(self) -> dict:
        return {"tower": "whisper", **self.spec.to_dict()}

    def _apply(self, fn, recurse: bool = True):
        """Keep LayerNorms in fp32 whatever the tower is cast to: openai-whisper's LayerNorm computes in fp32."""
        super()._apply(fn, recurse)
        for module in self.modules():
            if isinstance(module, torch.nn.LayerNorm):
                for name, p in module.named_parameters(recurse=False):
                    if p.is_floating_point() and p.dtype != torch.float32:
                        setattr(module, name, torch.nn.Parameter(p.float(), requires_grad=p.requires_grad))
        return self

    @property
    def dtype(self) -> torch.dtype:
        return self.encoder.conv1.weight.dtype

    @torch.no_grad()
    def forward(self, input_values: torch.Tensor, input_values_mask: torch.Tensor | None = None) -> TowerOutput:
        from whisper.audio import log_mel_spectrogram

        lengths = (input_values_mask.sum(1) if input_values_mask is not None
                   else torch.full((input_values.shape[0],), input_values.shape[1]))
        max_len = int(self.spec.max_seconds * SAMPLE_RATE)
        windows, owners = [], []
        for i, n in enumerate(lengths.tolist()):
            wav = input_values[i, : min(int(n), max_len)].float().cpu()
            for w in range(max(1, math.ceil(wav.shape[0] / WINDOW))):
                chunk = wav[w * WINDOW:(w + 1) * WINDOW]
                windows.append((chunk, chunk.shape[0]))
                owners.append(i)
        mels = torch.stack([
            log_mel_spectrogram(torch.nn.functional.pad(c, (0, WINDOW - c.shape[0])), n_mels=self.n_mels)
            for c, _ in windows])  # [W, n_mels, 3000]
        enc = self.encoder(mels.to(self.device, self.dtype))  # [W, 1500, D]
        per_item: list[list[torch.Tensor]] = [[] for _ in range(input_values.shape[0])]
        for (_, n), owner, feats in zip(windows, owners, enc):
            per_item[owner].append(feats[: max(1, math.ceil(n / SAMPLES_PER_FRAME))])
        seqs = [torch.cat(parts) for parts in per_item]
        times = [torch.arange(s.shape[0], dtype=torch.float32, device=s.device) * SAMPLES_PER_FRAME / SAMPLE_RATE
                 for s in seqs]
        out = pad_sequences(seqs, times)
        f, m, t = pool_time(out.features, out.mask, out.times, self.spec.stride)
        return TowerOutput(f, m, t)
