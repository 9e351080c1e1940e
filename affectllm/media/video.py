"""Frame sampling from video files (and images, as one frame) with PyAV: ``load_frames(path) -> Frames``.

Sampling picks, for each target time t, the frame on screen at t (the last frame whose presentation time is
<= t), using the frames' own timestamps, so variable-frame-rate files are sampled correctly. To stay fast:
- non-reference frames (B-frames) far from every target are skipped by the decoder (``skip_frame``);
- when the next target lies beyond a later keyframe, the demuxer seeks instead of decoding the gap;
- each picked frame is converted to RGB straight at its final size (``max_side``), so 8K frames never
  exist as full-size RGB arrays.
Display rotation (the display-matrix side data of phone videos) is applied to the returned pictures.
"""

from __future__ import annotations

import bisect
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from affectllm.media.errors import MediaError, check_path, describe_av_error, open_container
from affectllm.media.image import load_image, scaled_size
from affectllm.media.probe import (
    image_format,
    normalise_rotation,
    stream_duration,
    stream_fps,
    video_stream,
)

_SEEK_GAP_NO_INDEX_S = 5.0  # without a keyframe index, seek only across gaps longer than this


@dataclass
class Frames:
    """Sampled pictures and the time each one is shown, in seconds from the start of the video."""

    images: np.ndarray  # [T, H, W, 3] uint8 RGB, display orientation
    timestamps: np.ndarray  # [T] float64 seconds

    def __len__(self) -> int:
        return int(self.images.shape[0])


def sample_times(start: float, end: float, num_frames: int | None, fps: float | None) -> np.ndarray | None:
    """Target times in [start, end): ``fps`` per second from ``start``, else ``num_frames`` bin centres.

    None means "every frame". ``fps`` wins over ``num_frames`` when both are given.
    """
    span = max(0.0, end - start)
    if fps is not None:
        if fps <= 0:
            raise ValueError(f"fps must be positive, got {fps}")
        n = max(1, int(np.ceil(span * fps - 1e-9)))
        return start + np.arange(n) / fps  # [n]
    if num_frames is None:
        return None
    if num_frames < 1:
        raise ValueError(f"num_frames must be >= 1 or None, got {num_frames}")
    return start + (np.arange(num_frames) + 0.5) * (span / num_frames)  # [num_frames]


def load_frames(
    path: str | os.PathLike[str],
    num_frames: int | None = 8,
    fps: float | None = None,
    start: float | None = None,
    end: float | None = None,
    max_side: int | None = None,
) -> Frames:
    """Sample frames from a video (or load an image as T=1).

    ``num_frames`` uniform frames (bin centres) over [start, end), or ``fps`` frames per second (then
    ``num_frames`` is ignored); both None decodes every frame in the range. ``max_side`` caps the longer side
    of the returned pictures. Requests for more frames than the video holds repeat frames (timestamps show it).
    Raises MediaError for unreadable, truncated or audio-only files.
    """
    import av

    p = check_path(path)
    if image_format(p) is not None:
        image = load_image(p, max_side=max_side)
        return Frames(image[None], np.zeros(1))
    with open_container(p) as container:
        stream = video_stream(container)
        if stream is None:
            raise MediaError(p, "has no video stream (audio only)", "pass a video or image, or use its audio")
        stream.thread_type = "AUTO"
        duration = stream_duration(container, stream)
        if duration <= 0:
            duration = _scan_duration(p)
        lo = max(0.0, float(start or 0.0))
        known = duration if duration > 0 else float("inf")  # unknown length: decode to the end
        hi = known if end is None else min(float(end), known)
        if duration > 0 and lo >= hi:
            raise MediaError(p, f"start {lo:.2f} s is not before end {hi:.2f} s (video lasts {duration:.2f} s)",
                             "choose a time range inside the video")
        targets = sample_times(lo, hi, num_frames, fps) if duration > 0 else np.zeros(1)
        sampler = _Sampler(p, container, stream, max_side)
        try:
            if targets is None:
                return sampler.all_frames(lo, hi)
            return sampler.at_times(targets, duration)
        except av.error.FFmpegError as err:  # anything the per-packet handling did not absorb
            raise MediaError(p, f"video decoding failed ({describe_av_error(err)})",
                             "the file may be corrupt; re-export it") from err


def _scan_duration(path: Path) -> float:
    """Duration from packet timestamps when the header has none (e.g. live-recorded webm)."""
    import av

    last = 0.0
    with open_container(path) as container:
        stream = video_stream(container)
        if stream is None or stream.time_base is None:
            return 0.0
        t0 = stream.start_time or 0
        try:
            for packet in container.demux(stream):
                if packet.pts is not None:
                    last = max(last, float((packet.pts - t0 + (packet.duration or 0)) * stream.time_base))
        except av.error.FFmpegError:
            pass
    return last


class _Sampler:
    """Decoding state for one open video stream."""

    def __init__(self, path: Path, container: Any, stream: Any, max_side: int | None) -> None:
        self.path = path
        self.container = container
        self.stream = stream
        self.max_side = max_side
        self.tb = float(stream.time_base) if stream.time_base else 0.0
        self.t0 = float((stream.start_time or 0) * self.tb)
        fps = stream_fps(stream)
        self.dt = 1.0 / fps if fps > 0 else 1.0 / 30.0
        self.out_size: tuple[int, int] | None = None  # (W, H) of every returned picture, fixed by the first
        self.n_decoded = 0
        self.n_errors = 0
        self._count = 0  # frames seen, for timestamp-less streams

    # -- decoding -------------------------------------------------------------------------------------
    def _time(self, frame: Any) -> float:
        self._count += 1
        if frame.pts is None or not self.tb:
            return (self._count - 1) * self.dt
        return float(frame.pts * self.tb) - self.t0

    def _frames(self, seek_to: float | None, need: Callable[[float], bool] | None) -> Iterator[tuple[float, Any]]:
        """(time, frame) in presentation order from ``seek_to`` (None: from the current position).

        ``need(t)`` False lets the decoder drop non-reference frames of packets at time t.
        """
        import av

        if seek_to is not None and self.tb:
            target = int((seek_to + self.t0) / self.tb)
            try:
                self.container.seek(target, stream=self.stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                self.n_errors += 1  # unseekable: keep decoding forward from where we are
        ctx = self.stream.codec_context
        demux = self.container.demux(self.stream)
        while True:
            try:
                packet = next(demux)
            except StopIteration:
                return
            except av.error.FFmpegError:  # truncated/corrupt container: treat as end of data
                self.n_errors += 1
                packet = None
            if need is not None and packet is not None and packet.pts is not None and self.tb:
                ctx.skip_frame = "DEFAULT" if need(float(packet.pts * self.tb) - self.t0) else "NONREF"
            try:
                decoded = packet.decode() if packet is not None else ctx.decode(None)
            except av.error.FFmpegError:
                self.n_errors += 1
                continue
            for frame in decoded:
                self.n_decoded += 1
                yield self._time(frame), frame
            if packet is None:
                return

    def _rgb(self, frame: Any) -> np.ndarray:
        """One decoded frame as [H, W, 3] uint8 RGB at the output size, rotated for display."""
        rotation = normalise_rotation(getattr(frame, "rotation", 0))
        if self.out_size is None:
            width, height = frame.width, frame.height
            sar = self.stream.codec_context.sample_aspect_ratio
            if sar and float(sar) > 0 and abs(float(sar) - 1.0) > 1e-3:
                width = max(1, round(width * float(sar)))  # anamorphic: square the pixels
            self.out_size = scaled_size(width, height, self.max_side)
        w, h = self.out_size
        scaled = (w, h) != (frame.width, frame.height)
        rgb = frame.reformat(width=w, height=h, format="rgb24",
                             interpolation="AREA" if scaled else None).to_ndarray()  # [h, w, 3]
        if rotation:
            rgb = np.ascontiguousarray(np.rot90(rgb, k=rotation // 90))
        return rgb

    def _keyframes(self) -> np.ndarray:
        """Keyframe times (s, relative to the stream start) from the demuxer's index; empty when unknown."""
        try:
            entries = self.stream.index_entries
            times = [e.timestamp for e in entries if e.is_keyframe]
        except (AttributeError, TypeError):
            return np.zeros(0)
        return np.asarray(times, dtype=np.float64) * self.tb - self.t0

    def _finish(self, images: list[np.ndarray], times: list[float]) -> Frames:
        if not images:
            reason = "no frame could be decoded" + (f" ({self.n_errors} decoding errors)" if self.n_errors else "")
            raise MediaError(self.path, reason, "the file is corrupt or truncated; re-export or re-download it")
        return Frames(np.stack(images), np.asarray(times, dtype=np.float64))

    # -- sampling modes -----------------------------------------------------------------------------------
    def all_frames(self, lo: float, hi: float) -> Frames:
        images: list[np.ndarray] = []
        times: list[float] = []
        for t, frame in self._frames(seek_to=lo if lo > 0 else None, need=None):
            if t < lo - 1e-6:
                continue
            if t >= hi:
                break
            images.append(self._rgb(frame))
            times.append(t)
        return self._finish(images, times)

    def at_times(self, targets: np.ndarray, duration: float) -> Frames:
        """The frame on screen at each target time (targets ascending)."""
        tlist = [float(t) for t in targets]
        lo_win, hi_win = 1.5 * self.dt, 0.5 * self.dt

        def need(t: float) -> bool:  # is a packet at time t a candidate for some target?
            i = bisect.bisect_left(tlist, t - hi_win)
            return i < len(tlist) and tlist[i] < t + lo_win

        keyframes = self._keyframes()
        images: list[np.ndarray] = []
        times: list[float] = []
        prev: tuple[float, Any] | None = None
        rgb_cache: tuple[float, np.ndarray] | None = None
        i = 0
        sought = {0} if self._worth_seeking(keyframes, 0.0, tlist[0]) else set()
        frames = self._frames(seek_to=tlist[0] if sought else None, need=need)
        while i < len(tlist):
            item = next(frames, None)
            if item is None:
                break
            t, frame = item
            while i < len(tlist) and t > tlist[i] + 1e-6:
                pick = prev if prev is not None else (t, frame)
                if rgb_cache is None or rgb_cache[0] != pick[0]:
                    rgb_cache = (pick[0], self._rgb(pick[1]))
                images.append(rgb_cache[1])
                times.append(pick[0])
                i += 1
            prev = (t, frame)
            # Seek at most once per target: index times are decode times, so a seek can land before the
            # keyframe the index promised, and seeking again for the same target would loop forever.
            if i < len(tlist) and i not in sought and self._worth_seeking(keyframes, t, tlist[i]):
                sought.add(i)
                frames = self._frames(seek_to=tlist[i], need=need)
                prev = None
        # Targets after the last decoded frame: it is still on screen, unless the data ends early.
        tolerance = max(0.5, 3 * self.dt)
        while i < len(tlist) and prev is not None and tlist[i] <= prev[0] + tolerance:
            if rgb_cache is None or rgb_cache[0] != prev[0]:
                rgb_cache = (prev[0], self._rgb(prev[1]))
            images.append(rgb_cache[1])
            times.append(prev[0])
            i += 1
        if i < len(tlist) and images:
            raise MediaError(
                self.path,
                f"decodable video stops at {prev[0] if prev else 0.0:.2f} s although the header says "
                f"{duration:.2f} s ({self.n_errors} decoding errors)",
                "the file is truncated or corrupt; re-export or re-download it",
            )
        return self._finish(images, times)

    def _worth_seeking(self, keyframes: np.ndarray, now: float, target: float) -> bool:
        """Seek when a keyframe lies strictly between the current position and the target."""
        if target - now <= 2 * self.dt:
            return False
        if keyframes.size:
            k = np.searchsorted(keyframes, target + 1e-6, side="right") - 1  # last keyframe <= target
            return k >= 0 and keyframes[k] > now + self.dt
        return target - now > _SEEK_GAP_NO_INDEX_S

