"""Build the labelled fixture instruction set (RAVDESS + EmoDB + the face grid in ../shared) for the starter.

    python instruct_data/build_fixtures.py [--shared ../shared] [--out DIR] [--seed 0]

Writes DIR/train.jsonl, DIR/heldout.jsonl and DIR/faces/*.png (default DIR: the AffectLLM cache,
``$AFFECTLLM_HOME/instruct/fixtures``) and prints a JSON summary. Logic: `affectllm.instruct.fixtures`.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from affectllm.instruct.fixtures import FIXTURE_TASKS, build_fixture_set
from affectllm.paths import cache_dir, shared_dir


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=shared_dir(), help="the ../shared fixtures folder")
    parser.add_argument("--out", type=Path, default=None, help="output folder (default: the AffectLLM cache)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--tasks", default=",".join(FIXTURE_TASKS), help="comma-separated tasks")
    args = parser.parse_args(argv)
    if args.shared is None:
        print("error: ../shared not found; pass --shared PATH or set AFFECTLLM_SHARED", file=sys.stderr)
        return 1
    out = args.out or cache_dir("instruct", "fixtures")
    summary = build_fixture_set(args.shared, out, seed=args.seed, tasks=[t for t in args.tasks.split(",") if t])
    print(json.dumps({"out": str(out), **summary}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
