"""Cost of faithful decoding: QuoteGuard's one-time vocabulary table and its per-step overhead.

    python bench/quote_guard.py --tokenizer DIR [--steps 64] [--threads 1]

DIR is any HF tokenizer folder (e.g. the prepared SmolLM2 under $AFFECTLLM_HOME). The decode loop is scripted
(scores from a fixed random generator that favours a fabricated quotation), so only the processor is timed:
the same loop with and without the guard, in the same run. Also prints whether the guarded text is faithful.
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokenizer", required=True)
    ap.add_argument("--steps", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="torch threads (the guard is Python-bound)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from transformers import AutoTokenizer

    from affectllm.faithful import Grounding, check_faithfulness
    from affectllm.quote_guard import QuoteGuard

    tok = AutoTokenizer.from_pretrained(args.tokenizer)
    source = "Kids are talking by the door."
    target = ' He says "we lost the game again" and "kids are talking by the door" with a frown, then stops.'
    t0 = time.perf_counter()
    guard = QuoteGuard(tok, [source])
    table_s = time.perf_counter() - t0
    pieces = guard.pieces
    prompt = tok("Explanation:", return_tensors="pt").input_ids  # [1, P]

    def run(g) -> tuple[str, float]:
        gen = torch.Generator().manual_seed(0)
        ids, spent = prompt, 0.0
        for _ in range(args.steps):
            text = tok.decode(ids[0, prompt.shape[1]:].tolist())
            scores = torch.rand(1, len(pieces), generator=gen)  # [1, V]
            rest = target[len(text):] if target.startswith(text) else ""
            best = max((i for i, p in enumerate(pieces) if p and rest.startswith(p)), key=lambda i: len(pieces[i]),
                       default=None)
            if best is not None:
                scores[0, best] = 10.0
            if g is not None:
                t = time.perf_counter()
                scores = g(ids, scores)
                spent += time.perf_counter() - t
            ids = torch.cat([ids, scores.argmax(-1, keepdim=True)], dim=1)
        return tok.decode(ids[0, prompt.shape[1]:].tolist()), spent

    plain, _ = run(None)
    guarded, spent = run(QuoteGuard(tok, [source]))
    print(f"tokenizer {args.tokenizer}: vocabulary {len(pieces)}, quote-bearing tokens {len(guard.quoting)}")
    print(f"vocabulary table (once per tokenizer): {table_s:.2f} s")
    print(f"guard per step: {1000 * spent / args.steps:.2f} ms over {args.steps} steps")
    print(f"unguarded: {plain!r}\n  problems: {check_faithfulness(plain, Grounding([source]))}")
    print(f"guarded:   {guarded!r}\n  problems: {check_faithfulness(guarded, Grounding([source]))}")


if __name__ == "__main__":
    main()
