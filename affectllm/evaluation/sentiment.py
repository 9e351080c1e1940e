"""Sentiment metrics for the MER-UniBench dimensional sets (CMU-MOSI, CMU-MOSEI, CH-SIMS, CH-SIMS v2).

Official protocol (../shared/DATA.md rule 10): predictions become +1 / −1 / 0 (positive / negative / neutral),
samples whose ground-truth valence is 0 are removed, and accuracy and weighted F1 are computed on
(gt > 0) vs (pred > 0) — so a neutral prediction counts as negative.

Strict variants, reported beside: ``acc2_strict`` (same samples, but a neutral prediction is wrong whatever the
truth) and ``acc3`` (all samples, three classes by sign, ground-truth neutral included).
"""

from __future__ import annotations

from collections.abc import Sequence

from affectllm.evaluation.onehot import binary_metrics, classification_metrics


def sign(x: float) -> int:
    return (x > 0) - (x < 0)


def sentiment_metrics(gt: Sequence[float], pred: Sequence[float]) -> dict[str, object]:
    """Official accuracy / weighted F1 plus the strict variants; ``pred`` values are any real numbers."""
    keep = [i for i, g in enumerate(gt) if g != 0]
    official = binary_metrics([gt[i] > 0 for i in keep], [pred[i] > 0 for i in keep])
    strict2 = sum(1 for i in keep if sign(pred[i]) == sign(gt[i])) / len(keep) if keep else 0.0
    names = {1: "positive", 0: "neutral", -1: "negative"}
    three = classification_metrics([names[sign(g)] for g in gt], [names[sign(p)] for p in pred],
                                    ["negative", "neutral", "positive"])
    n_neutral_pred = sum(1 for i in keep if pred[i] == 0)
    return {
        "accuracy": official["accuracy"],
        "weighted_f1": official["weighted_f1"],
        "n_scored": len(keep),
        "n_gt_neutral_removed": len(gt) - len(keep),
        "n_neutral_predictions_counted_negative": n_neutral_pred,
        "strict": {"acc2_strict": strict2, "acc3": three["accuracy"], "weighted_f1_3": three["weighted_f1"]},
    }
