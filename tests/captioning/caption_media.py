"""Small generated media for the captioning tests (written into tmp_path, never into the repo)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

RAVDESS_MP4 = "media/ravdess/01-01-01-01-01-01-01.mp4"  # relative to ../shared
JFK = "media/speech/jfk.flac"


def write_wav(path: Path, seconds: float, freq: float = 220.0, sr: int = 16000, amp: float = 0.3) -> Path:
    """A sine tone as WAV whatever the file's extension (``amp=0`` writes silence)."""
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    sf.write(str(path), (amp * np.sin(2 * np.pi * freq * t)).astype(np.float32), sr, format="WAV")
    return path


def write_video(path: Path, width: int, height: int, frames: int, fps: int = 10, tone: bool = False,
                seconds_audio: float | None = None) -> Path:
    """A small mpeg4 video of moving gradients, optionally with an AAC tone track."""
    import av

    with av.open(str(path), "w") as c:
        vs = c.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = width, height, "yuv420p"
        a_s = None
        if tone:
            a_s = c.add_stream("aac", rate=16000)
            a_s.layout = "mono"
        yy, xx = np.mgrid[0:height, 0:width]
        base = np.stack([(xx * 255 // max(width - 1, 1)), (yy * 255 // max(height - 1, 1)),
                         ((xx + yy) % 256)], axis=-1).astype(np.uint8)  # [H, W, 3] smooth: cheap to encode
        for i in range(frames):
            img = np.roll(base, i * 3, axis=1)
            for pkt in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(pkt)
        for pkt in vs.encode():
            c.mux(pkt)
        if a_s is not None:
            n = int((seconds_audio or frames / fps) * 16000)
            wave = (0.3 * np.sin(2 * np.pi * 220 * np.arange(n) / 16000)).astype(np.float32)
            for start in range(0, n, 1024):
                chunk = wave[start:start + 1024][None]
                frame = av.AudioFrame.from_ndarray(chunk, format="flt", layout="mono")
                frame.sample_rate = 16000
                frame.pts = start
                for pkt in a_s.encode(frame):
                    c.mux(pkt)
            for pkt in a_s.encode():
                c.mux(pkt)
    return path


def small_audio_folder(folder: Path, n: int, seconds: float = 0.5) -> list[Path]:
    """``n`` distinct short tones named clip_00.wav ... (fast inputs for resume/shard tests)."""
    folder.mkdir(parents=True, exist_ok=True)
    return [write_wav(folder / f"clip_{i:02d}.wav", seconds, freq=150.0 + 20 * i) for i in range(n)]
