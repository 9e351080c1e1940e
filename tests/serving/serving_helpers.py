"""Helpers shared by the server and web tests: a generated WAV clip, server-sent event parsing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import numpy as np


def write_wav(path: Path, seconds: float = 1.0, sr: int = 16000) -> Path:
    """A voiced-like test tone: 180 Hz with harmonics and an amplitude envelope."""
    import soundfile as sf

    t = np.arange(int(seconds * sr)) / sr
    wave = sum(np.sin(2 * np.pi * 180 * k * t) / k for k in (1, 2, 3)) * (0.3 + 0.2 * np.sin(2 * np.pi * 3 * t))
    sf.write(path, (0.3 * wave).astype(np.float32), sr)
    return path


async def sse_events(lines: AsyncIterator[str]) -> list[str]:
    """The data payloads of a server-sent event stream, in order."""
    return [line[len("data: "):] for line in [x async for x in lines] if line.startswith("data: ")]
