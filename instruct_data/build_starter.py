"""Build the starter instruction set for the embedded default (real fixtures + marked synthetic clips).

    python instruct_data/build_starter.py [--shared ../shared] [--out DIR]

Writes DIR/train.jsonl, DIR/heldout.jsonl and DIR/composition.json (default DIR:
``$AFFECTLLM_HOME/instruct/starter``). Every target is a grounded report composed from the cues measured on
the clip (``affectllm.instruct.grounded``); what is synthetic is recorded per row (``meta.synthetic``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

from affectllm.defaults import DEFAULT_PROMPT
from affectllm.instruct.grounded import EMOTIONS, grounded_explanation, grounded_report
from affectllm.instruct.io import write_jsonl
from affectllm.instruct.starter import all_samples
from affectllm.paths import cache_dir, shared_dir

PLACEHOLDER = {"audio": "<audio>", "video": "<video>", "image": "<image>"}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=shared_dir())
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    if args.shared is None:
        print("error: ../shared not found; pass --shared PATH or set AFFECTLLM_SHARED", file=sys.stderr)
        return 1
    out = args.out or cache_dir("instruct", "starter")
    out.mkdir(parents=True, exist_ok=True)

    from affectllm.perception.pipeline import Experts, perceive

    experts = Experts(whisper="base")
    samples = all_samples(args.shared, out)
    rows: dict[str, list[dict]] = {"train": [], "heldout": []}
    for i, s in enumerate(samples):
        p = perceive(s.path, experts=experts, num_frames=8)
        names, valence, arousal = EMOTIONS[s.label]
        rows[s.split].append({
            "id": s.id, s.kind: str(s.path),
            "conversations": [{"role": "user", "content": f"{PLACEHOLDER[s.kind]}\n{DEFAULT_PROMPT}"},
                              {"role": "assistant", "content": grounded_report(p, s.label)}],
            "task": "describe", "source": s.source, "labels": names, "valence": valence, "arousal": arousal,
            "description": grounded_explanation(p, s.label), "split": s.split,
            "meta": {"synthetic": s.synthetic, "class": s.label, **s.meta},
        })
        print(f"[{i + 1}/{len(samples)}] {s.split:7s} {s.id}: {s.label} | {p.transcript!r}", flush=True)
    for split, r in rows.items():
        write_jsonl(out / f"{split}.jsonl", r)
    composition = {split: {"rows": len(r), "by_source": dict(Counter(x["source"] for x in r)),
                           "by_class": dict(Counter(x["meta"]["class"] for x in r)),
                           "synthetic": sum(x["meta"]["synthetic"] for x in r)} for split, r in rows.items()}
    (out / "composition.json").write_text(json.dumps(composition, indent=2))
    print(json.dumps({"out": str(out), **composition}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
