"""Benchmark: what the feature cache buys during training, and where a warm-cache step spends its time.

    nice -n 10 python bench/train_cache.py [--seconds 5 15] [--samples 8] [--epochs 2] [--profile-steps 3]

Builds labelled clips of realistic length (5-15 s, the MER range) in a temporary folder by concatenating
same-speaker, same-emotion RAVDESS clips from ``../shared/corpora`` (``--seconds 0 0`` keeps the single
~3.5-s clips), trains the recipe (default: the starter recipe on the embedded default) for a few epochs with a
cold feature cache, and prints the wall time of each epoch and the epoch-1 / epoch-2 ratio (target >= 10x:
epoch 1 decodes media, runs the cue experts and the frozen towers; later epochs read the cache). Then, with the
cache warm, it times ``--profile-steps`` training steps split into data loading (cache read + tokenisation +
assembling tower outputs), projector forward, LLM forward, backward and optimizer step, and prints each share.
Falls back to the tiny random model when the embedded default is not prepared (``--tiny`` forces it).
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

PROMPT = "Which emotions does the person in this recording show, and why?"


def build_rows(shared: Path, out: Path, n: int, lo: float, hi: float, seed: int = 0) -> Path:
    """``n`` instruction rows over clips of lo..hi seconds (same speaker and emotion concatenated)."""
    import numpy as np
    import soundfile as sf

    from affectllm.report import format_report

    corpora = shared / "corpora"
    groups: dict[tuple[str, str], list[Path]] = defaultdict(list)
    with (corpora / "labels.csv").open(newline="") as f:
        for r in csv.DictReader(f):
            if r["corpus"] == "ravdess":
                groups[(r["speaker"], r["label"])].append(corpora / r["path"])
    rng = random.Random(seed)
    keys = sorted(groups)
    rng.shuffle(keys)
    rows = []
    (out / "clips").mkdir(parents=True, exist_ok=True)
    for speaker, label in keys[:n]:
        target = rng.uniform(lo, hi) if hi > 0 else 0.0
        parts, total, sr = [], 0.0, 16000
        for clip in groups[(speaker, label)]:
            wave, sr = sf.read(str(clip), dtype="float32")
            parts.append(wave)
            total += len(wave) / sr
            if total >= target:
                break
        path = out / "clips" / f"{speaker}_{label}.wav"
        sf.write(str(path), np.concatenate(parts), sr)
        rows.append({"id": f"{speaker}/{label}", "audio": str(path), "task": "ov_labels", "source": "ravdess",
                     "labels": [label], "meta": {"seconds": round(total, 2)}, "conversations": [
                         {"role": "user", "content": f"<audio>\n{PROMPT}"},
                         {"role": "assistant", "content": format_report([label], f"The voice is acted {label}.")}]})
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


def profile_steps(cfg, steps: int, batch_size: int) -> dict[str, float]:
    """Median seconds per part of a warm-cache training step (the trainer's own building blocks)."""
    import torch

    from affectllm.training import build as B
    from affectllm.training.data import Collator, load_split
    from affectllm.training.feature_cache import open_cache
    from affectllm.training.features import batch_tower_outputs
    from affectllm.training.trainer import answer_loss

    device = torch.device("cpu")
    if cfg.train.cpu_threads:
        torch.set_num_threads(int(cfg.train.cpu_threads))
    model, processor = B.build_model(cfg, device)
    groups = B.set_trainable(model, cfg.stage)
    optimizer = torch.optim.AdamW(B.param_groups(groups, cfg), lr=cfg.optim.lr)
    cues = {"auto": bool(model.config.use_cues), "on": True, "off": False}[cfg.data.cues]
    cue_desc = None
    if cues:
        from affectllm.engine import experts_for

        experts = experts_for(model)
        cue_desc = {"whisper": experts.whisper_name, "faces": experts.faces}
    cache = open_cache(model, processor, Path(cfg.cache.dir), cue_desc)
    collator = Collator(processor, cache, None, max_length=cfg.data.max_length)  # warm: no expert is called
    ds, _ = load_split(cfg.resolve(cfg.data.train), None, None, False)
    rows = [ds[i] for i in range(len(ds))]
    proj = model.multi_modal_projector
    marks: dict[str, float] = {}
    proj.register_forward_pre_hook(lambda *a: marks.__setitem__("p0", time.perf_counter()))
    proj.register_forward_hook(lambda *a: marks.__setitem__("p1", time.perf_counter()))
    parts: dict[str, list[float]] = defaultdict(list)
    model.train()
    for s in range(steps + 1):  # the first step warms allocators and is not counted
        batch_rows = [rows[(s * batch_size + j) % len(rows)] for j in range(batch_size)]
        t0 = time.perf_counter()
        batch = collator(batch_rows)
        assert batch.cache.hits == len(batch_rows), "the cache is not warm"
        towers = batch_tower_outputs(model, batch, cache, device)
        text = dict(batch.text)
        t1 = time.perf_counter()
        loss = answer_loss(model, text, towers)
        t2 = time.perf_counter()
        loss.backward()
        t3 = time.perf_counter()
        torch.nn.utils.clip_grad_norm_([p for ps in groups.values() for p in ps], 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        t4 = time.perf_counter()
        if s == 0:
            continue
        p = marks["p1"] - marks["p0"]
        parts["data loading"].append(t1 - t0)
        parts["projector forward"].append(p)
        parts["LLM forward (+ loss)"].append(t2 - t1 - p)
        parts["backward"].append(t3 - t2)
        parts["optimizer (+ clip)"].append(t4 - t3)
        parts["tokens"].append(float(text["attention_mask"].sum()))
    return {k: statistics.median(v) for k, v in parts.items()}


def main(argv: list[str] | None = None) -> int:
    from affectllm.paths import shared_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--recipe", default="train/configs/starter-cpu.yaml")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--batch-size", type=int, default=4)
    ap.add_argument("--seconds", type=float, nargs=2, default=(5.0, 15.0), metavar=("MIN", "MAX"),
                    help="clip length range; 0 0 keeps the single ~3.5-s corpus clips")
    ap.add_argument("--profile-steps", type=int, default=3, help="warm-cache steps to profile (0: none)")
    ap.add_argument("--tiny", action="store_true", help="use the tiny random model (tiny-test recipe)")
    ap.add_argument("--keep", action="store_true", help="keep the temporary clips, cache and run folder")
    args = ap.parse_args(argv)
    shared = shared_dir()
    if shared is None or not (shared / "corpora" / "labels.csv").exists():
        print("../shared/corpora not found (set AFFECTLLM_SHARED)", file=sys.stderr)
        return 1

    recipe = args.recipe
    if args.tiny or not default_available():
        recipe = "train/configs/tiny-test.yaml"
    tmp = Path(tempfile.mkdtemp(prefix="affectllm-bench-"))
    try:
        return _run(args, recipe, shared, tmp)
    finally:
        if not args.keep:
            shutil.rmtree(tmp, ignore_errors=True)


def _run(args, recipe: str, shared: Path, tmp: Path) -> int:
    from affectllm.training import load_config, train

    data = build_rows(shared, tmp, args.samples, *args.seconds)
    secs = [json.loads(x)["meta"]["seconds"] for x in data.read_text().splitlines()]
    steps = args.epochs * (args.samples // args.batch_size)
    cfg = load_config(recipe, [f"data.train={data}", "data.eval=null", f"output_dir={tmp / 'run'}",
                               f"cache.dir={tmp / 'cache'}", f"train.batch_size={args.batch_size}",
                               "train.grad_accum=1", f"train.max_steps={steps}", "train.save_every=0",
                               "train.eval_every=0", "train.eval_generate=false", "optim.warmup_steps=0",
                               "train.log_every=1"])
    t0 = time.time()
    summary = train(cfg, echo=lambda s: None)
    total = time.time() - t0
    rows = [json.loads(x) for x in (tmp / "run" / "metrics.jsonl").read_text().splitlines()]
    rows = [r for r in rows if "loss" in r]
    ends: dict[int, float] = {}
    for r in rows:
        ends[r["epoch"]] = r["elapsed_s"]
    epoch_s = [ends[0]] + [ends[e] - ends[e - 1] for e in sorted(ends) if e > 0]
    print(f"recipe: {recipe} ({cfg.model.source} model), {args.samples} clips of {min(secs):.1f}-{max(secs):.1f} s "
          f"(mean {statistics.mean(secs):.1f} s), batch {args.batch_size}, {args.epochs} epochs, run wall "
          f"{total:.1f} s (model load included)")
    for e, s in enumerate(epoch_s):
        hit = rows[[r["epoch"] for r in rows].index(e)]["cache_hit_rate"]
        print(f"  epoch {e + 1}: {s:7.2f} s  cache hit rate {hit:.0%}")
    if len(epoch_s) > 1:
        print(f"epoch-1 / epoch-2 wall time: {epoch_s[0] / epoch_s[1]:.1f}x (target >= 10x)")
        print(f"samples/s: epoch 1 {args.samples / epoch_s[0]:.3f}, warm cache {args.samples / epoch_s[1]:.3f}")
    print(f"cache: {summary['cache']}")
    if args.profile_steps > 0:
        prof = profile_steps(cfg, args.profile_steps, args.batch_size)
        tokens = prof.pop("tokens")
        step = sum(prof.values())
        print(f"one warm-cache step (median of {args.profile_steps}, batch {args.batch_size}, {tokens:.0f} tokens): "
              f"{step:.2f} s")
        for k, v in prof.items():
            print(f"  {k:22s} {v:7.3f} s  {v / step:6.1%}")
        if len(epoch_s) > 1:
            per_step_e1 = epoch_s[0] / (args.samples // args.batch_size)
            print(f"epoch-1 step {per_step_e1:.2f} s = warm step + {per_step_e1 - step:.2f} s of decoding, experts "
                  f"and towers; the ratio is bounded by epoch-1 step / warm step = {per_step_e1 / step:.1f}x")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
