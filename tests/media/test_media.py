"""Media I/O on real fixtures (../shared/media) and on a generated corpus of formats and bad inputs."""

from __future__ import annotations

import os
import shutil
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from affectllm.media import (
    MediaError,
    iter_audio_chunks,
    load_audio,
    load_frames,
    load_image,
    plan_segments,
    probe,
)
from affectllm.perception.prosody import yin

RAVDESS_MP4 = "media/ravdess/01-01-01-01-01-01-01.mp4"
FRAME_S = 1001 / 30000  # one frame at 29.97 fps


def write_media(path: Path, *, fmt: str | None = None, vcodec: str | None = None, acodec: str | None = None,
                seconds: float = 1.0, size: tuple[int, int] = (64, 48), fps: int = 10, sr: int = 48000,
                tone: float = 440.0, rotation: int | None = None, frame_times: list[float] | None = None) -> Path:
    """Encode a synthetic clip with PyAV: frames whose green level encodes their index, a sine tone."""
    import av

    with av.open(str(path), "w", format=fmt) as c:
        vs = astream = None
        if vcodec:
            vs = c.add_stream(vcodec, rate=fps)
            vs.width, vs.height = size
            vs.pix_fmt = "yuvj420p" if vcodec == "mjpeg" else "yuv420p"
            if rotation is not None:
                vs.set_display_rotation(rotation)
            if frame_times is not None:
                vs.time_base = Fraction(1, 1000)
        if acodec:
            astream = c.add_stream(acodec, rate=sr)
            astream.layout = "mono"
        if vs is not None:
            times = frame_times if frame_times is not None else [i / fps for i in range(int(round(seconds * fps)))]
            for i, t in enumerate(times):
                img = np.zeros((size[1], size[0], 3), np.uint8)
                img[:, : size[0] // 2, 0] = 200  # red left half: shows orientation
                img[..., 1] = min(255, 20 * i)  # green level = 20 × frame index
                frame = av.VideoFrame.from_ndarray(img, format="rgb24")
                if frame_times is not None:
                    frame.pts, frame.time_base = int(round(t * 1000)), Fraction(1, 1000)
                for packet in vs.encode(frame):
                    c.mux(packet)
            for packet in vs.encode():
                c.mux(packet)
        if astream is not None:
            n = int(seconds * sr)
            x = (0.3 * np.sin(2 * np.pi * tone * np.arange(n) / sr)).astype(np.float32)
            for i in range(0, n, 1024):
                frame = av.AudioFrame.from_ndarray(x[None, i:i + 1024].copy(), format="flt", layout="mono")
                frame.sample_rate, frame.pts = sr, i
                for packet in astream.encode(frame):
                    c.mux(packet)
            for packet in astream.encode():
                c.mux(packet)
    return path


def median_f0(audio: np.ndarray) -> float:
    f0, _ = yin(audio, 16000)
    return float(np.nanmedian(f0))


# ---------------------------------------------------------------- real fixtures
def test_probe_ravdess_mp4(shared: Path) -> None:
    info = probe(shared / RAVDESS_MP4)
    assert info.kind == "video" and info.has_video and info.has_audio
    assert info.n_frames == 99
    assert info.fps == pytest.approx(30000 / 1001, rel=1e-6)
    assert info.duration_s == pytest.approx(99 * FRAME_S, abs=1e-3)  # 3.3033 s
    assert (info.width, info.height, info.rotation) == (1280, 720, 0)
    assert (info.sample_rate, info.channels) == (48000, 2)


def test_ravdess_all_frames_and_uniform_sampling(shared: Path) -> None:
    path = shared / RAVDESS_MP4
    every = load_frames(path, num_frames=None, max_side=320)
    # 99 coded frames; the mp4 edit list hides the first, so 98 are presented, one every 1001/30000 s.
    assert every.images.shape == (98, 180, 320, 3)
    np.testing.assert_allclose(np.diff(every.timestamps), FRAME_S, atol=1e-6)
    assert every.timestamps[0] == 0.0 and every.timestamps[-1] + FRAME_S == pytest.approx(3.27, abs=0.01)

    eight = load_frames(path, num_frames=8, max_side=320)
    assert eight.images.shape == (8, 180, 320, 3) and eight.images.dtype == np.uint8
    targets = (np.arange(8) + 0.5) * (99 * FRAME_S / 8)
    index = np.round(eight.timestamps / FRAME_S).astype(int)
    # the frame on screen at each target: shown at or before it, the next one after it
    assert np.all(eight.timestamps <= targets + 1e-9) and np.all(targets < eight.timestamps + FRAME_S)
    # skipping B-frames far from the targets must not change the picked pictures
    np.testing.assert_array_equal(eight.images, every.images[index])


def test_ravdess_sampling_rate_and_range(shared: Path) -> None:
    path = shared / RAVDESS_MP4  # its speed is measured in bench/caption_latency.py, not asserted here
    full = load_frames(path, 8)
    assert full.images.shape == (8, 720, 1280, 3)

    rate = load_frames(path, fps=2.0, max_side=224)
    assert rate.images.shape == (7, 126, 224, 3)  # 0, 0.5, ..., 3.0 s
    np.testing.assert_allclose(rate.timestamps, np.floor(np.arange(7) * 0.5 / FRAME_S + 1e-9) * FRAME_S, atol=1e-6)
    part = load_frames(path, num_frames=4, start=1.0, end=2.0, max_side=64)
    assert len(part) == 4 and part.timestamps[0] >= 1.0 - FRAME_S and part.timestamps[-1] < 2.0


def test_ravdess_audio_track(shared: Path) -> None:
    audio = load_audio(shared / RAVDESS_MP4)
    assert audio.dtype == np.float32 and audio.ndim == 1
    assert audio.size / 16000 == pytest.approx(3.30, abs=0.01)
    assert np.sqrt(np.mean(audio**2)) > 1e-3  # real speech, not silence
    middle = load_audio(shared / RAVDESS_MP4, start=1.0, end=2.0)
    assert middle.size == 16000
    np.testing.assert_allclose(middle[200:-200], audio[16200:31800], atol=2e-3)


def test_wavs_and_flac_decode_at_16k(shared: Path) -> None:
    jfk = load_audio(shared / "media/speech/jfk.flac")
    assert jfk.shape == (176000,) and jfk.dtype == np.float32  # 11.0 s
    wavs = sorted((shared / "media/emodb").glob("*.wav")) + sorted((shared / "media/ravdess").glob("*.wav"))
    assert len(wavs) >= 20
    for wav in wavs:
        info = sf.info(str(wav))
        audio = load_audio(wav)
        assert audio.dtype == np.float32 and audio.ndim == 1
        assert abs(audio.size - info.frames * 16000 / info.samplerate) <= 1, wav.name
        assert probe(wav).kind == "audio"


def test_streaming_equals_whole_file(shared: Path) -> None:
    path = shared / "media/speech/jfk.flac"  # 44.1 kHz stereo: exercises downmix + resampling
    whole = load_audio(path)
    chunks = list(iter_audio_chunks(path, chunk_s=3.0))
    assert [c.size for c in chunks] == [48000, 48000, 48000, 32000]
    np.testing.assert_array_equal(np.concatenate(chunks), whole)
    ranged = load_audio(path, start=3.0, end=6.0)
    assert ranged.size == 48000
    np.testing.assert_allclose(ranged[100:-100], whole[48100:95900], atol=1e-4)


def test_image_as_one_frame(shared: Path) -> None:
    path = shared / "media/faces/grace_hopper.jpg"
    info = probe(path)
    assert (info.kind, info.width, info.height) == ("image", 512, 600)
    frames = load_frames(path)
    assert frames.images.shape == (1, 600, 512, 3) and frames.timestamps.tolist() == [0.0]
    np.testing.assert_array_equal(frames.images[0], load_image(path))
    assert load_image(path, max_side=100).shape == (100, 85, 3)


def test_wrong_extension_is_detected_from_content(shared: Path, tmp_path: Path) -> None:
    video_as_wav = tmp_path / "clip.wav"
    shutil.copy(shared / RAVDESS_MP4, video_as_wav)
    assert probe(video_as_wav).kind == "video"
    assert len(load_frames(video_as_wav, 2, max_side=64)) == 2
    image_as_mp4 = tmp_path / "photo.mp4"
    shutil.copy(shared / "media/faces/grace_hopper.jpg", image_as_mp4)
    assert probe(image_as_mp4).kind == "image" and len(load_frames(image_as_mp4)) == 1


def test_short_file_is_one_segment_and_vad_finds_speech(shared: Path) -> None:
    assert [(s.start, s.end, s.source) for s in plan_segments(shared / RAVDESS_MP4)] == [(0.0, 3.3033, "whole")]
    segments = plan_segments(shared / "media/speech/jfk.flac", segment_seconds=4.0)
    assert len(segments) >= 3 and all(s.source == "speech" and 0 < s.duration <= 4.0 for s in segments)
    assert segments[0].start == pytest.approx(0.25, abs=0.2) and segments[-1].end == pytest.approx(11.0, abs=0.2)
    assert segments[-1].end <= 11.0
    fixed = plan_segments(shared / "media/speech/jfk.flac", segment_seconds=4.0, use_vad=False)
    assert [(round(s.start, 3), round(s.end, 3)) for s in fixed] == [(0.0, 3.667), (3.667, 7.333), (7.333, 11.0)]


def test_batched_vad_matches_per_window_model(shared: Path) -> None:
    from affectllm.media.segments import speech_probabilities

    fast, n = speech_probabilities(shared / "media/speech/jfk.flac")
    slow, n_slow = speech_probabilities(shared / "media/speech/jfk.flac", fast=False)
    assert n == n_slow == 176000 and fast.shape == slow.shape == (344,)
    np.testing.assert_allclose(fast, slow, atol=1e-4)
    assert fast.max() > 0.9 and fast.min() < 0.1


# ---------------------------------------------------------------- generated formats
FORMATS = {
    "tone.mp3": {"acodec": "libmp3lame"},
    "tone.ogg": {"acodec": "libopus"},
    "tone.m4a": {"acodec": "aac"},
    "clip.webm": {"vcodec": "libvpx-vp9", "acodec": "libopus"},
    "clip.mkv": {"vcodec": "libx264", "acodec": "flac"},
    "clip.avi": {"vcodec": "mpeg4", "acodec": "libmp3lame"},
    "clip.mov": {"vcodec": "libx264", "acodec": "aac"},
}


@pytest.mark.parametrize("name", sorted(FORMATS))
def test_generated_formats_decode(name: str, tmp_path: Path) -> None:
    path = write_media(tmp_path / name, **FORMATS[name])
    info = probe(path)
    assert info.kind == ("video" if "vcodec" in FORMATS[name] else "audio")
    assert info.duration_s == pytest.approx(1.0, abs=0.12) and info.sample_rate == 48000
    audio = load_audio(path)
    assert audio.size / 16000 == pytest.approx(1.0, abs=0.05)
    assert median_f0(audio) == pytest.approx(440.0, rel=0.01)  # the tone survived decode + resampling
    if info.kind == "video":
        frames = load_frames(path, 4)
        assert frames.images.shape == (4, 48, 64, 3)
        assert np.all(np.diff(frames.timestamps) > 0)
        assert frames.images[:, :, :16, 0].mean() > 150 > frames.images[:, :, 48:, 0].mean()  # red on the left
    else:
        with pytest.raises(MediaError, match="no video stream"):
            load_frames(path)


def test_resampling_is_accurate(tmp_path: Path) -> None:
    sr = 44100
    t = np.arange(sr * 2) / sr
    stereo = np.stack([np.sin(2 * np.pi * 1000 * t), np.sin(2 * np.pi * 1000 * t)], axis=1) * 0.5
    sf.write(tmp_path / "tone.wav", stereo, sr)
    audio = load_audio(tmp_path / "tone.wav")
    expected = 0.5 * np.sin(2 * np.pi * 1000 * np.arange(audio.size) / 16000)
    assert audio.size == 32000
    np.testing.assert_allclose(audio[64:-64], expected[64:-64], atol=2e-3)


@pytest.mark.parametrize(("rotation", "red_side"), [(90, "bottom"), (-90, "top"), (180, "right")])
def test_display_rotation_is_applied(rotation: int, red_side: str, tmp_path: Path) -> None:
    path = write_media(tmp_path / "phone.mp4", vcodec="libx264", size=(64, 32), rotation=rotation)
    assert probe(path).rotation == rotation
    image = load_frames(path, 1).images[0]
    assert image.shape == ((64, 32, 3) if rotation != 180 else (32, 64, 3))
    red = image[..., 0] > 100
    h, w = red.shape
    first, second = (red[: h // 2], red[h // 2:]) if red_side in ("top", "bottom") else (red[:, : w // 2], red[:, w // 2:])
    assert (second.mean() > 0.9 and first.mean() < 0.1) if red_side in ("bottom", "right") else \
        (first.mean() > 0.9 and second.mean() < 0.1)


def test_variable_frame_rate_uses_frame_timestamps(tmp_path: Path) -> None:
    times = [0.0, 0.12, 0.16, 0.52, 1.2, 1.24, 2.0, 2.4]  # multiples of the 1/25-s encoder clock
    path = write_media(tmp_path / "vfr.mkv", vcodec="libx264", frame_times=times, fps=25)
    frames = load_frames(path, fps=2.0)  # targets 0, 0.5, 1.0, 1.5, 2.0, ...
    np.testing.assert_allclose(frames.timestamps[:5], [0.0, 0.16, 0.52, 1.24, 2.0], atol=1e-3)
    levels = np.round(frames.images[:5, ..., 1].mean(axis=(1, 2)) / 20).astype(int)
    assert levels.tolist() == [0, 2, 3, 5, 6]  # each frame's own index: the picture matches its timestamp


def test_8k_video_and_jpeg_are_downscaled_early(tmp_path: Path) -> None:
    import tracemalloc

    import av
    from PIL import Image

    video = tmp_path / "8k.mkv"
    with av.open(str(video), "w") as c:  # one 7680×4320 frame, built in YUV to keep the test fast
        stream = c.add_stream("mjpeg", rate=10)
        stream.width, stream.height, stream.pix_fmt = 7680, 4320, "yuvj420p"
        yuv = np.full((4320 * 3 // 2, 7680), 128, np.uint8)
        yuv[:4320, :3840] = 40  # dark left half
        for packet in [*stream.encode(av.VideoFrame.from_ndarray(yuv, format="yuvj420p")), *stream.encode()]:
            c.mux(packet)
    picture = np.zeros((4320, 7680, 3), np.uint8)
    picture[:, 3840:] = 128
    Image.fromarray(picture).save(tmp_path / "8k.jpg", quality=80)
    del picture
    for path in (video, tmp_path / "8k.jpg"):
        assert (probe(path).width, probe(path).height) == (7680, 4320)
        tracemalloc.start()
        frames = load_frames(path, 1, max_side=1024)
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
        assert frames.images.shape == (1, 576, 1024, 3)
        assert frames.images[0, :, :500].mean() < frames.images[0, :, 524:].mean() - 50
        assert peak < 20e6, f"{path.name}: {peak / 1e6:.0f} MB of arrays for one downscaled 8K frame"


def test_duration_from_packets_when_header_has_none(tmp_path: Path) -> None:
    from affectllm.media.video import _scan_duration

    path = write_media(tmp_path / "clip.webm", vcodec="libvpx-vp9", seconds=1.0)
    assert _scan_duration(path) == pytest.approx(1.0, abs=0.01)


def test_png_is_downscaled_with_max_side(tmp_path: Path) -> None:
    from PIL import Image

    Image.fromarray(np.full((1000, 2000, 4), 200, np.uint8), "RGBA").save(tmp_path / "wide.png")
    frames = load_frames(tmp_path / "wide.png", max_side=500)
    assert frames.images.shape == (1, 250, 500, 3)
    assert int(frames.images.mean()) == 212  # 200 at alpha 200/255, composited on white


# ---------------------------------------------------------------- bad inputs
def _bad_corpus(shared: Path, tmp: Path) -> dict[str, Path]:
    corpus: dict[str, Path] = {}
    (tmp / "empty.mp4").write_bytes(b"")
    corpus["empty"] = tmp / "empty.mp4"
    data = (shared / RAVDESS_MP4).read_bytes()
    (tmp / "truncated.mp4").write_bytes(data[: int(len(data) * 0.3)])
    corpus["truncated"] = tmp / "truncated.mp4"
    (tmp / "random.mp4").write_bytes(np.random.default_rng(0).integers(0, 256, 200_000, dtype=np.uint8).tobytes())
    corpus["random"] = tmp / "random.mp4"
    (tmp / "folder.mp4").mkdir()
    corpus["directory"] = tmp / "folder.mp4"
    corpus["missing"] = tmp / "does_not_exist.mp4"
    (tmp / "text.mp4").write_text("this is not a video\n" * 100)
    corpus["text"] = tmp / "text.mp4"
    return corpus


@pytest.mark.parametrize("function", ["probe", "load_frames", "load_audio", "plan_segments"])
def test_bad_inputs_raise_media_error_naming_the_file(function: str, shared: Path, tmp_path: Path) -> None:
    call = {"probe": probe, "load_frames": lambda p: load_frames(p, 8), "load_audio": load_audio,
            "plan_segments": plan_segments}[function]
    for kind, path in _bad_corpus(shared, tmp_path).items():
        if function == "plan_segments" and kind == "truncated":
            continue  # the header is intact: planning needs only the header (decoding reports the truncation)
        if function == "probe" and kind == "truncated":
            assert probe(path).duration_s == pytest.approx(3.3033, abs=1e-3)
            continue
        with pytest.raises(MediaError) as err:
            call(path)
        assert path.name in str(err.value) and err.value.path == str(path), (kind, str(err.value))
        assert ";" in str(err.value), f"{kind}: no fix in {err.value}"


def test_unreadable_file(shared: Path, tmp_path: Path) -> None:
    path = tmp_path / "locked.mp4"
    shutil.copy(shared / RAVDESS_MP4, path)
    path.chmod(0)
    try:
        if os.access(path, os.R_OK):
            pytest.skip("running as root: permissions do not stop reads")
        with pytest.raises(MediaError, match="permission denied"):
            probe(path)
    finally:
        path.chmod(0o644)


def test_video_without_audio_and_tiny_clip(tmp_path: Path) -> None:
    silent = write_media(tmp_path / "silent.mp4", vcodec="libx264")
    assert probe(silent).has_audio is False
    assert len(load_frames(silent, 4)) == 4
    with pytest.raises(MediaError, match="no audio stream") as err:
        load_audio(silent)
    assert "silent.mp4" in str(err.value)
    assert plan_segments(silent, segment_seconds=0.4)[0].source == "fixed"  # no audio: fixed windows

    tiny = write_media(tmp_path / "tiny.mp4", vcodec="libx264", acodec="aac", seconds=0.2)
    assert probe(tiny).duration_s == pytest.approx(0.2, abs=0.05)
    frames = load_frames(tiny, 8)
    assert len(frames) == 8 and set(np.round(frames.timestamps, 3)) == {0.0, 0.1}  # 2 frames, repeated
    assert load_audio(tiny).size == pytest.approx(3200, abs=400)


def test_truncated_mp4_reports_where_data_ends(shared: Path, tmp_path: Path) -> None:
    data = (shared / RAVDESS_MP4).read_bytes()
    path = tmp_path / "cut.mp4"
    path.write_bytes(data[: int(len(data) * 0.3)])
    with pytest.raises(MediaError, match=r"stops at .* although the header says 3\.30 s"):
        load_frames(path, 8)
    with pytest.raises(MediaError, match="truncated"):
        load_audio(path)


# ---------------------------------------------------------------- long inputs, bounded memory
def _write_long(path: Path, minutes: float, speech: np.ndarray) -> None:
    """Real speech (jfk, 11 s) then 5 s of silence, repeated; written block by block."""
    gap = np.zeros(5 * 16000, np.float32)
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        written = 0
        while written < minutes * 60 * 16000:
            f.write(speech)
            f.write(gap)
            written += speech.size + gap.size


def _peak_rss_growth(fn):  # type: ignore[no-untyped-def]
    """(fn(), peak RSS above the starting RSS in bytes), sampled every 5 ms from a thread."""
    import threading

    psutil = pytest.importorskip("psutil")
    process = psutil.Process()
    base = peak = process.memory_info().rss
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, process.memory_info().rss)
            stop.wait(0.005)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    try:
        result = fn()
    finally:
        stop.set()
        thread.join()
    return result, max(peak, process.memory_info().rss) - base


@pytest.mark.slow
def test_long_audio_is_planned_in_bounded_memory(shared: Path, tmp_path: Path) -> None:
    speech = load_audio(shared / "media/speech/jfk.flac")
    plan_segments(shared / "media/speech/jfk.flac", segment_seconds=5.0)  # warm-up: loads Silero VAD
    growth, plans = {}, {}
    for minutes in (3, 30):
        path = tmp_path / f"long{minutes}.wav"
        _write_long(path, minutes, speech)
        plans[minutes], growth[minutes] = _peak_rss_growth(lambda p=path: plan_segments(p, segment_seconds=30.0))
        n, _ = _peak_rss_growth(lambda p=path: sum(c.size for c in iter_audio_chunks(p, chunk_s=10.0)))
        assert n == sf.info(str(path)).frames
    # The 30-min file holds 115 MB of float32 samples; planning it must cost about what 3 minutes cost.
    assert growth[30] < growth[3] + 16e6 and growth[30] < 40e6, growth
    for minutes, segments in plans.items():
        cycles = minutes * 60 / 16.0
        assert all(s.source == "speech" and s.duration <= 30.0 for s in segments)
        assert len(segments) == pytest.approx(cycles / 2, rel=0.15)  # two 11-s speech runs fit per 30 s
        print(f"{minutes} min: {len(segments)} segments, peak RSS growth {growth[minutes] / 1e6:.1f} MB")


@pytest.mark.timeout(300)
def test_every_frame_count_terminates_on_the_ravdess_clip(shared):
    """Regression: index times are decode times, so a seek could land before the promised keyframe and the
    sampler used to seek again for the same target forever (num_frames=4 hung)."""
    from affectllm.media import load_frames

    clip = shared / "media" / "ravdess" / "01-01-01-01-01-01-01.mp4"
    for n in range(1, 17):
        frames = load_frames(clip, num_frames=n)
        assert frames.images.shape[0] == n
        assert np.all(np.diff(frames.timestamps) >= 0)


def test_surround_7_1_audio_decodes_without_crashing(tmp_path: Path) -> None:
    """Issue 12: PyAV miscounts the planes of 7.1 AAC and its planar to_ndarray segfaulted the process."""
    import subprocess
    import sys

    from affectllm.testing_inputs import write_surround_clip

    clip = write_surround_clip(tmp_path / "surround.mp4")
    code = ("import sys, numpy as np; from affectllm.media import load_audio; "
            "a = load_audio(sys.argv[1]); np.save(sys.argv[2], a)")
    done = subprocess.run([sys.executable, "-c", code, str(clip), str(tmp_path / "a.npy")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"decoder died ({done.returncode}): {done.stderr[-500:]}"
    audio = np.load(tmp_path / "a.npy")
    assert audio.size / 16000 == pytest.approx(3.0, abs=0.05)
    assert median_f0(audio) == pytest.approx(220.0, rel=0.01)
    assert np.sqrt(np.mean(audio[1600:-1600] ** 2)) == pytest.approx(0.2 / np.sqrt(2), rel=0.05)  # channel mean
    assert probe(clip).channels == 8
