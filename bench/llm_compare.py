"""Compare the embedded backbones (Gemma-3-270M, SmolLM2-135M-Instruct): speed and chat, bare or with adapters.

    PYTHONPATH=. nice -n 10 python bench/llm_compare.py --out train/llm_comparison.md        # base models
    PYTHONPATH=. python bench/llm_compare.py --adapter runs/starter-cpu/adapter \
        --adapter runs/starter-cpu-smollm2/adapter --out train/backbone_choice.md          # trained starters

With ``--adapter`` (the starter recipe's adapters, ``bash train/make_starter.sh`` and ``BACKBONE=smollm2 ...``)
each row is ``affectllm.load(adapter=PATH)`` in float32 (the CPU default, LoRA merged as users get it), and the
held-out table is read from each run's ``report/report.json`` (``train/starter_report.py``: accuracy on the
held-out speakers, faithfulness, format), so the choice of default rests on the same numbers users would see.

Both go through the public API: ``affectllm.load(model=LLM_BACKBONES[NAME], dtype=...)`` (the default towers and an untrained
projector; LoRA starts as an exact identity, so text-only answers are the base LLM's) and the same generate path.
- speed: decode tokens/s of ``model.generate`` on one chat prompt, fixed length (``min_new_tokens`` =
  ``max_new_tokens`` = N, greedy), from the difference of an N-token and a 1-token run (prefill excluded), median
  of ``--repeats`` interleaved over all rows; beside it the same measure on the bare language model (``model.language_model``) as baseline.
- chat: ten general questions about emotions, one fresh ``ChatSession`` each (greedy, bf16), answers printed whole.
Without ``--adapter``, held-out accuracy and faithfulness are not measured (they need each backbone's adapter).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import torch

QUESTIONS = (
    "What is the difference between anger and frustration?",
    "Why do people sometimes cry when they are happy?",
    "How can you tell from someone's voice that they are anxious?",
    "What is the difference between guilt and shame?",
    "Are facial expressions of emotion recognised the same way across cultures?",
    "What does it mean for an emotion to have high arousal but negative valence? Give an example.",
    "How can I calm down when I feel overwhelmed?",
    "What is the difference between sadness and depression?",
    "Why does fear make the heart beat faster?",
    "How should I comfort a friend who is grieving?",
)
BACKBONES = ("gemma", "smollm2")


def _timed_generate(gen_model, batch: dict, n: int) -> float:
    t0 = time.perf_counter()
    with torch.no_grad():
        out = gen_model.generate(**batch, max_new_tokens=n, min_new_tokens=n, do_sample=False)
    seconds = time.perf_counter() - t0
    assert out.shape[1] - batch["input_ids"].shape[1] == n or out.shape[1] == n, "generate stopped early"
    return seconds


def load(name: str, dtype: str, adapter: Path | None = None) -> dict:
    """One backbone (or trained adapter) through the public API, with its speed-test prompt encoded once."""
    import affectllm

    t0 = time.perf_counter()
    if adapter is not None:
        model, processor = affectllm.load(adapter=str(adapter), dtype=dtype, device="cpu")
        name = model.config.text_model
    else:
        from affectllm.defaults import LLM_BACKBONES

        model, processor = affectllm.load(model=LLM_BACKBONES[name], dtype=dtype, device="cpu")  # bare backbone
    load_s = time.perf_counter() - t0
    batch = dict(processor([[{"role": "user", "content": QUESTIONS[0]}]], add_generation_prompt=True))
    llm = model.language_model
    return {"name": name, "dtype": dtype, "model": model, "processor": processor, "batch": batch,
            "llm_batch": {"input_ids": batch["input_ids"], "attention_mask": batch["attention_mask"]},
            "load_s": load_s, "prompt_tokens": int(batch["input_ids"].shape[1]),
            "llm_params_m": sum(p.numel() for p in llm.parameters()) / 1e6, "times": {},
            "adapter": adapter, "heldout": heldout_report(adapter)}


def heldout_report(adapter: Path | None) -> dict | None:
    """The starter report of the run that made ``adapter`` (RUN/report/report.json beside RUN/adapter), if any."""
    if adapter is None:
        return None
    path = Path(adapter).parent / "report" / "report.json"
    return json.loads(path.read_text()) if path.is_file() else None


def measure_speed(rows: list[dict], n: int, repeats: int) -> None:
    """Decode tokens/s = (n - 1) / (median t_n - median t_1) for the AffectLLM model and its bare LLM.

    Repeats are interleaved over every (backbone, dtype, path) so that load from other jobs on the machine
    falls on all of them alike; one warm-up run each first."""
    paths = [(r, key) for r in rows for key in ("affectllm", "bare")]

    def run(r: dict, key: str, k: int) -> float:
        gen_model = r["model"] if key == "affectllm" else r["model"].language_model
        return _timed_generate(gen_model, r["batch"] if key == "affectllm" else r["llm_batch"], k)

    for r, key in paths:
        run(r, key, 2)
        r["times"][key] = {1: [], n: []}
    for _ in range(repeats):
        for r, key in paths:
            for k in (1, n):
                r["times"][key][k].append(run(r, key, k))
    for r, key in paths:
        t = r["times"][key]
        speed = (n - 1) / max(statistics.median(t[n]) - statistics.median(t[1]), 1e-9)
        r["tok_s" if key == "affectllm" else "tok_s_bare_llm"] = speed


def chat(rows: list[dict], max_new_tokens: int, after_each=None) -> None:
    """Ten questions, one fresh ChatSession each, on every row given (greedy); ``after_each()`` per question."""
    from affectllm.chat import ChatSession

    for r in rows:
        r["answers"] = []
    for q in QUESTIONS:
        for r in rows:
            session = ChatSession(r["model"], r["processor"], max_new_tokens=max_new_tokens)
            t = time.perf_counter()
            text = session.ask(q)
            ntok = len(r["processor"].tokenizer(text, add_special_tokens=False)["input_ids"])
            r["answers"].append({"question": q, "answer": text, "tokens": ntok, "seconds": time.perf_counter() - t})
        if after_each is not None:
            after_each()


def heldout_table(rows: list[dict]) -> list[str]:
    """Per backbone: the held-out speakers' macro accuracy (final labels, anchored and the LLM's own) beside the
    experts, chance and majority of the same clips; faithfulness; format; seconds per clip of the evaluation."""
    have = [r for r in rows if r.get("heldout")]
    if not have:
        return []
    lines = ["## Held-out speakers (from each run's starter report)", "",
             "Macro top-1 over RAVDESS, EmoDB and CASIA on the held-out speakers' clips (never trained on); "
             "`anchored` = what users get (first label = the fused top class), `LLM's own` = `anchor_labels=False`.",
             "", "| backbone | clips | chance | majority | voice | fused | final (anchored) | final (LLM's own) "
             "| faithful (anchored / own) | format (anchored / own) | eval s per clip | train s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in have:
        h = r["heldout"]
        q, m = h["quality"], h["quality"]["macro"]
        train_s = (h.get("timings_s", {}).get("train") or {}).get("wall", "n/a")
        lines.append(
            f"| {r['name']} | {q['clips']} | {m['chance']:.3f} | {m['majority']:.3f} | {m['voice']:.3f} | "
            f"{m['fused']:.3f} | {m['final_anchored']:.3f} | {m['final_llm']:.3f} | "
            f"{q['faithful_rate_anchored']:.3f} / {q['faithful_rate_llm']:.3f} | "
            f"{q['follows_format_anchored']:.3f} / {q['follows_format_llm']:.3f} | "
            f"{h['eval_wall_s'] / max(q['clips'], 1):.1f} | {train_s} |")
    lines += ["", "Per corpus (final labels, LLM's own / anchored):", ""]
    for r in have:
        per = r["heldout"]["quality"]["per_corpus"]
        lines.append(f"- {r['name']}: " + "; ".join(
            f"{c} {v['final_llm']:.3f} / {v['final_anchored']:.3f} (voice {v['voice']:.3f}, fused {v['fused']:.3f}, "
            f"chance {v['chance']:.3f}, majority {v['majority']:.3f})" for c, v in per.items()))
    return [*lines, ""]


def render(rows: list[dict], args: argparse.Namespace) -> str:
    trained = any(r.get("adapter") for r in rows)
    command = ("PYTHONPATH=. python bench/llm_compare.py "
               + " ".join(f"--adapter {r['adapter']}" for r in rows if r.get("adapter"))
               if trained else "PYTHONPATH=. nice -n 10 python bench/llm_compare.py")
    lines = [f"# Language-model backbones compared ({'trained starter adapters' if trained else 'no adapters'})", "",
             f"Reproduce: `{command} --out {args.out}"
             f" --tokens {args.tokens} --repeats {args.repeats} --max-new-tokens {args.max_new_tokens}`", "",
             f"Machine: {platform.machine()}, {os.cpu_count()} CPU cores (shared with other jobs: 1-min load average "
             f"{os.getloadavg()[0]:.1f} at the end of the run), torch {torch.__version__}, "
             f"{torch.get_num_threads()} threads. Speeds on a shared machine are noisy; compare rows of this run only.",
             "", *heldout_table(rows), "## Decode speed", ""]
    if os.getloadavg()[0] > (os.cpu_count() or 1):
        lines += ["**Warning: the machine was oversubscribed (load average above the core count): these speeds "
                  "measure contention with other jobs, not the models; rerun on an idle machine.**", ""]
    lines += [
             f"Greedy, {args.tokens} new tokens after a chat prompt, prefill excluded, median of {args.repeats} "
             "runs interleaved over all rows. "
             "`affectllm` = `affectllm.load(model=NAME).generate`; `bare LLM` = the same model's language model "
             "alone (baseline).", "",
             "| backbone | dtype | LLM params (M) | prompt tokens | affectllm tok/s | bare LLM tok/s | load s |",
             "|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(f"| {r['name']} | {r['dtype']} | {r['llm_params_m']:.1f} | {r['prompt_tokens']} | "
                     f"{r['tok_s']:.1f} | {r['tok_s_bare_llm']:.1f} | {r['load_s']:.0f} |")
    chats = [r for r in rows if "answers" in r]
    if chats:
        lines += ["", "## Chat answers", "",
                  f"Ten general questions about emotions; greedy, {chats[0]['dtype']}, at most {args.max_new_tokens} "
                  "new tokens, one fresh `ChatSession` per question (the chat template of each tokenizer: Gemma turns "
                  "for Gemma, the GGUF's ChatML with SmolLM2's default system line for SmolLM2). Printed verbatim.", ""]
        for i, q in enumerate(QUESTIONS[:len(chats[0]["answers"])]):
            lines += [f"### {i + 1}. {q}", ""]
            for r in chats:
                a = r["answers"][i]
                body = a["answer"].replace("\n", "\n> ") if a["answer"] else "(empty answer)"
                lines += [f"**{r['name']}** ({a['tokens']} tokens, {a['seconds']:.1f} s):", "", f"> {body}", ""]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--backbones", nargs="+", default=list(BACKBONES))
    ap.add_argument("--adapter", type=Path, action="append", default=[],
                    help="a trained adapter folder (repeat per backbone); replaces --backbones")
    ap.add_argument("--adapter-dtype", default="float32", help="the adapters' precision: float32 or bfloat16 (what "
                    "`--dtype auto` gives an embedded default on a CPU with native bf16)")
    ap.add_argument("--tokens", type=int, default=32, help="new tokens per speed run")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--max-new-tokens", type=int, default=128, help="per chat answer")
    ap.add_argument("--no-chat", action="store_true")
    ap.add_argument("--out", type=Path)
    args = ap.parse_args()
    torch.manual_seed(0)
    if args.adapter:
        for a in args.adapter:
            if not (a / "config.json").is_file():
                ap.error(f"{a}: not an adapter folder (no config.json); train one with bash train/make_starter.sh")
        rows = [load("", args.adapter_dtype, adapter=a) for a in args.adapter]
    else:
        rows = [load(name, dtype) for name in args.backbones for dtype in ("float32", "bfloat16")]
    measure_speed(rows, args.tokens, args.repeats)
    for r in rows:
        print(f"{r['name']} {r['dtype']}: {r['tok_s']:.1f} tok/s (bare LLM {r['tok_s_bare_llm']:.1f})", flush=True)

    def write() -> None:  # after the speed table and after every chat question: a cut run keeps its results
        if args.out:
            args.out.parent.mkdir(parents=True, exist_ok=True)
            args.out.write_text(render(rows, args))

    write()
    if not args.no_chat:
        chat([r for r in rows if r["dtype"] == (args.adapter_dtype if args.adapter else "bfloat16")], args.max_new_tokens,
             after_each=write)
    print(render(rows, args))
    write()


if __name__ == "__main__":
    main()
