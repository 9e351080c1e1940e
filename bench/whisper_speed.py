"""Whisper transcription speed on jfk.flac (11 s) with the registry models, after one warm-up run.

    python bench/whisper_speed.py [--models tiny.en base] [--runs 3]

Prints, per model: load time (cached conversion), best and median transcription wall time, real-time factor,
the encoder time for one 30-s window, and the transcript. Needs ../shared (the jfk fixture).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from math import gcd

import numpy as np
import torch


def _jfk() -> np.ndarray:
    import soundfile as sf
    from scipy.signal import resample_poly

    from affectllm.paths import shared_dir

    root = shared_dir()
    if root is None:
        sys.exit("../shared is not beside the checkout (set AFFECTLLM_SHARED)")
    audio, sr = sf.read(str(root / "media" / "speech" / "jfk.flac"), dtype="float32", always_2d=True)
    g = gcd(sr, 16000)
    return resample_poly(audio.mean(1), 16000 // g, sr // g).astype(np.float32)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=["tiny.en", "base"])
    ap.add_argument("--runs", type=int, default=3)
    args = ap.parse_args()
    from affectllm.offline.whisper_convert import ensure_whisper
    from affectllm.perception.asr import Transcriber

    audio = _jfk()
    print(f"torch threads: {torch.get_num_threads()}, clip: {len(audio) / 16000:.1f} s")
    for name in args.models:
        t = time.perf_counter()
        ensure_whisper(name)
        prep = time.perf_counter() - t
        t = time.perf_counter()
        tr = Transcriber(name)
        load = time.perf_counter() - t
        tr.transcribe(audio)  # warm-up
        times = []
        for _ in range(args.runs):
            tr._memo = None  # measure the full cost, including the encoder
            t = time.perf_counter()
            out = tr.transcribe(audio)
            times.append(time.perf_counter() - t)
        mel = tr._first_window(audio)
        with torch.no_grad():
            t = time.perf_counter()
            tr.model.encoder(mel[None])
            enc = time.perf_counter() - t
        best, med = min(times), statistics.median(times)
        print(f"{name:8s} ensure {prep:.2f} s | load {load:.2f} s | transcribe best {best:.2f} s, median {med:.2f} s "
              f"(RTF {best / (len(audio) / 16000):.3f}) | encoder window {enc:.2f} s | {out.language} | {out.text}")


if __name__ == "__main__":
    main()
