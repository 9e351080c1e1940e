"""Wall time per stage and peak RSS for captioning one 10-s clip with the embedded default, after warm-up.

    .venv/bin/python bench/caption_latency.py [--threads 2] [--dtype auto] [--quantization none|dynamic-int8]
        [--max-new-tokens 256]

Four child processes run in turn on the same clip (each its own peak RSS) and are printed side by side:
``baseline`` (float32, ``model.generate`` greedy: the path before the engine); ``engine-plain`` (the engine's
decoder token by token, ``draft_tokens=0``); ``engine`` (what a user gets: prompt-lookup drafts, ``--dtype``,
``--quantization``); ``engine-evidence`` (``explanation="evidence"``: the model writes labels, valence and
arousal, the explanation is composed from the evidence). ``--mode`` runs one of them alone. Per-token speed
of the LLM stage is printed for each (prefill included).

The clip is made in a temporary folder from the shared fixtures: the RAVDESS video's frames looped to 10 s
(1280x720, 29.97 fps) with the first 10 s of jfk.flac as its audio track. Stages are timed inside the real
captioning path (the functions ``perceive`` calls are wrapped with timers): decode (probe, frames, audio),
faces (detection + main-face track + crops), expression (mini-Xception), whisper (ASR), prosody, and
projector + LLM (report generation). Targets (issue 3, 2 CPU cores): <= 5 s total, <= 3 GB peak RSS.
Other processes on a shared machine inflate the times: the load average is printed with the figures.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import resource
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

import numpy as np

MODES = ("baseline", "engine-plain", "engine", "engine-evidence")
STAGES = ("decode", "faces", "expression", "whisper", "prosody", "projector+llm")


def make_clip(shared: Path, out: Path, seconds: float = 10.0) -> Path:
    """RAVDESS frames looped to ``seconds`` + jfk.flac audio, as an mpeg4/aac mp4."""
    import av

    from affectllm.media import load_audio

    frames = []
    with av.open(str(shared / "media/ravdess/01-01-01-01-01-01-01.mp4")) as c:
        stream = c.streams.video[0]
        fps = stream.average_rate
        for f in c.decode(stream):
            frames.append(f.to_ndarray(format="rgb24"))
    audio = load_audio(shared / "media/speech/jfk.flac", sr=16000)[: int(seconds * 16000)]
    n = int(round(seconds * float(fps)))
    with av.open(str(out), "w") as c:
        vs = c.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = frames[0].shape[1], frames[0].shape[0], "yuv420p"
        vs.bit_rate = 2_000_000
        a_s = c.add_stream("aac", rate=16000)
        a_s.layout = "mono"
        for i in range(n):
            k = i % (2 * len(frames) - 2)  # ping-pong loop: no jump cut
            img = frames[k if k < len(frames) else 2 * len(frames) - 2 - k]
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in vs.encode():
            c.mux(p)
        for s in range(0, len(audio), 1024):
            fr = av.AudioFrame.from_ndarray(audio[s:s + 1024][None].astype(np.float32), format="flt", layout="mono")
            fr.sample_rate, fr.pts = 16000, s
            for p in a_s.encode(fr):
                c.mux(p)
        for p in a_s.encode():
            c.mux(p)
    return out


class StageTimer:
    """Wraps functions with timers that add into named stages (re-entrant calls are counted once)."""

    def __init__(self) -> None:
        self.totals: dict[str, float] = defaultdict(float)
        self._depth: dict[str, int] = defaultdict(int)

    def wrap(self, owner: object, name: str, stage: str) -> None:
        fn = getattr(owner, name)

        @functools.wraps(fn)
        def timed(*a, **k):
            self._depth[stage] += 1
            t0 = time.perf_counter()
            try:
                return fn(*a, **k)
            finally:
                self._depth[stage] -= 1
                if self._depth[stage] == 0:
                    self.totals[stage] += time.perf_counter() - t0

        setattr(owner, name, timed)

    def reset(self) -> None:
        self.totals.clear()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="auto", help="LLM dtype: auto (what a user gets: bfloat16 on a CPU with native bf16, else float32), float32, bfloat16")
    ap.add_argument("--quantization", default="none", help="engine only: none or dynamic-int8 (CPU)")
    ap.add_argument("--max-new-tokens", type=int, default=256)
    ap.add_argument("--mode", choices=("both", *MODES), default="both")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if args.mode == "both":
        return compare(args)

    import torch

    torch.set_num_threads(args.threads)
    import affectllm.media as media
    import affectllm.perception.faces as faces
    import affectllm.perception.prosody as prosody
    from affectllm.captioning import Captioner, CaptionInput
    from affectllm.engine import Engine
    from affectllm.paths import shared_dir

    shared = shared_dir()
    if shared is None:
        sys.exit("../shared (fixtures) not found; set AFFECTLLM_SHARED")
    tmp = Path(tempfile.mkdtemp(prefix="affectllm-latency-"))
    clip = make_clip(shared, tmp / "clip10s.mp4")
    t0 = time.perf_counter()
    import affectllm

    quant = None if args.mode == "baseline" or args.quantization == "none" else args.quantization
    model, processor = affectllm.load(dtype="float32" if args.mode == "baseline" else args.dtype, quantization=quant)
    load_s = time.perf_counter() - t0
    engine = Engine.for_model(model, processor)
    experts = engine.experts
    timer = StageTimer()
    for name in ("probe", "load_frames", "load_audio"):
        timer.wrap(media, name, "decode")
    for name in ("track_main_face", "crop_faces"):
        timer.wrap(faces, name, "faces")
    timer.wrap(experts.expression, "predict_track", "expression")
    timer.wrap(experts.asr, "transcribe", "whisper")
    timer.wrap(prosody, "analyse_prosody", "prosody")
    tokens: list[int] = []

    def generate(m, p, perceptions, **kw):
        if args.mode == "engine-plain":
            kw["draft_tokens"] = 0
        if args.mode == "engine-evidence":
            kw["explanation"] = "evidence"
        if args.mode == "baseline":
            kw.pop("explanation", None)
        reports = (baseline_reports(engine, perceptions, **kw) if args.mode == "baseline"
                   else engine.report(perceptions, **kw))
        tokens.append(sum(len(p.tokenizer(r.raw, add_special_tokens=False)["input_ids"]) for r in reports))
        return reports

    captioner = Captioner(model, processor, experts=experts, max_new_tokens=args.max_new_tokens,
                          generate=lambda *a, **k: _timed_generate(timer, generate, *a, **k))
    item = CaptionInput("clip10s", str(clip))
    captioner.caption_one(item)  # warm-up: lazy loads, first-call allocations
    timer.reset()
    tokens.clear()
    t0 = time.perf_counter()
    rec = captioner.caption_one(item)
    total = time.perf_counter() - t0
    rss_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024**2
    figures = {
        "stages_s": {s: round(timer.totals.get(s, 0.0), 3) for s in STAGES},
        "other_s": round(total - sum(timer.totals.get(s, 0.0) for s in STAGES), 3),
        "total_s": round(total, 3), "peak_rss_gb": round(rss_gb, 3), "model_load_s": round(load_s, 1),
        "generated_tokens": tokens[-1] if tokens else None, "status": rec["status"],
        "transcript": rec["transcript"], "frames_with_face": rec["evidence"].get("face", {}).get("frames_with_face"),
        "threads": args.threads, "dtype": str(model.dtype), "mode": args.mode, "report": rec["raw"],
        "quantization": quant,
        "load_average": os.getloadavg(), "targets": {"total_s": 5.0, "peak_rss_gb": 3.0},
    }
    for s in STAGES:
        print(f"{s:>14}: {figures['stages_s'][s]:7.3f} s")
    print(f"{'other':>14}: {figures['other_s']:7.3f} s   (segment planning, glue)")
    print(f"{'total':>14}: {total:7.3f} s   (target <= 5 s)  tokens generated: {figures['generated_tokens']}")
    print(f"{'peak RSS':>14}: {rss_gb:7.3f} GB  (target <= 3 GB)")
    print(f"status {rec['status']}; transcript {rec['transcript']!r}; load average {os.getloadavg()}")
    if rec["error"]:
        print(f"error: {rec['error']}")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def baseline_reports(engine, perceptions, prompt=None, max_new_tokens=128):
    """The path before the engine: the same prompts, ``model.generate`` greedy, then the same parser."""
    import torch

    from affectllm.engine import Decoded

    batch = engine.encode([engine.renderer.single_turn(p, prompt) for p in perceptions])
    with torch.no_grad():
        out = engine.model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False)
    texts = engine.processor.batch_decode(out[:, batch["input_ids"].shape[1]:])
    return [engine.to_report(Decoded(t, [], 0, "stop"), p) for t, p in zip(texts, perceptions)]


def compare(args) -> None:
    """Run the baseline and the engine in child processes, one after the other, and print them side by side."""
    import subprocess

    figures = {}
    for mode in MODES:
        out = Path(tempfile.mkdtemp(prefix="affectllm-latency-")) / f"{mode}.json"
        cmd = [sys.executable, __file__, "--mode", mode, "--threads", str(args.threads), "--dtype", args.dtype,
               "--quantization", args.quantization, "--max-new-tokens", str(args.max_new_tokens), "--json", str(out)]
        print(f"--- {mode}: {' '.join(cmd[1:])}", flush=True)
        subprocess.run(cmd, check=True)
        figures[mode] = json.loads(out.read_text())
    cols = [figures[m] for m in MODES]
    print("\n" + f"{'':>16}" + "".join(f"{m:>17}" for m in MODES))
    for s in STAGES:
        print(f"{s:>16}" + "".join(f"{c['stages_s'][s]:17.3f}" for c in cols))
    for k in ("total_s", "peak_rss_gb", "generated_tokens"):
        print(f"{k:>16}" + "".join(f"{c[k]!s:>17}" for c in cols))
    print(f"{'LLM ms / token':>16}" + "".join(
        f"{1000 * c['stages_s']['projector+llm'] / max(c['generated_tokens'] or 1, 1):17.1f}" for c in cols))
    print(f"{'dtype':>16}" + "".join(f"{c['dtype']:>17}" for c in cols))
    print(f"(targets: total <= 5 s, peak RSS <= 3 GB; load average {os.getloadavg()})")
    if args.json:
        args.json.write_text(json.dumps(figures, indent=2))


def _timed_generate(timer: StageTimer, fn, *a, **k):
    t0 = time.perf_counter()
    try:
        return fn(*a, **k)
    finally:
        timer.totals["projector+llm"] += time.perf_counter() - t0


if __name__ == "__main__":
    main()
