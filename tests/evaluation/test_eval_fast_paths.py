"""The fast scoring path: ground-truth caches never go stale, score() (no per-sample rows) gives the numbers that
evaluate() gives, and the vectorised set arithmetic equals the per-sample definition (DATA.md rules 6-7)."""

from __future__ import annotations

import math
import random
import shutil

from affectllm.evaluation import evaluate, score
from affectllm.evaluation.ovmer import GTColumns, SampleSets, ew_metrics
from affectllm.evaluation.tables import METRICS

NUMBERS = ("M-avg", "EW-L1", "EW-L2", "MER2025-track2", *METRICS)


def test_score_equals_evaluate_and_tracks_a_changed_ground_truth(ov, wheel_dir, tmp_path):
    full = evaluate("ov-mer", ov["gt"], ov["pred"], wheel_dir, synonym_groups={}).results
    fast = score("ov-mer", ov["gt"], ov["pred"], wheel_dir, synonym_groups={})
    assert {k: fast[k] for k in NUMBERS} == {k: full[k] for k in NUMBERS}
    assert fast["strict"] == full["strict"] and fast["chance_floor"] == full["chance_floor"]
    assert round(fast["M-avg"], 6) == 0.459184  # DATA.md reference value

    gt = tmp_path / "gt.csv"
    shutil.copy(ov["gt"], gt)
    assert score("ov-mer", gt, ov["pred"], wheel_dir, synonym_groups={})["M-avg"] == fast["M-avg"]
    lines = gt.read_text(encoding="utf-8").splitlines()
    gt.write_text("\n".join([lines[0], *(ln.split(",", 1)[0] + ",\"['happy']\"" for ln in lines[1:])]) + "\n",
                  encoding="utf-8")  # same path, other content: the cached ground truth must not be reused
    changed = score("ov-mer", gt, ov["pred"], wheel_dir, synonym_groups={})
    assert changed["M-avg"] != fast["M-avg"]
    assert changed["gt_file"]["sha256"] != fast["gt_file"]["sha256"]


def _literal(gt: list[tuple[int, ...]], pred: list[tuple[int, ...]], m: int) -> tuple[float, float]:
    ps, rs = [], []
    for g_row, p_row in zip(gt, pred):
        g = {i for i in range(64) if g_row[m] >> i & 1}
        p = {i for i in range(64) if p_row[m] >> i & 1}
        if not g:
            continue
        ps.append(len(g & p) / len(p) if p else 0.0)
        rs.append(len(g & p) / len(g) if p else 0.0)
    return (math.fsum(ps) / len(ps), math.fsum(rs) / len(rs)) if ps else (0.0, 0.0)


def test_vectorised_set_scores_equal_the_per_sample_definition():
    rng = random.Random(0)

    def masks() -> tuple[int, ...]:
        return tuple(sum(1 << rng.randrange(40) for _ in range(rng.choice([0, 0, 1, 2, 4]))) for _ in METRICS)

    gt = [masks() for _ in range(200)]
    pred = [masks() for _ in range(200)]
    cols = GTColumns(gt)
    for sets in (pred, SampleSets.from_masks(pred)):
        got = ew_metrics(cols, sets)
        for m, name in enumerate(METRICS):
            want = _literal(gt, pred, m)
            assert math.isclose(got[name].precision, want[0], abs_tol=1e-15)
            assert math.isclose(got[name].recall, want[1], abs_tol=1e-15)
            kept = [j for j, g in enumerate(gt) if g[m]]
            assert got[name].n_scored == len(kept)
            assert [j for j, x in enumerate(got[name].per_sample) if x is not None] == kept
