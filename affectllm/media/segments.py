"""Cutting long inputs into segments that each get a report: silero-vad speech regions, or fixed windows.

``speech_regions`` streams the audio through Silero VAD (the ``silero-vad`` wheel, offline) chunk by chunk,
keeping the model's recurrent state across chunks, so the result equals a whole-file run while memory stays
bounded (only one chunk of audio plus 4 bytes of speech probability per 32 ms). ``plan_segments`` packs the
regions into segments of at most ``segment_seconds``.
"""

from __future__ import annotations

import array
import math
import os
import warnings
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

import numpy as np

from affectllm.media.audio import iter_audio_chunks
from affectllm.media.errors import MediaError
from affectllm.media.probe import probe

VAD_SR = 16000
_WINDOW = 512  # samples per Silero VAD step at 16 kHz (32 ms)
_CHUNK_WINDOWS = 1024  # windows per decoded chunk (32.8 s)


@dataclass(frozen=True)
class Segment:
    """A time range in seconds; ``source`` says how it was found."""

    start: float
    end: float
    source: Literal["whole", "speech", "fixed"] = "fixed"

    @property
    def duration(self) -> float:
        return self.end - self.start


@lru_cache(maxsize=1)
def _silero() -> tuple[Any, Any]:
    """(Silero VAD TorchScript model, its ``get_speech_timestamps_from_probs``), loaded once per process."""
    import torch

    threads = torch.get_num_threads()
    import silero_vad  # importing it calls torch.set_num_threads(1) for the whole process: undo that

    torch.set_num_threads(threads)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # torch.jit.load deprecation notice
        warnings.simplefilter("ignore", DeprecationWarning)  # importlib.resources.path in the wheel
        model = silero_vad.load_silero_vad()
    return model, silero_vad.get_speech_timestamps_from_probs


class _StreamingVAD:
    """Silero VAD speech probabilities over consecutive 16-kHz chunks, one per 512-sample window.

    The fast path runs the model's feature extractor and encoder on all windows of a chunk at once and only
    its LSTM cell step by step (the same arithmetic as the model's own per-window ``forward``, ~7x faster);
    models without that layout use the plain per-window call. State carries across chunks either way.
    """

    def __init__(self, model: Any) -> None:
        self.model = model
        inner = getattr(model, "_model", None)
        self.fast = all(hasattr(inner, a) for a in ("run_extractors", "encoder", "decoder", "context_size_samples"))
        self.fast = self.fast and hasattr(inner.decoder, "rnn") and hasattr(inner.decoder, "decoder")
        self.inner = inner
        self.reset()

    def reset(self) -> None:
        import torch

        self.model.reset_states()
        self.context = torch.zeros(1, int(self.inner.context_size_samples) if self.fast else 0)
        self.state: tuple[Any, Any] | None = None

    def __call__(self, windows: Any) -> Any:  # [n, 512] float32 -> [n] probabilities
        import torch

        if not self.fast:
            return torch.cat([self.model(w, VAD_SR).reshape(1) for w in windows])
        ctx = self.context.shape[1]
        previous = torch.cat([self.context, windows[:-1, -ctx:]], dim=0)  # [n, 64] each window's left context
        feats = self.inner.encoder(self.inner.run_extractors(torch.cat([previous, windows], dim=1)))  # [n, 128, 1]
        feats = feats.squeeze(-1)  # [n, 128]
        rnn = self.inner.decoder.rnn
        if self.state is None:
            zeros = torch.zeros(1, feats.shape[1])
            self.state = (zeros, zeros)
        hidden = []
        h, c = self.state
        for i in range(feats.shape[0]):
            h, c = rnn(feats[i : i + 1], (h, c))
            hidden.append(h)
        self.state = (h, c)
        self.context = windows[-1:, -ctx:]
        out = self.inner.decoder.decoder(torch.cat(hidden).unsqueeze(-1).float())  # [n, 1, 1]
        return out.reshape(out.shape[0], -1).mean(dim=1)


def speech_probabilities(path: str | os.PathLike[str], fast: bool = True) -> tuple[np.ndarray, int]:
    """Silero VAD speech probability per 32-ms window of the audio of ``path`` (bounded memory).

    Returns (probabilities ``[W]``, number of 16-kHz samples); ``fast=False`` forces the per-window path.
    """
    import torch

    model, _ = _silero()
    vad = _StreamingVAD(model)
    vad.fast = vad.fast and fast
    vad.reset()
    probs = array.array("f")  # 4 bytes per 32-ms window: 0.9 MB for two hours
    total = 0
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # 32-ms steps are far too small for intra-op threads: 1 thread is much faster
    try:
        with torch.inference_mode():
            for chunk in iter_audio_chunks(path, _WINDOW * _CHUNK_WINDOWS / VAD_SR, sr=VAD_SR):
                total += chunk.size
                if chunk.size % _WINDOW:
                    chunk = np.pad(chunk, (0, _WINDOW - chunk.size % _WINDOW))
                probs.extend(vad(torch.from_numpy(chunk).view(-1, _WINDOW)).tolist())
    finally:
        torch.set_num_threads(threads)
    return np.frombuffer(probs, dtype=np.float32), total


def speech_regions(
    path: str | os.PathLike[str],
    threshold: float = 0.5,
    min_speech_s: float = 0.25,
    min_silence_s: float = 0.3,
    pad_s: float = 0.1,
) -> list[tuple[float, float]]:
    """(start, end) seconds of speech in the audio of ``path``, by Silero VAD in bounded memory."""
    _, from_probs = _silero()
    probs, total = speech_probabilities(path)
    if total == 0:
        return []
    found = from_probs(
        probs.tolist(),
        sampling_rate=VAD_SR,
        threshold=threshold,
        min_speech_duration_ms=int(min_speech_s * 1000),
        min_silence_duration_ms=int(min_silence_s * 1000),
        speech_pad_ms=int(pad_s * 1000),
        audio_length_samples=total,
    )
    return [(d["start"] / VAD_SR, d["end"] / VAD_SR) for d in found]


def fixed_windows(start: float, end: float, segment_seconds: float) -> list[Segment]:
    """[start, end) cut into the fewest equal windows of at most ``segment_seconds``."""
    span = end - start
    if span <= 0:
        return [Segment(start, start, "whole")]
    n = max(1, math.ceil(span / segment_seconds - 1e-9))
    edges = start + np.arange(n + 1) * (span / n)
    return [Segment(float(a), float(b), "fixed") for a, b in zip(edges[:-1], edges[1:], strict=True)]


def pack_regions(regions: list[tuple[float, float]], segment_seconds: float) -> list[Segment]:
    """Speech regions merged while the union fits in ``segment_seconds``; longer regions split evenly."""
    segments: list[Segment] = []
    for start, end in regions:
        for piece in fixed_windows(start, end, segment_seconds):
            if segments and piece.end - segments[-1].start <= segment_seconds + 1e-9:
                segments[-1] = Segment(segments[-1].start, piece.end, "speech")
            else:
                segments.append(Segment(piece.start, piece.end, "speech"))
    return segments


def plan_segments(path: str | os.PathLike[str], segment_seconds: float = 30.0, use_vad: bool = True) -> list[Segment]:
    """Segments of at most ``segment_seconds`` covering what should be reported on in ``path``.

    A file no longer than ``segment_seconds`` is one ``"whole"`` segment (VAD is not run). Longer files: the
    speech regions packed into segments when ``use_vad`` and the file has audio with speech, else fixed equal
    windows over the whole duration. An image is one zero-length segment.
    """
    if segment_seconds <= 0:
        raise ValueError(f"segment_seconds must be positive, got {segment_seconds}")
    info = probe(path)
    if info.kind == "image":
        return [Segment(0.0, 0.0, "whole")]
    duration = info.duration_s
    if duration <= segment_seconds:
        return [Segment(0.0, duration, "whole")]
    if use_vad and info.has_audio:
        try:
            regions = speech_regions(path)
        except MediaError:
            regions = []  # undecodable audio: fall back to windows over the (decodable) video
        if regions:
            return pack_regions(regions, segment_seconds)
    return fixed_windows(0.0, duration, segment_seconds)
