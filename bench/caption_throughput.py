"""Caption throughput and decode speed at batch 1, 4 and 16 with the embedded default, against the memory bound.

    .venv/bin/python bench/caption_throughput.py [--threads 2] [--dtype float32|bfloat16] [--batches 1,4,16]
        [--new-tokens 32] [--caption-tokens 128] [--json out.json]

1. Read bandwidth of this machine: the best of several full reads of a 512 MB array (numpy sum and torch sum
   with ``--threads`` threads); the bound uses the larger.
2. Bytes read per decode token at batch 1: every LLM weight in its dtype (the tied 262k x 640 embedding is
   read once, as the LM head), LoRA included, plus the KV cache at the prompt's length (sliding-window layers
   capped at the window). Bound = bandwidth / bytes per token (tokens/s).
3. Decode tokens/s for ``model.generate`` (baseline) and for the engine's decoder (``affectllm.engine.decode``):
   B * (N - 1) / (time for N forced new tokens - time for 1), i.e. prefill excluded; single-stream fraction =
   tok/s / bound.
4. Captions per minute at each batch size, all through the engine: generation only (``Engine.report`` over
   already-perceived RAVDESS clips: real Whisper, faces, prosody), and end to end through the ``Captioner``
   on the files, with perception in series (``prefetch=False``, the baseline) and overlapped with generation
   in a worker thread (``prefetch=True``, the default); end-to-end / generation-only is printed.
Targets (issue 13, 2 CPU cores): single-stream decode >= 60 % of the bound; batch-16 end to end >= 85 % of
generation only.
If the embedded default cannot load, the tiny random model gives a smoke figure only (and says so).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np


def read_bandwidth_gbs(threads: int, mb: int = 512, repeats: int = 5) -> dict[str, float]:
    import torch

    a = np.ones(mb * 2**20 // 4, dtype=np.float32)
    t = torch.ones(mb * 2**20 // 4, dtype=torch.float32)
    torch.set_num_threads(threads)
    out = {}
    for name, fn in (("numpy_sum", a.sum), ("torch_sum", t.sum)):
        fn()
        best = min(_timed(fn) for _ in range(repeats))
        out[name] = a.nbytes / best / 1e9
    return out


def _timed(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def bytes_per_token(model, context: int) -> dict[str, float]:
    """Weights (each tensor once: the tied LM head counts once) + KV cache read per decode step at batch 1."""
    lm = model.language_model
    weights = sum(p.numel() * p.element_size() for p in lm.parameters())
    cfg = model.base_language_model().config
    cfg = getattr(cfg, "text_config", cfg)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    kv_heads = getattr(cfg, "num_key_value_heads", cfg.num_attention_heads)
    types = getattr(cfg, "layer_types", None) or ["full_attention"] * cfg.num_hidden_layers
    window = getattr(cfg, "sliding_window", None) or context
    elem = next(lm.parameters()).element_size()
    kv = sum(2 * kv_heads * head_dim * (min(context, window) if t == "sliding_attention" else context) * elem
             for t in types)
    return {"weights": float(weights), "kv_cache": float(kv), "total": float(weights + kv)}


def clip_files(n: int) -> list[Path]:
    from affectllm.paths import shared_dir

    shared = shared_dir()
    if shared is None:
        sys.exit("../shared (fixtures) not found; set AFFECTLLM_SHARED")
    files = sorted((shared / "media/ravdess").glob("*_audio.wav"))
    return [files[i % len(files)] for i in range(n)]


def perceptions(engine, n: int):
    files = clip_files(n)
    out, t0 = [], time.perf_counter()
    for f in files[: len(set(files))]:
        out.append(engine.perceive(f, cache=False))
    per_item = (time.perf_counter() - t0) / len(out)
    while len(out) < n:
        out.append(out[len(out) % len(set(files))])
    return out, per_item


def end_to_end_per_min(engine, b: int, tokens: int, prefetch: bool) -> float:
    """Captions per minute of the Captioner over 2 * b files (perception included), batch size b."""
    from affectllm.captioning import Captioner, CaptionInput

    files = clip_files(2 * b)
    cap = Captioner(engine.model, engine.processor, experts=engine.experts, max_new_tokens=tokens, batch_size=b,
                    prefetch=prefetch)
    items = [CaptionInput(f"{i}", str(f)) for i, f in enumerate(files)]
    t0 = time.perf_counter()
    recs = list(cap.caption(items))
    assert all(r["status"] == "ok" for r in recs), [r["error"] for r in recs if r["error"]]
    return 60 * len(items) / (time.perf_counter() - t0)


def decode_speed(engine, ps, new_tokens: int, fast: bool) -> dict[str, float]:
    import torch

    from affectllm.engine import GenerationSettings, decode

    model = engine.model
    batch = engine.encode([engine.renderer.single_turn(p, None) for p in ps])

    def run(n: int) -> float:
        t0 = time.perf_counter()
        with torch.no_grad():
            if fast:
                decode(model, engine.processor.tokenizer, batch,
                       GenerationSettings(max_new_tokens=n, min_new_tokens=n, repetition_guard=None))
            else:
                model.generate(**batch, max_new_tokens=n, min_new_tokens=n, do_sample=False)
        return time.perf_counter() - t0

    run(2)  # warm-up
    t1 = min(run(1) for _ in range(2))
    tn = run(new_tokens)
    b = batch["input_ids"].shape[0]
    return {"prefill_s": t1, "decode_tok_s": b * (new_tokens - 1) / max(tn - t1, 1e-9),
            "prompt_len": int(batch["input_ids"].shape[1])}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="auto", help="auto (float32 on CPU) or bfloat16")
    ap.add_argument("--batches", default="1,4,16")
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--caption-tokens", type=int, default=128)
    ap.add_argument("--skip-captions", action="store_true", help="decode figures only")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    load_before = os.getloadavg()
    bw = read_bandwidth_gbs(args.threads)
    bandwidth = max(bw.values())
    print("read bandwidth: " + ", ".join(f"{k} {v:.1f} GB/s" for k, v in bw.items()) + f" (load {load_before})")

    import affectllm
    from affectllm.engine import Engine

    smoke = None
    try:
        model, processor = affectllm.load(dtype=args.dtype)
    except Exception as e:  # noqa: BLE001 - report and fall back to a smoke figure
        import tempfile

        from affectllm.testing import save_tiny_checkpoint

        smoke = f"embedded default unavailable ({type(e).__name__}: {e}); tiny random model: smoke figures only"
        print(smoke)
        model, processor = affectllm.load(str(save_tiny_checkpoint(Path(tempfile.mkdtemp()) / "tiny")))
    engine = Engine.for_model(model, processor)
    batches = [int(b) for b in args.batches.split(",")]
    ps, perceive_s = perceptions(engine, max(batches))
    print(f"model {model.source_name} ({model.dtype}); perception {perceive_s:.2f} s per clip (not batched)")
    results: dict = {"bandwidth_gbs": bw, "model": model.source_name, "dtype": str(model.dtype), "smoke": smoke,
                     "threads": args.threads, "perceive_s_per_clip": perceive_s, "batches": {}}
    for b in batches:
        row: dict = {}
        for fast in (False, True):
            d = decode_speed(engine, ps[:b], args.new_tokens, fast)
            row["fast" if fast else "generate"] = d
            print(f"batch {b:2d} {'engine' if fast else 'generate':9s}: decode {d['decode_tok_s']:7.2f} tok/s, "
                  f"prefill {d['prefill_s']:.2f} s (prompt {d['prompt_len']} tokens)")
        if b == 1:
            per_tok = bytes_per_token(model, row["generate"]["prompt_len"] + args.new_tokens // 2)
            bound = bandwidth / per_tok["total"] * 1e9
            results["bytes_per_token"] = per_tok
            results["bound_tok_s"] = bound
            print(f"bytes per token {per_tok['total'] / 1e6:.1f} MB (weights {per_tok['weights'] / 1e6:.1f} MB, "
                  f"KV {per_tok['kv_cache'] / 1e6:.2f} MB) -> bound {bound:.1f} tok/s")
            for k in ("generate", "fast"):
                row[k]["fraction_of_bound"] = row[k]["decode_tok_s"] / bound
                name = "engine" if k == "fast" else k
                print(f"  single-stream {name}: {100 * row[k]['fraction_of_bound']:.1f} % of the bound (target >= 60 %)")
        if not args.skip_captions:
            t0 = time.perf_counter()
            reports = engine.report(ps[:b], max_new_tokens=args.caption_tokens)
            gen_s = time.perf_counter() - t0
            row["captions_per_min_generation"] = 60 * b / gen_s
            row["mean_report_tokens"] = float(np.mean([len(processor.tokenizer(r.raw)["input_ids"]) for r in reports]))
            for prefetch in (False, True):
                key = "captions_per_min_end_to_end" + ("_overlapped" if prefetch else "_serial")
                row[key] = end_to_end_per_min(engine, b, args.caption_tokens, prefetch)
            gen = row["captions_per_min_generation"]
            print(f"batch {b:2d}: {gen:.1f} captions/min generation only; end to end serial (baseline) "
                  f"{row['captions_per_min_end_to_end_serial']:.1f} ({row['captions_per_min_end_to_end_serial'] / gen:.0%}), "
                  f"overlapped {row['captions_per_min_end_to_end_overlapped']:.1f} "
                  f"({row['captions_per_min_end_to_end_overlapped'] / gen:.0%}; target >= 85 %); "
                  f"mean report {row['mean_report_tokens']:.0f} tokens")
        results["batches"][b] = row
    if 1 in results["batches"] and 16 in results["batches"]:
        for k in ("generate", "fast"):
            ratio = results["batches"][16][k]["decode_tok_s"] / results["batches"][1][k]["decode_tok_s"]
            results[f"batch16_over_batch1_{k}"] = ratio
            print(f"batch-16 / batch-1 decode throughput ({'engine' if k == 'fast' else k}): {ratio:.2f}x")
    results["load_average"] = {"before": load_before, "after": os.getloadavg()}
    print(f"load average before {load_before}, after {os.getloadavg()} (2 cores shared with other work)")
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))


if __name__ == "__main__":
    main()
