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
        for stream in (video, audio):
            for packet in stream.encode(None):
                out.mux(packet)
    return path
