"""Benchmark: the public ``affectllm.evaluation.score()`` on 30 prediction files × the 12 OV-MER metrics against
the 332-sample OV-MERD ground truth, beside the official-style code (bench/ovmer_official_style.py) in the same run.

The prediction files are made by perturbing ../shared/data/mer2024_ov/predict-openset.csv (seeded: labels dropped,
replaced by ground-truth vocabulary, shuffled). Both sides get their resources loaded before the clock starts
(printed apart: cold from the xlsx/csv files and warm from the disk cache); each timed loop then scores every file
from its path, in a fresh order-independent way: ``score()`` returns the full results.json content (official +
strict + chance floor + provenance; ``synonym_groups={}`` as the MER2024 groups, no judge), the baseline the
M-avg. The M-avg of both is compared per file. Target: ``score()`` ≥ 12× the official-style code.

    PYTHONPATH=. .venv/bin/python bench/eval_speed.py [--files 30] [--shared ../shared] [--repeat 3]
"""

from __future__ import annotations

import argparse
import csv
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from ovmer_official_style import official_maps, official_style_m_avg  # noqa: E402

from affectllm.evaluation import score  # noqa: E402 - the public call
from affectllm.evaluation.normalise import clear_caches, get_resources, get_tables  # noqa: E402
from affectllm.evaluation.parsing import format_list_string, parse_list_string  # noqa: E402
from affectllm.paths import shared_dir  # noqa: E402


def ovmer_inputs(shared: Path | None) -> tuple[Path, Path, Path]:
    """(wheel folder, OV-MERD ground truth, the shipped predictions) under ../shared; exits when it is absent."""
    if shared is None:
        sys.exit("../shared not found; pass --shared PATH")
    ov = shared / "data" / "mer2024_ov"
    return shared / "data" / "emotion_wheel", ov / "check-openset.csv", ov / "predict-openset.csv"


def make_files(pred_csv: Path, gt_csv: Path, out: Path, n: int, seed: int = 0) -> list[Path]:
    rng = random.Random(seed)
    rows = list(csv.DictReader(open(pred_csv, encoding="utf-8")))
    vocab = sorted({x for r in csv.DictReader(open(gt_csv, encoding="utf-8")) for x in parse_list_string(r["openset"])})
    paths = []
    for i in range(n):
        p = out / f"pred_{i:02d}.csv"
        with open(p, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["name", "openset"])
            for r in rows:
                labels = parse_list_string(r["openset"])
                labels = [x for x in labels if rng.random() > 0.2]
                labels += rng.sample(vocab, k=rng.randint(0, 2))
                rng.shuffle(labels)
                w.writerow([r["name"], format_list_string(labels)])
        paths.append(p)
    return paths


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--files", type=int, default=30)
    ap.add_argument("--shared", type=Path, default=shared_dir())
    ap.add_argument("--repeat", type=int, default=3, help="timed loops per side; the best is reported")
    ap.add_argument("--reread-gt", action="store_true",
                    help="baseline reads the ground truth in every metric call (the reference's gt_csv= path)")
    args = ap.parse_args()
    wheel, gt_csv, pred_csv = ovmer_inputs(args.shared)
    print("command: PYTHONPATH=. python " + " ".join(["bench/eval_speed.py", *sys.argv[1:]]))

    t0 = time.perf_counter()
    get_tables(wheel, use_disk_cache=False)
    cold = time.perf_counter() - t0
    get_tables(wheel)  # writes the disk cache
    clear_caches()
    t0 = time.perf_counter()
    get_tables(wheel)
    warm = time.perf_counter() - t0
    res = get_resources(wheel)
    wmaps = official_maps(res)
    print(f"resource loading (before the clocks): {cold:.3f} s from the xlsx/csv files, {warm:.3f} s from the "
          f"disk cache")

    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(pred_csv, gt_csv, Path(tmp), args.files)
        base_t, ours_t, base_c, ours_c = [], [], [], []
        for _ in range(args.repeat):  # interleaved, so both sides see the same machine load
            t0, c0 = time.perf_counter(), time.process_time()
            base = [official_style_m_avg(gt_csv, p, res, wmaps, args.reread_gt) for p in files]
            base_t.append(time.perf_counter() - t0)
            base_c.append(time.process_time() - c0)
            t0, c0 = time.perf_counter(), time.process_time()
            ours = [score("ov-mer", gt_csv, p, wheel, synonym_groups={})["M-avg"] for p in files]
            ours_t.append(time.perf_counter() - t0)
            ours_c.append(time.process_time() - c0)
        worst = max(abs(a - b) for a, b in zip(base, ours))
        n = len(files)
        b, o, bc, oc = min(base_t), min(ours_t), min(base_c), min(ours_c)
        print(f"official-style code: {n} files x 12 metrics x 332 samples: {b:.3f} s wall, {bc:.3f} s CPU "
              f"({b / n * 1000:.1f} ms per file)")
        print(f"affectllm.evaluation.score(): {n} files (official + strict + chance floor + provenance): {o:.3f} s "
              f"wall, {oc:.3f} s CPU ({o / n * 1000:.1f} ms per file); first loop (ground-truth caches cold) "
              f"{ours_t[0]:.3f} s wall")
        print(f"speed-up {b / o:.1f}x wall, {bc / oc:.1f}x CPU (target >= 12x: {'PASS' if b / o >= 12 else 'FAIL'}); "
              f"M-avg agrees to 1e-12: {worst < 1e-12} (max |diff| {worst:.1e}); M-avg range "
              f"{min(ours):.4f}..{max(ours):.4f}; best of {args.repeat} loops each")


if __name__ == "__main__":
    main()
