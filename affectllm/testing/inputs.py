"""Hostile inputs built on demand (tests, robustness checks): files that once crashed a batch or the server.

``write_surround_clip(path)`` writes a small mp4 (libx264 video + 7.1 AAC audio, 48 kHz), the file whose audio
made PyAV's planar ``to_ndarray`` segfault (issue 12). Nothing here is shipped data: every file is generated.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def write_surround_clip(path: str | Path, seconds: float = 3.0, fps: int = 10, size: int = 64) -> Path:
    """A ``seconds``-long mp4 with a grey-ramp video and a 220 Hz tone on all 8 channels of a 7.1 AAC stream."""
    import av

    path = Path(path)
    rate, step = 48000, 1024
    with av.open(str(path), "w") as out:
        video = out.add_stream("libx264", rate=fps)
        video.width, video.height, video.pix_fmt = size, size, "yuv420p"
        audio = out.add_stream("aac", rate=rate, layout="7.1")
        for i in range(int(seconds * fps)):
            image = np.full((size, size, 3), (i * 8) % 255, np.uint8)  # [H, W, 3]
            for packet in video.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        tone = (0.2 * np.sin(2 * np.pi * 220 * np.arange(int(seconds * rate)) / rate)).astype(np.float32)  # [S]
        for start in range(0, tone.size, step):
            # packed layout [1, n * 8]: PyAV miscounts the planes of planar 7.1 frames, so never build those
            block = np.repeat(tone[start:start + step], 8)[None, :]
            frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(block), format="flt", layout="7.1")
            frame.sample_rate, frame.pts = rate, start
            for packet in audio.encode(frame):
                out.mux(packet)
        _flush(out, video, audio)
    return path


def write_offset_clip(path: str | Path, seconds: float = 9.3, fps: int = 10, size: int = 224, dc: float = 0.3,
                      drift: float = 0.3, seed: int = 0) -> Path:
    """A lossless ``seconds``-long mov: RGB frames (PNG, every frame distinct) and 16 kHz mono PCM speech-like
    audio riding on a DC offset ``dc`` plus a linear drift by ``drift`` (so every 2-s clip has its own mean).

    Lossless and at 16 kHz so that any decoder (PyAV here, decord / torchaudio in a reference run) reads the same
    pixels and samples: parity tests then measure the model, not the codec."""
    import av

    path = Path(path)
    rng = np.random.default_rng(seed)
    sr, n_frames = 16000, int(round(seconds * fps))
    t = np.arange(int(round(seconds * sr))) / sr  # [S]
    pitch = 2 * np.pi * 180 * t * (1 + 0.1 * np.sin(2 * np.pi * 0.7 * t))  # a gliding 180-Hz voice
    voice = 0.25 * np.sin(pitch) * (0.6 + 0.4 * np.sin(2 * np.pi * 3 * t))  # [S], 3-Hz syllable envelope
    wave = np.clip(dc + drift * t / seconds + voice + 0.02 * rng.standard_normal(t.shape), -1, 1)  # [S]
    pcm = np.round(wave * 32767).astype(np.int16)
    base = rng.integers(0, 256, size=(size // 8, size // 8, 3), dtype=np.uint8)
    with av.open(str(path), "w", format="mov") as out:
        video = out.add_stream("png", rate=fps)
        video.width, video.height, video.pix_fmt = size, size, "rgb24"
        audio = out.add_stream("pcm_s16le", rate=sr, layout="mono")
        for i in range(n_frames):
            small = np.roll(base, i, axis=1) // 2 + np.uint8(i * 255 // max(n_frames - 1, 1)) // 2
            image = np.repeat(np.repeat(small, 8, axis=0), 8, axis=1)  # [H, W, 3], frame i distinct
            for packet in video.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="rgb24")):
                out.mux(packet)
        for start in range(0, pcm.size, 1600):
            frame = av.AudioFrame.from_ndarray(pcm[None, start:start + 1600], format="s16", layout="mono")
            frame.sample_rate, frame.pts = sr, start
            for packet in audio.encode(frame):
                out.mux(packet)
        _flush(out, video, audio)
    return path


def _flush(out, *streams) -> None:
    """Drain each encoder's buffered packets into the container (end of a written clip)."""
    for stream in streams:
        for packet in stream.encode(None):
            out.mux(packet)
