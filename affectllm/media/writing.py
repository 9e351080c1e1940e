"""Writing a clip: RGB frames and mono audio muxed into one file with PyAV's bundled FFmpeg.

The one encoder for the clips the project makes itself (the starter's synthetic face videos, the shipped example
clip), so every such clip is muxed the same way: the video frames first, then the audio in 1024-sample frames.
"""

from __future__ import annotations

from collections.abc import Iterable
from fractions import Fraction
from pathlib import Path

import numpy as np

AUDIO_FRAME = 1024  # samples per encoded audio frame (AAC's own frame size)


def write_clip(path: Path, frames: Iterable[np.ndarray], audio: np.ndarray, *, fps: int, sample_rate: int,
               size: tuple[int, int], video_codec: str = "libx264", video_bit_rate: int | None = None,
               audio_bit_rate: int | None = None, bitexact: bool = False, timestamp_audio: bool = True) -> None:
    """Encode ``frames`` (each ``[H, W, 3]`` uint8 RGB, ``size`` = (W, H)) at ``fps`` and ``audio`` (``[S]`` float
    mono at ``sample_rate``, AAC) into ``path``. ``bitexact``: no encoder version or date in the file (the same
    input gives the same bytes). ``timestamp_audio=False`` leaves the audio timestamps to the encoder, which then
    starts the audio one AAC frame (64 ms at 16 kHz) late."""
    import av

    options = {"fflags": "+bitexact"} if bitexact else {}
    with av.open(str(path), "w", options=options) as out:
        vs = out.add_stream(video_codec, rate=fps)
        vs.width, vs.height = size
        vs.pix_fmt = "yuv420p"
        if video_bit_rate is not None:
            vs.bit_rate = video_bit_rate
        a_s = out.add_stream("aac", rate=sample_rate)
        a_s.layout = "mono"
        if audio_bit_rate is not None:
            a_s.bit_rate = audio_bit_rate
        for img in frames:
            _mux(out, vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        _mux(out, vs.encode())
        for start in range(0, len(audio), AUDIO_FRAME):
            chunk = np.ascontiguousarray(audio[start:start + AUDIO_FRAME][None], dtype=np.float32)  # [1, S]
            frame = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
            frame.sample_rate = sample_rate
            if timestamp_audio:
                frame.pts, frame.time_base = start, Fraction(1, sample_rate)
            _mux(out, a_s.encode(frame))
        _mux(out, a_s.encode())


def _mux(container, packets) -> None:
    for packet in packets:
        container.mux(packet)
