"""Audio as 16 kHz mono float32: ``load_audio`` for a whole file or range, ``iter_audio_chunks`` to stream.

Files libsndfile reads (wav, flac, ogg, aiff, ...; detected by content) go through soundfile; everything else
(mp3 in exotic containers, m4a/aac, opus, the audio track of a video) through PyAV, whose frames are first
converted by FFmpeg's resampler to packed float in the stream's own layout (never read plane by plane: PyAV
miscounts the planes of 7.1 audio), after checking that the stream's channel count and layout agree. Channels
are averaged to mono (the same average for every decoder, so a WAV and its M4A export give the same signal), then one stateful FFmpeg resampler (swresample) converts the rate block by block, so streaming output
equals whole-file output and memory stays bounded by the block size.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from affectllm.media.errors import MediaError, check_path, describe_av_error, open_container
from affectllm.media.probe import audio_stream, image_format, stream_duration, video_stream

_BLOCK = 1 << 16  # native-rate samples per soundfile read
# Containers whose header duration is exact, so a shortfall in decoded audio means truncation.
_EXACT_DURATION_FORMATS = ("mov", "mp4", "matroska", "webm")


def load_audio(
    path: str | os.PathLike[str], sr: int = 16000, start: float | None = None, end: float | None = None
) -> np.ndarray:
    """The audio of ``path`` (audio or video file) from ``start`` to ``end`` seconds as ``[S]`` float32 mono.

    Raises MediaError when the file has no audio stream (a silent video: the caller decides what that
    means), is an image, or cannot be decoded.
    """
    blocks = list(_resampled_blocks(check_path(path), sr, start, end))
    if not blocks:
        return np.zeros(0, dtype=np.float32)
    return np.concatenate(blocks).astype(np.float32, copy=False)  # [S]


def iter_audio_chunks(
    path: str | os.PathLike[str],
    chunk_s: float,
    sr: int = 16000,
    start: float | None = None,
    end: float | None = None,
) -> Iterator[np.ndarray]:
    """Stream ``[round(chunk_s * sr)]`` float32 mono chunks (the last one may be shorter).

    Chunk ``i`` starts at ``(start or 0) + i * chunk_s`` seconds. Memory is bounded by one chunk plus one
    decoding block, whatever the file length.
    """
    if chunk_s <= 0:
        raise ValueError(f"chunk_s must be positive, got {chunk_s}")
    size = max(1, int(round(chunk_s * sr)))
    pending: list[np.ndarray] = []
    filled = 0
    for block in _resampled_blocks(check_path(path), sr, start, end):
        while block.size:
            take = min(size - filled, block.size)
            pending.append(block[:take])
            filled += take
            block = block[take:]
            if filled == size:
                yield np.concatenate(pending)
                pending, filled = [], 0
    if filled:
        yield np.concatenate(pending)


def _resampled_blocks(path: Path, sr: int, start: float | None, end: float | None) -> Iterator[np.ndarray]:
    """Mono float32 blocks at ``sr`` Hz; any FFmpeg failure becomes a MediaError naming the file."""
    import av

    try:
        yield from _resample(path, sr, start, end)
    except av.error.FFmpegError as err:
        raise MediaError(path, f"audio decoding failed ({describe_av_error(err)})",
                         "the file may be corrupt; re-export it") from err


def _resample(path: Path, sr: int, start: float | None, end: float | None) -> Iterator[np.ndarray]:
    import av

    resampler = None
    native_sr = 0
    for rate, block in _native_blocks(path, start, end):
        if native_sr == 0:
            native_sr = rate
            if rate != sr:
                resampler = av.AudioResampler(format="flt", layout="mono", rate=sr)
        if resampler is None:
            yield block
            continue
        frame = av.AudioFrame.from_ndarray(block[None, :], format="flt", layout="mono")
        frame.sample_rate = native_sr
        for out in resampler.resample(frame):
            yield out.to_ndarray()[0].copy()  # [n]
    if resampler is not None:
        for out in resampler.resample(None):
            yield out.to_ndarray()[0].copy()


def _native_blocks(path: Path, start: float | None, end: float | None) -> Iterator[tuple[int, np.ndarray]]:
    """(native sample rate, mono float32 block) from soundfile when it reads the file, else from PyAV."""
    import soundfile as sf

    if start is not None and end is not None and end <= start:
        raise MediaError(path, f"empty time range {start:.2f}-{end:.2f} s", "pass end > start")
    try:
        handle = sf.SoundFile(os.fsencode(path))  # bytes: names that are not valid UTF-8 open too
    except (sf.LibsndfileError, RuntimeError, TypeError, ValueError):
        handle = None
    if handle is not None:
        with handle:
            yield from _soundfile_blocks(path, handle, start, end)
        return
    yield from _pyav_blocks(path, start, end)


def _soundfile_blocks(path: Path, handle, start: float | None, end: float | None) -> Iterator[tuple[int, np.ndarray]]:  # type: ignore[no-untyped-def]
    import soundfile as sf

    rate = int(handle.samplerate)
    first = int(round((start or 0.0) * rate))
    last = handle.frames if end is None else min(handle.frames, int(round(end * rate)))
    try:
        if first > 0:
            if first >= handle.frames:
                return
            handle.seek(first)
        remaining = last - first
        while remaining > 0:
            block = handle.read(min(_BLOCK, remaining), dtype="float32", always_2d=True)  # [n, C]
            if block.shape[0] == 0:
                break
            remaining -= block.shape[0]
            yield rate, block.mean(axis=1, dtype=np.float32) if block.shape[1] > 1 else block[:, 0].copy()
    except (sf.LibsndfileError, RuntimeError) as err:
        raise MediaError(path, f"audio decoding failed ({err})", "the file may be corrupt; re-export it") from err


def _pyav_blocks(path: Path, start: float | None, end: float | None) -> Iterator[tuple[int, np.ndarray]]:
    import av

    if image_format(path) is not None:
        raise MediaError(path, "is an image; it has no audio", "pass a video or audio file")
    with open_container(path) as container:
        stream = audio_stream(container)
        if stream is None:
            what = "video without an audio track" if video_stream(container) is not None else "file"
            raise MediaError(path, f"no audio stream ({what})", "analyse the frames only, or pass a file with sound")
        stream.thread_type = "AUTO"
        tb = float(stream.time_base) if stream.time_base else 0.0
        t0 = float((stream.start_time or 0) * tb)
        if start and tb:
            try:
                container.seek(int((start + t0) / tb), stream=stream, backward=True, any_frame=False)
            except av.error.FFmpegError:
                pass  # unseekable: decode from the start; samples before ``start`` are trimmed below
        channels = _checked_channels(path, stream)
        # Any sample format -> packed (interleaved) float at the same rate and layout: one plane whose size we
        # check before reading it. Planar output is never converted: PyAV 18 reports 9 planes for 7.1 audio and
        # its ``to_ndarray`` then copies from a plane that does not exist (a segfault, issue 12).
        to_float = av.AudioResampler(format="flt", layout=stream.layout)
        decoded_end, errors, got_any = 0.0, 0, False
        demux = container.demux(stream)
        while True:
            try:
                packet = next(demux)
                frames = packet.decode()
            except StopIteration:
                break
            except av.error.FFmpegError:
                errors += 1
                continue
            for frame in frames:
                rate = frame.sample_rate
                t = (float(frame.pts * tb) - t0) if frame.pts is not None and tb else decoded_end
                try:
                    parts = [_interleaved(f, channels) for f in to_float.resample(frame)]  # [n, C] each
                except (av.error.FFmpegError, ValueError):
                    errors += 1
                    continue
                if not parts:
                    continue
                block = np.concatenate(parts, axis=0).mean(axis=1, dtype=np.float32)  # [n]
                lo = 0 if start is None else max(0, int(round((start - t) * rate)))
                hi = block.size if end is None else min(block.size, int(round((end - t) * rate)))
                decoded_end = t + block.size / rate
                if hi > lo:
                    got_any = True
                    yield rate, np.ascontiguousarray(block[lo:hi])
                if end is not None and decoded_end >= end:
                    return
        if not got_any and (errors or start is None):
            raise MediaError(path, f"no audio could be decoded ({errors} decoding errors)",
                             "the file is corrupt or truncated; re-export it")
        _check_truncation(path, container, stream, decoded_end, end, errors)


_MAX_CHANNELS = 64  # FFmpeg's own limit; more is a corrupt header


def _checked_channels(path: Path, stream) -> int:  # type: ignore[no-untyped-def]
    """The stream's channel count after checking that its header and its channel layout agree."""
    channels = int(stream.channels or 0)
    layout_channels = int(stream.layout.nb_channels) if stream.layout is not None else 0
    if not 0 < channels <= _MAX_CHANNELS or layout_channels != channels:
        raise MediaError(path, f"unsupported audio channel layout ({channels} channels, layout "
                               f"{getattr(stream.layout, 'name', '?')!r})", "re-export the audio as mono or stereo")
    return channels


def _interleaved(frame, channels: int) -> np.ndarray:  # type: ignore[no-untyped-def]
    """A packed float frame as ``[n, C]`` float32, read from its single plane after a size check."""
    need = frame.samples * channels * 4
    if frame.format.name != "flt" or len(frame.planes) != 1 or frame.planes[0].buffer_size < need:
        raise ValueError(f"unexpected resampler output ({frame.format.name}, {len(frame.planes)} planes)")
    data = np.frombuffer(memoryview(frame.planes[0]), dtype=np.float32, count=frame.samples * channels)
    return data.reshape(frame.samples, channels).copy()  # [n, C], owning its memory (the frame is reused)


def _check_truncation(path: Path, container, stream, decoded_end: float, end: float | None, errors: int) -> None:  # type: ignore[no-untyped-def]
    """MediaError when an exact-duration container stops well before its header's duration."""
    if not any(name in container.format.name.split(",") for name in _EXACT_DURATION_FORMATS):
        return
    expected = stream_duration(container, stream)
    if end is not None:
        expected = min(expected, end)
    if expected > 0 and decoded_end < expected - max(0.5, 0.1 * expected):
        raise MediaError(
            path,
            f"decodable audio stops at {decoded_end:.2f} s although the header says {expected:.2f} s ({errors} errors)",
            "the file is truncated or corrupt; re-export or re-download it",
        )
