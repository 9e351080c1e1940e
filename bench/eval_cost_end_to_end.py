"""Benchmark: what a user pays to score 30 OV-MER prediction files, process start to results written, beside the
official-style code run the same way, in one run.

    PYTHONPATH=. .venv/bin/python bench/eval_cost_end_to_end.py [--files 30] [--shared ../shared]

``affectllm``: one ``affectllm eval score --task ov-mer --gt GT --pred F --out DIR --no-html`` process per file
(interpreter start, imports, the wheel/synonym tables from their disk cache, scoring, results.json and
samples.jsonl written), the way a shell loop over prediction files runs it. ``official-style``: one Python
process per file that reads the wheel xlsx/csv resources (the official script has no cache) and prints the
M-avg (``bench/ovmer_official_style.py``). The first affectllm process after a cleared cache also pays building
the disk cache: it is printed apart. Both sides score the same perturbed files (``bench/eval_speed.make_files``);
their M-avg is compared per file.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

OFFICIAL = """
import sys
from pathlib import Path
sys.path.insert(0, {bench!r}); sys.path.insert(0, {root!r})
from ovmer_official_style import official_maps, official_style_m_avg
from affectllm.evaluation.normalise import get_resources
res = get_resources(Path(sys.argv[1]))  # parsed from the xlsx/csv files: no disk cache
print(official_style_m_avg(Path(sys.argv[2]), Path(sys.argv[3]), res, official_maps(res)))
"""


def main() -> None:
    from eval_speed import make_files, ovmer_inputs

    from affectllm.paths import shared_dir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=30)
    ap.add_argument("--shared", type=Path, default=shared_dir())
    args = ap.parse_args()
    wheel, gt, pred = ovmer_inputs(args.shared)
    print("command: PYTHONPATH=. python " + " ".join(["bench/eval_cost_end_to_end.py", *sys.argv[1:]]))
    cli = [str(Path(sys.executable).with_name("affectllm"))]
    if not Path(cli[0]).exists():
        cli = [sys.executable, "-m", "affectllm"]
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        files = make_files(pred, gt, tmp, args.files)
        env = {**os.environ, "AFFECTLLM_HOME": str(tmp / "home"), "AFFECTLLM_WHEEL_DIR": str(wheel)}
        official_code = OFFICIAL.format(bench=str(ROOT / "bench"), root=str(ROOT))

        def ours(i: int, f: Path) -> float:
            out = tmp / f"out_{i:02d}"
            subprocess.run([*cli, "eval", "score", "--task", "ov-mer", "--gt", str(gt), "--pred", str(f),
                            "--out", str(out), "--no-html"], check=True, env=env, capture_output=True)
            return float(json.loads((out / "results.json").read_text())["M-avg"])

        t0 = time.perf_counter()
        first = ours(99, files[0])  # builds the disk cache in the fresh AFFECTLLM_HOME
        cold = time.perf_counter() - t0
        ours_t = base_t = 0.0
        agree = []
        for i, f in enumerate(files):  # interleaved, so both sides see the same machine load
            t0 = time.perf_counter()
            a = ours(i, f)
            ours_t += time.perf_counter() - t0
            t0 = time.perf_counter()
            b = float(subprocess.run([sys.executable, "-c", official_code, str(wheel), str(gt), str(f)], check=True,
                                     env=env, capture_output=True, text=True).stdout.strip().splitlines()[-1])
            base_t += time.perf_counter() - t0
            agree.append(abs(a - b))
        n = len(files)
        print(f"affectllm eval score: {n} processes, {ours_t:.1f} s ({ours_t / n:.2f} s per file, results.json + "
              f"samples.jsonl written); the first one on an empty cache {cold:.2f} s (M-avg {first:.4f})")
        print(f"official-style: {n} processes, {base_t:.1f} s ({base_t / n:.2f} s per file, M-avg printed)")
        print(f"end to end: {base_t / ours_t:.2f}x; M-avg agrees to 1e-12 on {sum(d < 1e-12 for d in agree)}/{n} "
              f"files; load average {os.getloadavg()}")


if __name__ == "__main__":
    main()
