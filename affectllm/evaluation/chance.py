"""The chance floor: what a constant predictor scores on the same ground truth.

The official OV metrics reward constant guessing (a fixed list of frequent emotions beats several published
MLLMs on OV-MERD), so every results.json carries the score of predicting the k most frequent ground-truth
labels for every sample, k = 1..5, with the best k. Frequencies count each label once per sample (lower-cased,
stripped, as written in the ground truth); ties are broken alphabetically so the floor is deterministic.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence

from affectllm.evaluation.normalise import Normaliser
from affectllm.evaluation.onehot import ClassMapper, classification_metrics
from affectllm.evaluation.ovmer import GTColumns, ew_block, hit_rate
from affectllm.evaluation.parsing import clean_labels
from affectllm.evaluation.sentiment import sentiment_metrics

K_MAX = 5
_MEMO: dict[tuple, dict[str, object]] = {}  # (resources, ground truth) → openset floor


def most_frequent(gt: Sequence[Sequence[str]], k: int) -> list[str]:
    counts = Counter(lab for labels in gt for lab in dict.fromkeys(clean_labels(labels)) if lab)
    return [lab for lab, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[:k]]


def openset_floor(gt: Sequence[Sequence[str]], official: Normaliser, strict: Normaliser) -> dict[str, object]:
    key = (official.tables.fingerprint, tuple(tuple(g) for g in gt))
    if key in _MEMO:
        return _MEMO[key]
    gmask_o = GTColumns([official.masks(clean_labels(g)) for g in gt])
    gmask_s = GTColumns([strict.masks(clean_labels(g)) for g in gt])
    rows = []
    for k in range(1, K_MAX + 1):
        labels = most_frequent(gt, k)
        if len(labels) < k:
            break
        po, ps = official.masks(labels), strict.masks(labels)
        o = ew_block(gmask_o, [po] * len(gt))
        s = ew_block(gmask_s, [ps] * len(gt))
        rows.append({"k": k, "labels": labels, "M-avg": o["M-avg"], "EW-L1": o["EW-L1"],
                     "strict_M-avg": s["M-avg"]})
    best = max(rows, key=lambda r: r["M-avg"]) if rows else None
    out = {"primary": "M-avg", "best_k": best["k"] if best else None, "best": best, "per_k": rows}
    if len(_MEMO) >= 8:
        _MEMO.clear()
    _MEMO[key] = out
    return out


def onehot_floor(gt: Sequence[Sequence[str]], gt_classes: Sequence[str], classes: Sequence[str],
                 official: Normaliser, mapper: ClassMapper) -> dict[str, object]:
    rows = []
    for k in range(1, K_MAX + 1):
        labels = most_frequent(gt, k)
        if len(labels) < k:
            break
        h = hit_rate(gt, [labels] * len(gt), official)
        row: dict[str, object] = {"k": k, "labels": labels, "hit_rate": h["hit_rate"]}
        if k == 1:
            c = classification_metrics(gt_classes, [mapper.predict(labels)] * len(gt), classes)
            row.update(accuracy=c["accuracy"], UAR=c["UAR"], weighted_f1=c["weighted_f1"])
        rows.append(row)
    best = max(rows, key=lambda r: r["hit_rate"]) if rows else None
    return {"primary": "hit_rate", "best_k": best["k"] if best else None, "best": best, "per_k": rows}


def sentiment_floor(gt: Sequence[float]) -> dict[str, object]:
    rows = []
    for name, value in (("always positive", 1.0), ("always negative", -1.0)):
        m = sentiment_metrics(gt, [value] * len(gt))
        rows.append({"k": 1, "labels": [name], "accuracy": m["accuracy"], "weighted_f1": m["weighted_f1"]})
    best = max(rows, key=lambda r: r["weighted_f1"])
    return {"primary": "weighted_f1", "best_k": 1, "best": best, "per_k": rows}
