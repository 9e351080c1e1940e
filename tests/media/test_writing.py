"""``media.write_clip`` makes clips the project's own decoders read back: frames, colour, audio and timing."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from affectllm.media import load_audio, load_frames, probe, write_clip

FPS, SR, SIZE = 10, 16000, (64, 48)  # SIZE = (W, H)


def _clip(path: Path, seconds: float = 1.0, **kwargs) -> np.ndarray:
    n = int(seconds * FPS)
    frames = [np.full((SIZE[1], SIZE[0], 3), (200, 30, 30), np.uint8) for _ in range(n)]  # [H, W, 3] red
    t = np.arange(int(seconds * SR)) / SR
    audio = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)  # [S] 440 Hz
    write_clip(path, frames, audio, fps=FPS, sample_rate=SR, size=SIZE, **kwargs)
    return audio


def test_written_clip_reads_back(tmp_path: Path) -> None:
    path = tmp_path / "clip.mp4"
    audio = _clip(path, bitexact=True)
    info = probe(path)
    assert info.has_video and info.has_audio
    assert (info.width, info.height) == SIZE and info.fps == FPS
    assert abs(info.duration_s - 1.0) < 0.15
    frames = load_frames(path, num_frames=4)
    img = np.asarray(frames.images[0], np.float32)  # [H, W, 3]
    assert img.shape == (SIZE[1], SIZE[0], 3)
    assert np.abs(img.mean((0, 1)) - (200, 30, 30)).max() < 12  # lossy yuv420p, same colour
    back = load_audio(path, sr=SR)
    assert abs(len(back) - len(audio)) < 0.1 * SR
    spectrum = np.abs(np.fft.rfft(back[: SR // 2]))
    assert abs(np.argmax(spectrum) * SR / (SR // 2) - 440) < 5  # the tone survives AAC


def test_bitexact_gives_the_same_bytes(tmp_path: Path) -> None:
    a, b = tmp_path / "a.mp4", tmp_path / "b.mp4"
    _clip(a, bitexact=True)
    _clip(b, bitexact=True)
    assert a.read_bytes() == b.read_bytes()
