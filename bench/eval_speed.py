"""Benchmark: score 30 prediction files × the 12 OV-MER metrics against the 332-sample OV-MERD ground truth.

The prediction files are made by perturbing ../shared/data/mer2024_ov/predict-openset.csv (seeded: labels dropped,
replaced by ground-truth vocabulary, shuffled). Prints the resource-loading time (cold from the xlsx/csv files and
warm from the disk cache) apart from the scoring time. Target: ≤ 0.5 s for the 30 files (the reference code needs
about 6 s for such a batch on this machine kind).

    .venv/bin/python bench/eval_speed.py [--files 30] [--shared ../shared]
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

from affectllm.evaluation.io import load_samples  # noqa: E402
from affectllm.evaluation.normalise import Normaliser, clear_caches, get_tables  # noqa: E402
from affectllm.evaluation.ovmer import GTColumns, ew_block  # noqa: E402
from affectllm.evaluation.parsing import clean_labels, format_list_string, parse_list_string  # noqa: E402
from affectllm.evaluation.scoring import score  # noqa: E402
from affectllm.paths import shared_dir  # noqa: E402


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
    args = ap.parse_args()
    if args.shared is None:
        sys.exit("../shared not found; pass --shared PATH")
    wheel = args.shared / "data" / "emotion_wheel"
    gt_csv = args.shared / "data" / "mer2024_ov" / "check-openset.csv"
    pred_csv = args.shared / "data" / "mer2024_ov" / "predict-openset.csv"

    t0 = time.perf_counter()
    tables = get_tables(wheel, use_disk_cache=False)
    cold = time.perf_counter() - t0
    get_tables(wheel)  # writes the disk cache
    clear_caches()
    t0 = time.perf_counter()
    tables = get_tables(wheel)
    warm = time.perf_counter() - t0
    print(f"resource loading: {cold:.3f} s from the xlsx/csv files, {warm:.3f} s from the disk cache")

    with tempfile.TemporaryDirectory() as tmp:
        files = make_files(pred_csv, gt_csv, Path(tmp), args.files)
        norm = Normaliser(tables)
        gt = load_samples(gt_csv)
        ids = gt.ids
        g_cols = GTColumns([norm.masks(clean_labels(parse_list_string(gt.records[i].labels))) for i in ids])

        t0, c0 = time.perf_counter(), time.process_time()
        m_avg = []
        for p in files:
            pred = load_samples(p)
            recs = pred.records
            p_masks = [norm.masks(clean_labels(parse_list_string(recs[i].labels))) if i in recs else norm.masks([])
                       for i in ids]
            m_avg.append(ew_block(g_cols, p_masks)["M-avg"])
        core, cpu = time.perf_counter() - t0, time.process_time() - c0
        print(f"{len(files)} files x 12 metrics x {len(ids)} samples (read + parse + normalise + score): "
              f"{core:.3f} s wall, {cpu:.3f} s CPU ({core / len(files) * 1000:.1f} ms per file); target <= 0.5 s: "
              f"{'PASS' if core <= 0.5 else 'FAIL'}; M-avg range {min(m_avg):.4f}..{max(m_avg):.4f}")

        t0 = time.perf_counter()
        for p in files:
            score("ov-mer", gt_csv, p, wheel, synonym_groups={})
        full = time.perf_counter() - t0
        print(f"{len(files)} files through affectllm.evaluation.score (official + strict + chance floor + "
              f"provenance): {full:.3f} s ({full / len(files) * 1000:.1f} ms per file)")


if __name__ == "__main__":
    main()
