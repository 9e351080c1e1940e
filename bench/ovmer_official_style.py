"""The OV-MER EW metric computed the way the official AffectGPT code computes it: the baseline for
bench/eval_speed.py (not used by the library; needs pandas, which the official code uses).

Structure of the reference (AffectGPT's emotion-wheel evaluation), reproduced here: ground truth and predictions
are read with pandas (``pd.read_csv`` + ``iterrows``, one pass per column, NaN → ''), then one pass per metric
normalises every ground-truth and predicted label through the raw maps (format → synonym → wheel,
../shared/DATA.md rule 5) and averages per-sample precision and recall with ``np.mean``. Both files are read once
per prediction file, as when the reference is called with ``name2gt=`` / ``name2pred=``
(``--reread-gt`` reads the ground truth in every metric call instead, as its ``gt_csv=`` path does). Left out,
flattering the baseline: the reference re-loads its pickled mapping file three times per metric call; here the
maps are built once per process.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from affectllm.evaluation.parsing import parse_list_string
from affectllm.evaluation.resources import WheelResources
from affectllm.evaluation.tables import METRICS, wheel_map


def official_maps(res: WheelResources) -> dict[str, dict[str, str]]:
    return {f"M3-W{k}-L{lv}": wheel_map(res.wheels[k - 1], lv) for k in range(1, 6) for lv in (1, 2)}


def read_column(csv_path: Path, key: str) -> list:
    """One column of a CSV read the reference's way: pandas, row by row, NaN → ''."""
    df = pd.read_csv(csv_path)
    out = []
    for _, row in df.iterrows():
        value = row[key] if key in row else ""
        out.append("" if pd.isna(value) else value)
    return out


def _normalise(label: str, metric: str, fmap: dict, smap: dict, wmaps: dict) -> str:
    if label not in fmap:
        return ""
    if metric == "M1":
        return sorted(fmap[label])[0]
    if metric == "M2":
        return sorted(smap[sorted(fmap[label])[0]])[0]
    candidates = [w for f in fmap[label] for w in smap[f]]
    for w in sorted(candidates):
        if w in wmaps[metric]:
            return wmaps[metric][w]
    return ""


def _label_set(value, metric: str, res: WheelResources, wmaps: dict) -> set[str]:
    labels = [x.lower().strip() for x in parse_list_string(value)]
    return {y for y in (_normalise(x, metric, res.format_map, res.synonym_map, wmaps) for x in labels) if y}


def overlap_rate(name2gt: dict, name2pred: dict, metric: str, res: WheelResources, wmaps: dict) -> tuple[float, float]:
    precision, recall = [], []
    for name, gt_value in name2gt.items():
        gt = _label_set(gt_value, metric, res, wmaps)
        if not gt:
            continue
        pred = _label_set(name2pred.get(name, ""), metric, res, wmaps)
        precision.append(len(gt & pred) / len(pred) if pred else 0)
        recall.append(len(gt & pred) / len(gt) if pred else 0)
    return (float(np.mean(precision)) if precision else 0.0, float(np.mean(recall)) if recall else 0.0)


def _read(path: Path) -> dict:
    return dict(zip(read_column(path, "name"), read_column(path, "openset"), strict=True))


def official_style_m_avg(gt_csv: Path, pred_csv: Path, res: WheelResources, wmaps: dict,
                         reread_gt: bool = False) -> float:
    name2pred = _read(pred_csv)
    name2gt = None if reread_gt else _read(gt_csv)
    fs = []
    for metric in METRICS:
        p, r = overlap_rate(name2gt or _read(gt_csv), name2pred, metric, res, wmaps)
        fs.append(2 * p * r / (p + r) if p + r else 0.0)
    return float(np.mean(fs))
