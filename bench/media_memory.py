"""Media decoding speed and memory: 8 frames from the RAVDESS clip, its audio, and planning long audio.

    python bench/media_memory.py [--minutes 30]

Prints wall time per call (best of 5 after warm-up) and the peak RSS growth while a generated N-minute file is
planned into segments (Silero VAD over 16 kHz chunks), next to a 3-minute file: the two should match.
"""

from __future__ import annotations

import argparse
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import psutil
import soundfile as sf

from affectllm.media import iter_audio_chunks, load_audio, load_frames, plan_segments
from affectllm.paths import shared_dir


def best_of(fn, n: int = 5) -> float:  # type: ignore[no-untyped-def]
    fn()
    times = []
    for _ in range(n):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def peak_rss_growth(fn):  # type: ignore[no-untyped-def]
    proc = psutil.Process()
    base = peak = proc.memory_info().rss
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not stop.is_set():
            peak = max(peak, proc.memory_info().rss)
            stop.wait(0.005)

    thread = threading.Thread(target=poll, daemon=True)
    thread.start()
    t = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t
    stop.set()
    thread.join()
    return out, (peak - base) / 1e6, elapsed


def write_long(path: Path, minutes: float, speech: np.ndarray) -> None:
    gap = np.zeros(5 * 16000, np.float32)
    with sf.SoundFile(path, "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        for _ in range(int(np.ceil(minutes * 60 / 16))):
            f.write(speech)
            f.write(gap)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--minutes", type=float, default=30.0)
    args = parser.parse_args()
    shared = shared_dir()
    if shared is None:
        raise SystemExit("../shared is missing (set AFFECTLLM_SHARED)")
    clip = shared / "media/ravdess/01-01-01-01-01-01-01.mp4"
    print(f"8 frames, 720p, full size : {best_of(lambda: load_frames(clip, 8)) * 1000:7.1f} ms")
    print(f"8 frames, max_side=448    : {best_of(lambda: load_frames(clip, 8, max_side=448)) * 1000:7.1f} ms")
    print(f"audio track -> 16 kHz     : {best_of(lambda: load_audio(clip)) * 1000:7.1f} ms")
    speech = load_audio(shared / "media/speech/jfk.flac")
    plan_segments(shared / "media/speech/jfk.flac", segment_seconds=5.0)  # load Silero VAD
    with tempfile.TemporaryDirectory() as tmp:
        for minutes in (3.0, args.minutes):
            path = Path(tmp) / f"long{minutes:g}.wav"
            write_long(path, minutes, speech)
            segs, growth, elapsed = peak_rss_growth(lambda p=path: plan_segments(p, segment_seconds=30.0))
            print(f"plan_segments {minutes:5.1f} min: {len(segs):4d} segments, {elapsed:6.1f} s, "
                  f"peak RSS growth {growth:6.1f} MB")
            _, growth, elapsed = peak_rss_growth(lambda p=path: sum(1 for _ in iter_audio_chunks(p, 30.0)))
            print(f"iter_audio_chunks {minutes:5.1f} min: {elapsed:6.1f} s, peak RSS growth {growth:6.1f} MB")


if __name__ == "__main__":
    main()
