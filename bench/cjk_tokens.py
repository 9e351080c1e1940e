"""Tokens per quoted Chinese character for each embedded backbone's tokenizer (issue 20: mind Mandarin).

    python bench/cjk_tokens.py [--limit 500]      (AFFECTLLM_SHARED=path/to/shared when it is not ../shared)

Texts: the CASIA held-out transcripts (Whisper's, from each shipped starter's report.json) and the Chinese
sentences of the CLUE emotion test set (../shared/corpora/text/clue_emotion/test.jsonl). Each text is tokenized
as a quotation inside a report (``the speaker says "TEXT".``) minus the same sentence with an empty quote,
so the figure is what quoting costs. ``whole-char`` = share of CJK characters that are one token on their own
(what the quote guard needs to quote a CJK transcript character by character).
"""

from __future__ import annotations

import argparse
import json
import re

from affectllm.loading import STARTERS
from affectllm.paths import shared_dir

CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")


def texts(limit: int) -> dict[str, list[str]]:
    casia = sorted({s["transcript"] for p in STARTERS.values() if (p / "report.json").exists()
                    for s in json.loads((p / "report.json").read_text())["samples"]
                    if s["corpus"] == "casia" and s.get("transcript")})
    out = {"casia transcripts": casia}
    shared = shared_dir()
    clue = shared / "corpora/text/clue_emotion/test.jsonl" if shared is not None else None
    if clue is not None and clue.exists():
        rows = [json.loads(x)["content"] for x in clue.read_text(encoding="utf-8").splitlines()[:limit]]
        out["clue_emotion test"] = rows
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--limit", type=int, default=500)
    args = ap.parse_args()
    from transformers import AutoTokenizer

    from affectllm.defaults import LLM_BACKBONES
    from affectllm.language_model import resolve_text_model

    sets = texts(args.limit)
    print(f"Reproduce: python bench/cjk_tokens.py --limit {args.limit}\n")
    print("| backbone | texts | texts (n) | CJK chars | tokens per quoted CJK char | whole-char tokens |")
    print("|---|---|---|---|---|---|")
    for name, ref in LLM_BACKBONES.items():
        tok = AutoTokenizer.from_pretrained(resolve_text_model(ref))
        empty = len(tok('the speaker says "".', add_special_tokens=False)["input_ids"])
        for label, rows in sets.items():
            n_tok = n_chr = whole = 0
            for t in rows:
                n_tok += len(tok(f'the speaker says "{t}".', add_special_tokens=False)["input_ids"]) - empty
                chars = CJK.findall(t)
                n_chr += len(chars)
                whole += sum(len(tok(c, add_special_tokens=False)["input_ids"]) == 1 for c in chars)
            print(f"| {name} | {label} | {len(rows)} | {n_chr} | {n_tok / max(n_chr, 1):.2f} "
                  f"| {whole / max(n_chr, 1):.0%} |")


if __name__ == "__main__":
    main()
