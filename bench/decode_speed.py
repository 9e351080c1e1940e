"""Single-stream decode speed of each embedded backbone (+ its starter) beside plain ``model.generate``, as a
share of the memory-bandwidth bound measured on this machine, in one run.

    python bench/decode_speed.py [--models smollm2,gemma] [--tokens 32] [--repeats 3] [--threads 2]

Bound: one decode step reads every LLM weight once (a tied embedding counts once, as the LM head; an untied
input embedding reads one row), so ``bound tok/s = bandwidth / weight bytes``; the bandwidth is the best of
several ``torch.sum`` passes over a 512 MiB float32 array (a large-array read, the pattern of matrix-vector
decoding). Paths, each at ``--tokens`` new tokens forced (``min_new_tokens``), prefill excluded
(``(n - 1) / (t_n - t_1)``, medians, repeats interleaved over all rows so machine load falls on all alike):
``generate`` = ``model.generate`` greedy; ``engine`` = ``affectllm.engine.decode`` token by token
(``draft_tokens=0``; no repetition guard, so all make exactly n tokens); ``engine+drafts`` = the engine as a
user gets it, with prompt-lookup drafts (its tok/s is effective throughput: a confirmed draft is a token that
cost no step of its own, so its "% of bound" can pass 100 % on text that copies its prompt); per dtype (float32, bfloat16) and ``int8-dyn``
(``affectllm.load(quantization="dynamic-int8")``: every ``nn.Linear`` of the merged LLM, LM head included, as
torch's dynamic int8 linear; its greedy tokens are compared with float32's: ``same`` = identical prefix length / n). Figures on a shared machine are
"loaded": compare rows of one run only.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch

QUESTION = "How do people usually show anger?"


def bandwidth_gbs(mib: int = 512, passes: int = 5) -> float:
    """Best large-array read bandwidth (GB/s) of ``passes`` ``torch.sum`` over ``mib`` MiB of float32."""
    a = torch.ones(mib * (1 << 20) // 4, dtype=torch.float32)
    a.sum()  # first touch
    best = float("inf")
    for _ in range(passes):
        t0 = time.perf_counter()
        a.sum()
        best = min(best, time.perf_counter() - t0)
    return a.numel() * 4 / best / 1e9


def weight_bytes(llm: torch.nn.Module) -> int:
    """Bytes one decode step reads: every parameter / packed weight once, an untied input embedding as one row."""
    emb = llm.get_input_embeddings().weight
    head = llm.get_output_embeddings()
    tied = head is not None and getattr(head, "weight", None) is not None and head.weight is emb
    seen, total = set(), 0
    for p in llm.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        total += p.numel() * p.element_size() if (p is not emb or tied) else emb.shape[1] * emb.element_size()
    for m in llm.modules():  # dynamic-quantised Linear keeps its int8 weight outside .parameters()
        if type(m).__name__ == "Linear" and m.__module__.startswith("torch.ao.nn.quantized"):
            w = m.weight()
            total += w.numel() * w.element_size()
    return total


def timed(model, tokenizer, batch: dict, n: int, path: str) -> tuple[float, list[int]]:
    from affectllm.engine import GenerationSettings, decode

    t0 = time.perf_counter()
    with torch.inference_mode():
        if path == "generate":
            out = model.generate(**batch, max_new_tokens=n, min_new_tokens=n, do_sample=False)
            ids = out[0, batch["input_ids"].shape[1]:].tolist()
        else:
            s = GenerationSettings(max_new_tokens=n, min_new_tokens=n, repetition_guard=None,
                                   draft_tokens=4 if path == "engine+drafts" else 0)
            ids = decode(model, tokenizer, batch, s)[0].token_ids
    return time.perf_counter() - t0, ids


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default="smollm2,gemma")
    ap.add_argument("--tokens", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--variants", default="float32,bfloat16,int8-dyn")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    import affectllm

    bw = bandwidth_gbs()
    rows = []
    for name in args.models.split(","):
        for variant in args.variants.split(","):
            dtype = "bfloat16" if variant == "bfloat16" else "float32"
            quant = "dynamic-int8" if variant == "int8-dyn" else None  # what --quantization dynamic-int8 loads
            model, processor = affectllm.load(model=name, dtype=dtype, device="cpu", quantization=quant)
            batch = dict(processor([[{"role": "user", "content": QUESTION}]], add_generation_prompt=True))
            rows += [{"name": name, "variant": variant, "path": p, "model": model, "tok": processor.tokenizer,
                      "batch": batch, "bytes": weight_bytes(model.language_model), "t": {1: [], args.tokens: []}}
                     for p in ("generate", "engine", "engine+drafts")]
    n = args.tokens
    for r in rows:  # warm-up, and the greedy tokens
        r["ids"] = timed(r["model"], r["tok"], r["batch"], n, r["path"])[1]
    for _ in range(args.repeats):
        for r in rows:
            for k in (1, n):
                r["t"][k].append(timed(r["model"], r["tok"], r["batch"], k, r["path"])[0])
    print(f"Reproduce: python bench/decode_speed.py --models {args.models} --tokens {n} --repeats {args.repeats} "
          f"--threads {args.threads} --variants {args.variants}")
    print(f"Large-array read bandwidth: {bw:.1f} GB/s; {args.threads} threads; load average {os.getloadavg()} "
          "(figures are 'loaded' when it exceeds the core count)\n")
    print("| backbone | weights | path | MB read / token | bound tok/s | tok/s | % of bound | greedy same as fp32 |")
    print("|---|---|---|---|---|---|---|---|")
    for r in rows:
        ref = next(x for x in rows if x["name"] == r["name"] and x["variant"] == "float32" and x["path"] == r["path"])
        same = next((i for i, (a, b) in enumerate(zip(r["ids"], ref["ids"])) if a != b), n)
        speed = (n - 1) / max(statistics.median(r["t"][n]) - statistics.median(r["t"][1]), 1e-9)
        bound = bw * 1e9 / r["bytes"]
        print(f"| {r['name']} | {r['variant']} | {r['path']} | {r['bytes'] / 1e6:.0f} | {bound:.1f} | {speed:.1f} "
              f"| {100 * speed / bound:.0f} % | {same}/{n} |")


if __name__ == "__main__":
    main()
