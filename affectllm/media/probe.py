"""What a media file holds, detected from its content (never its extension): ``probe(path) -> MediaInfo``.

Images are recognised by Pillow (jpg, png, webp, bmp, tiff, gif); everything else by PyAV. Cover art in audio
files (mp3/m4a "attached pictures") is not a video stream, so such files probe as ``kind="audio"``.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from affectllm.media.errors import MediaError, check_path, open_container

MediaKind = Literal["video", "audio", "image"]

# Pillow formats we treat as still images; others Pillow knows (e.g. MPEG) are left to PyAV.
IMAGE_FORMATS = frozenset({"JPEG", "MPO", "PNG", "WEBP", "BMP", "TIFF", "GIF"})
_ATTACHED_PIC = 1024  # AV_DISPOSITION_ATTACHED_PIC


@dataclass(frozen=True)
class MediaInfo:
    """Stream facts of one file. Durations in seconds; video fields are 0 when there is no video."""

    path: str
    kind: MediaKind
    duration_s: float
    has_video: bool
    has_audio: bool
    fps: float = 0.0
    n_frames: int = 0  # from the container header when present, else duration × fps (an estimate)
    width: int = 0  # coded size, before rotation
    height: int = 0
    rotation: int = 0  # degrees counter-clockwise the picture must turn for display (0, 90, 180, -90)
    sample_rate: int = 0
    channels: int = 0
    format_name: str = ""


def image_format(path: Path) -> str | None:
    """Pillow's format name when ``path`` holds a still image we support, else None (content-based)."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            fmt = img.format
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError):
        return None
    except Exception:  # Pillow plugins raise assorted errors on non-images  # noqa: BLE001
        return None
    return fmt if fmt in IMAGE_FORMATS else None


def video_stream(container: Any) -> Any | None:
    """The first real video stream (cover art excluded), or None."""
    for s in container.streams.video:
        if not int(s.disposition) & _ATTACHED_PIC:
            return s
    return None


def audio_stream(container: Any) -> Any | None:
    """The first audio stream, or None."""
    return container.streams.audio[0] if container.streams.audio else None


def stream_duration(container: Any, stream: Any | None) -> float:
    """Seconds of ``stream`` from its header, else the container's duration, else 0."""
    if stream is not None and stream.duration is not None and stream.time_base is not None:
        return float(stream.duration * stream.time_base)
    if container.duration is not None:
        return container.duration / 1_000_000
    return 0.0


def stream_fps(stream: Any) -> float:
    """Average frame rate of a video stream (frames per second), 0 when unknown."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate:
            value = float(rate)
            if 0 < value < 1000:
                return value
    return 0.0


def first_frame_rotation(container: Any, stream: Any) -> int:
    """Display rotation (degrees CCW) read from the first decoded frame's display matrix, 0 when absent."""
    import av

    try:
        for frame in container.decode(stream):
            return normalise_rotation(frame.rotation)
    except av.error.FFmpegError:
        return 0
    return 0


def normalise_rotation(rotation: float | None) -> int:
    """A display-matrix angle snapped to a multiple of 90 in [-180, 180)."""
    if not rotation:
        return 0
    quarter = round(float(rotation) / 90.0) % 4
    return {0: 0, 1: 90, 2: 180, 3: -90}[quarter]


def _probe_image(path: Path, fmt: str) -> MediaInfo:
    from PIL import Image, ImageOps

    try:
        with Image.open(path) as img:
            img = ImageOps.exif_transpose(img) or img
            width, height = img.size
    except Exception as err:  # noqa: BLE001 - Pillow raises many types on broken files
        raise MediaError(path, f"broken {fmt} image ({err})", "re-save or re-export the image") from err
    return MediaInfo(str(path), "image", 0.0, has_video=True, has_audio=False, n_frames=1,
                     width=width, height=height, format_name=fmt.lower())


def probe(path: str | os.PathLike[str]) -> MediaInfo:
    """Inspect ``path`` and return its kind and stream facts; MediaError for anything undecodable."""
    p = check_path(path)
    fmt = image_format(p)
    if fmt is not None:
        return _probe_image(p, fmt)
    with open_container(p) as container:
        v = video_stream(container)
        a = audio_stream(container)
        if v is None and a is None:
            raise MediaError(p, "holds no audio or video stream", "pass a video, audio or image file")
        info: dict[str, Any] = {"format_name": container.format.name}
        if v is not None:
            fps = stream_fps(v)
            duration = stream_duration(container, v)
            n_frames = int(v.frames) if v.frames else int(round(duration * fps))
            info.update(fps=fps, n_frames=n_frames, width=v.codec_context.width,
                        height=v.codec_context.height)
        if a is not None:
            info.update(sample_rate=a.codec_context.sample_rate or a.rate or 0,
                        channels=a.codec_context.channels)
        # Image files PyAV knows but Pillow does not (e.g. a single-frame mjpeg/png "video" stream).
        single_picture = v is not None and a is None and container.format.name.endswith(("_pipe", "image2"))
        duration = stream_duration(container, v if v is not None else a)
        if duration <= 0 and container.duration:
            duration = container.duration / 1_000_000
        if v is not None:
            info["rotation"] = first_frame_rotation(container, v)
    kind: MediaKind = "image" if single_picture else ("video" if v is not None else "audio")
    return MediaInfo(str(p), kind, float(duration), has_video=v is not None, has_audio=a is not None, **info)
