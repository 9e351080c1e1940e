"""One-hot (closed label set) metrics: accuracy, weighted F1, UAR, WAR, confusion matrix, and the mapping from an
open-vocabulary prediction to one class of the set.

Definitions (as in sklearn): WAR = weighted average recall = accuracy; UAR = unweighted mean of per-class
recall over the classes present in the ground truth; weighted F1 = per-class F1 weighted by ground-truth support.
A prediction that maps to no class is a wrong answer (it appears as the "<unmapped>" column of the confusion).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence

from affectllm.evaluation.normalise import Normaliser
from affectllm.evaluation.tables import LEVEL1_METRICS, METRICS

UNMAPPED = "<unmapped>"
# Dataset class names that mean the same class (MER-UniBench's emo2idx aliases).
ALIASES = {"joy": "happy", "happiness": "happy", "anger": "angry", "sadness": "sad", "fear": "fearful",
           "surprise": "surprised", "disgusted": "disgust", "worry": "worried"}
_VOTE_METRICS = tuple(METRICS.index(k) for k in ("M2", *LEVEL1_METRICS))


def canonical_class(label: str) -> str:
    """A class name or label with dataset aliases folded (joy → happy, anger → angry, …)."""
    lab = label.lower().strip()
    return ALIASES.get(lab, lab)


class ClassMapper:
    """Maps open labels to one class of a closed set, deterministically.

    For the first predicted label that decides: (1) the label, or its alias, is a class name → that class;
    (2) else the class whose strict normalised forms (M2 and the five level-1 wheels) agree with the label's on
    the most metrics (ties → the earlier class of the task's label list). Labels that match nothing are skipped.
    Strict tables are used so that e.g. "fear" cannot reach "happy" through fear → fearless → brave.
    """

    def __init__(self, classes: Sequence[str], norm: Normaliser) -> None:
        self.classes = list(classes)
        self.norm = norm
        self._exact = {canonical_class(c): c for c in self.classes}
        self._class_forms = [[norm.tables.lookup(canonical_class(c), True)[i] or norm.tables.lookup(c.lower(), True)[i]
                              for i in _VOTE_METRICS] for c in self.classes]

    def label_class(self, label: str) -> str | None:
        lab = canonical_class(label)
        if lab in self._exact:
            return self._exact[lab]
        row = self.norm.tables.lookup(lab, True)
        forms = [row[i] for i in _VOTE_METRICS]
        best, best_votes = None, 0
        for c, cforms in zip(self.classes, self._class_forms, strict=True):
            votes = sum(1 for a, b in zip(forms, cforms, strict=True) if a and a == b)
            if votes > best_votes:
                best, best_votes = c, votes
        return best

    def predict(self, labels: Sequence[str]) -> str:
        for lab in labels:
            c = self.label_class(lab)
            if c is not None:
                return c
        return UNMAPPED


def classification_metrics(y_true: Sequence[str], y_pred: Sequence[str], classes: Sequence[str]) -> dict[str, object]:
    """accuracy, WAR, UAR, weighted F1, macro F1, per-class P/R/F/support and the confusion matrix."""
    n = len(y_true)
    if n == 0:
        return {"accuracy": 0.0, "WAR": 0.0, "UAR": 0.0, "weighted_f1": 0.0, "macro_f1": 0.0, "n": 0}
    support = Counter(y_true)
    predicted = Counter(y_pred)
    correct = Counter(t for t, p in zip(y_true, y_pred, strict=True) if t == p)
    per_class: dict[str, dict[str, float]] = {}
    for c in [*classes, *sorted(set(support) - set(classes))]:
        tp, sup, prd = correct[c], support[c], predicted[c]
        prec = tp / prd if prd else 0.0
        rec = tp / sup if sup else 0.0
        per_class[c] = {"precision": prec, "recall": rec, "f1": 2 * prec * rec / (prec + rec) if prec + rec else 0.0,
                        "support": sup}
    present = [c for c in per_class if support[c]]
    acc = sum(correct.values()) / n
    rows = [*classes, *sorted(set(support) - set(classes))]
    cols = rows + ([UNMAPPED] if UNMAPPED in predicted else []) + sorted(set(predicted) - set(rows) - {UNMAPPED})
    pairs = Counter(zip(y_true, y_pred, strict=True))
    return {
        "accuracy": acc,
        "WAR": acc,
        "UAR": math.fsum(per_class[c]["recall"] for c in present) / len(present),
        "weighted_f1": math.fsum(per_class[c]["f1"] * support[c] for c in present) / n,
        "macro_f1": math.fsum(per_class[c]["f1"] for c in present) / len(present),
        "n": n,
        "per_class": per_class,
        "confusion": {"rows": rows, "cols": cols, "matrix": [[pairs[(r, c)] for c in cols] for r in rows]},
    }


def binary_metrics(y_true: Sequence[bool], y_pred: Sequence[bool]) -> dict[str, float]:
    """Accuracy and weighted F1 of a binary task (sklearn ``f1_score(average='weighted')``)."""
    t = ["pos" if x else "neg" for x in y_true]
    p = ["pos" if x else "neg" for x in y_pred]
    m = classification_metrics(t, p, ["neg", "pos"])
    return {"accuracy": m["accuracy"], "weighted_f1": m["weighted_f1"], "n": m["n"]}
