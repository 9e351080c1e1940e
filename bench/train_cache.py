"""Benchmark: what the feature cache buys during training, and the CPU recipe's throughput.

    python bench/train_cache.py [--recipe train/configs/starter-cpu.yaml] [--epochs 3] [--tiny]

Builds a small labelled instruction set from ../shared/media (RAVDESS speech clips with their acted emotion,
the RAVDESS audio-visual clip) in a temporary folder, trains the recipe for a few epochs with a cold feature
cache, and prints the wall time of each epoch, the epoch-2 / epoch-1 ratio (target: epoch 2 at least 10x
faster, because epoch 1 decodes media, runs the cue experts and the frozen towers) and samples/s once the
cache is warm. Uses the embedded default (starter recipe) when its offline weights are prepared
(``affectllm.offline.gemma.ensure_gemma``), else falls back to the tiny random model (``--tiny`` forces it).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

RAVDESS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
           "07": "disgusted", "08": "surprised"}
PROMPT = "Which emotions does the person in this recording show, and why?"


def build_rows(shared: Path, out: Path, n: int) -> Path:
    from affectllm.report import format_report

    rows = []
    clips = sorted((shared / "media" / "ravdess").glob("*_audio.wav"))[: n - 1]
    for clip in clips:
        label = RAVDESS[clip.name.split("-")[2]]
        rows.append({"id": f"ravdess/{clip.stem}", "audio": str(clip), "task": "ov_labels", "source": "ravdess",
                     "labels": [label], "conversations": [
                         {"role": "user", "content": f"<audio>\n{PROMPT}"},
                         {"role": "assistant", "content": format_report([label], "The voice is acted " + label + ".")}]})
    video = shared / "media" / "ravdess" / "01-01-01-01-01-01-01.mp4"
    rows.append({"id": "ravdess/av-neutral", "video": str(video), "audio": str(video), "task": "ov_labels",
                 "source": "ravdess", "labels": ["neutral"], "conversations": [
                     {"role": "user", "content": f"<video>\n<audio>\n{PROMPT}"},
                     {"role": "assistant", "content": format_report(["neutral"], "A calm face and an even voice.")}]})
    path = out / "bench.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def default_available() -> bool:
    try:
        from affectllm.offline.gemma import ensure_gemma

        ensure_gemma()
        return True
    except Exception as e:  # noqa: BLE001
        print(f"embedded default unavailable ({type(e).__name__}: {e}); using the tiny model", file=sys.stderr)
        return False


def main(argv: list[str] | None = None) -> int:
    from affectllm.paths import shared_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="train/configs/starter-cpu.yaml")
    ap.add_argument("--epochs", type=int, default=3)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--tiny", action="store_true", help="use the tiny random model (tiny-test recipe)")
    args = ap.parse_args(argv)
    shared = shared_dir()
    if shared is None:
        print("../shared not found (set AFFECTLLM_SHARED)", file=sys.stderr)
        return 1
    from affectllm.training import load_config, train

    recipe = args.recipe
    if args.tiny or not default_available():
        recipe = "train/configs/tiny-test.yaml"
    tmp = Path(tempfile.mkdtemp(prefix="affectllm-bench-"))
    data = build_rows(shared, tmp, args.samples)
    steps = args.epochs * (args.samples // args.batch_size)
    cfg = load_config(recipe, [f"data.train={data}", "data.eval=null", f"output_dir={tmp / 'run'}",
                               f"cache.dir={tmp / 'cache'}", f"train.batch_size={args.batch_size}",
                               "train.grad_accum=1", f"train.max_steps={steps}", "train.save_every=0",
                               "train.eval_every=0", "train.eval_generate=false", "optim.warmup_steps=0"])
    t0 = time.time()
    summary = train(cfg, echo=lambda s: None)
    total = time.time() - t0
    rows = [json.loads(x) for x in (tmp / "run" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]
    ends = {}
    for r in rows:
        ends[r["epoch"]] = r["elapsed_s"]
    epoch_s = [ends[0]] + [ends[e] - ends[e - 1] for e in sorted(ends) if e > 0]
    warm = [r for r in rows if r["epoch"] > 0]
    sps = sum(args.batch_size for _ in warm) / sum(epoch_s[1:]) if warm else float("nan")
    print(f"recipe: {recipe} ({cfg.model.source} model), {args.samples} samples, batch {args.batch_size}, "
          f"{args.epochs} epochs, run wall {total:.1f} s (model load included)")
    for e, s in enumerate(epoch_s):
        print(f"  epoch {e + 1}: {s:7.2f} s  cache hit rate {rows[[r['epoch'] for r in rows].index(e)]['cache_hit_rate']:.0%}")
    print(f"epoch-1 / epoch-2 wall time: {epoch_s[0] / epoch_s[1]:.1f}x faster with the cache "
          f"(target >= 10x)")
    print(f"samples/s with a warm cache: {sps:.2f}")
    print(f"cache: {summary['cache']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
