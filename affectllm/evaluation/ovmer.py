"""The open-vocabulary set metrics: OV-MER EW metrics (M1, M2, M3 × 5 wheels × 2 levels), the MER2024
synonym-group metric, and the MER-UniBench HIT rate. Definitions: ../shared/DATA.md rules 6-9.

Per sample, G and P are the normalised ground-truth and prediction sets (bit masks, see normalise.py):
  precision = |G∩P|/|P| and recall = |G∩P|/|G| (both 0 when P is empty); samples with empty G are skipped.
Corpus P and R are the means over kept samples and F = 2PR/(P+R) of those means (not the mean of per-sample F).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from itertools import chain

import numpy as np

from affectllm.evaluation.normalise import Masks, Normaliser
from affectllm.evaluation.parsing import clean_labels, parse_group_string, parse_list_string_mer2024
from affectllm.evaluation.tables import LEVEL1_METRICS, LEVEL2_METRICS, METRICS


def f_score(p: float, r: float) -> float:
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


@dataclass
class SetScore:
    precision: float
    recall: float
    f1: float
    n_scored: int  # samples with a non-empty normalised ground truth
    per_sample: list[tuple[float, float] | None]  # (P, R) per sample, None where skipped

    def to_dict(self) -> dict[str, float | int]:
        return {"precision": self.precision, "recall": self.recall, "f1": self.f1, "n_scored": self.n_scored}


WORD_BITS = 20  # a set element is coded ((metric * N + sample) << WORD_BITS) | word id


class SampleSets:
    """Every sample's normalised label set under every metric, as one sorted array of unique element codes
    (metric, sample, word): the vectorised form the set arithmetic runs on. N = number of samples."""

    def __init__(self, n: int, metric: np.ndarray, sample: np.ndarray, word: np.ndarray) -> None:
        self.n = n
        codes = np.sort(((metric * n + sample) << WORD_BITS) | word)
        if codes.size:  # unique: a label repeated (or two labels with one normalised word) counts once
            codes = codes[np.concatenate(([True], codes[1:] != codes[:-1]))]
        self.codes = codes  # [E] int64, sorted
        self.sizes = np.bincount(self.codes >> WORD_BITS, minlength=len(METRICS) * n).reshape(len(METRICS), n)

    @classmethod
    def from_masks(cls, masks: Sequence[Masks]) -> SampleSets:
        """From per-sample bit masks (normalise.py): one element per set bit."""
        m: list[int] = []
        s: list[int] = []
        w: list[int] = []
        for j, row in enumerate(masks):
            for i, mask in enumerate(row):
                while mask:
                    low = mask & -mask
                    m.append(i)
                    s.append(j)
                    w.append(low.bit_length() - 1)
                    mask ^= low
        return cls(len(masks), np.array(m, np.int64), np.array(s, np.int64), np.array(w, np.int64))

    @classmethod
    def from_labels(cls, norm: Normaliser, labels: Sequence[Sequence[str]]) -> SampleSets:
        """From cleaned label lists: each label's word id per metric is memoised by the normaliser, so a prediction
        file costs one dict lookup per label and a few array operations."""
        ids = norm.label_ids
        k = len(METRICS)
        counts = np.fromiter(map(len, labels), np.int64, len(labels))  # labels per sample
        flat = [ids(lab) for labs in labels for lab in labs]
        word = np.fromiter(chain.from_iterable(flat), np.int64, len(flat) * k).reshape(-1, k)  # [L, 12], -1 = dropped
        sample = np.repeat(np.repeat(np.arange(len(labels), dtype=np.int64), counts), k).reshape(-1, k)  # [L, 12]
        metric = np.broadcast_to(np.arange(k, dtype=np.int64), word.shape)  # [L, 12]
        keep = word >= 0
        return cls(len(labels), metric[keep], sample[keep], word[keep])


class GTColumns:
    """The ground truth prepared once for scoring many prediction files against it: its sets (``SampleSets``),
    |G| per metric and sample, and which samples each metric keeps (non-empty G)."""

    def __init__(self, gt: Sequence[Masks] | SampleSets) -> None:
        self.sets = gt if isinstance(gt, SampleSets) else SampleSets.from_masks(gt)
        self.n = self.sets.n
        self.kept = self.sets.sizes > 0  # [12, N]
        self.n_kept = self.kept.sum(axis=1).tolist()  # [12]


def ew_metrics(gt: Sequence[Masks] | GTColumns, pred: Sequence[Masks] | SampleSets,
               keep_per_sample: bool = True) -> dict[str, SetScore]:
    """All 12 OV-MER metrics, keyed M1, M2, M3-W1-L1 … M3-W5-L2, computed on every sample and metric at once."""
    cols = gt if isinstance(gt, GTColumns) else GTColumns(gt)
    p = pred if isinstance(pred, SampleSets) else SampleSets.from_masks(pred)
    if cols.n != p.n:
        raise ValueError(f"{cols.n} ground-truth samples but {p.n} predictions; align them by id first")
    k, n = len(METRICS), cols.n
    hit = np.isin(p.codes, cols.sets.codes, assume_unique=True)  # [E_pred] element also in G
    inter = np.bincount(p.codes[hit] >> WORD_BITS, minlength=k * n).reshape(k, n)  # |G ∩ P|, [12, N]
    has_p = p.sizes > 0
    prec = np.where(has_p, inter / np.maximum(p.sizes, 1), 0.0)  # [12, N]
    rec = np.where(has_p, inter / np.maximum(cols.sets.sizes, 1), 0.0)
    out: dict[str, SetScore] = {}
    for i, name in enumerate(METRICS):
        kept = cols.kept[i]
        nk = cols.n_kept[i]
        mp = math.fsum(prec[i][kept].tolist()) / nk if nk else 0.0
        mr = math.fsum(rec[i][kept].tolist()) / nk if nk else 0.0
        per: list[tuple[float, float] | None] = []
        if keep_per_sample:
            per = [(a, b) if kk else None for a, b, kk in zip(prec[i].tolist(), rec[i].tolist(), kept.tolist())]
        out[name] = SetScore(mp, mr, f_score(mp, mr), nk, per)
    return out


def ew_summary(scores: dict[str, SetScore]) -> dict[str, float]:
    """M-avg (mean of the 12 F), the MER-UniBench OV score (mean level-1 wheel F), level-2 mean, MER2025 track 2."""
    l1 = math.fsum(scores[k].f1 for k in LEVEL1_METRICS) / len(LEVEL1_METRICS)
    l2 = math.fsum(scores[k].f1 for k in LEVEL2_METRICS) / len(LEVEL2_METRICS)
    return {
        "M-avg": math.fsum(s.f1 for s in scores.values()) / len(scores),
        "EW-L1": l1,
        "EW-L2": l2,
        "MER2025-track2": (l1 + l2) / 2,
    }


def ew_block(gt: Sequence[Masks] | GTColumns, pred: Sequence[Masks] | SampleSets) -> dict[str, object]:
    """results.json block: each metric as {precision, recall, f1, n_scored}, then the summary numbers."""
    scores = ew_metrics(gt, pred, keep_per_sample=False)
    out: dict[str, object] = {k: v.to_dict() for k, v in scores.items()}
    out.update(ew_summary(scores))
    return out


# ---------------------------------------------------------------------------------------------- MER2024 groups
def group_map(groups: Sequence[Sequence[str]]) -> dict[str, str]:
    """Each label → the first member of its synonym group (later groups overwrite, as in the reference)."""
    out: dict[str, str] = {}
    for g in groups:
        for item in g:
            out[item] = g[0]
    return out


def mer2024_metric(ids: Sequence[str], gt: dict[str, object], pred: dict[str, object],
                   groups: dict[str, object]) -> dict[str, object]:
    """MER2024 OV track: labels mapped to their synonym group's first member; P and R averaged over the samples
    that have groups; score = (P + R) / 2. ``groups`` values are list-of-lists or their string form."""
    ps: list[float] = []
    rs: list[float] = []
    skipped_empty_gt = 0
    per: dict[str, tuple[float, float]] = {}
    for sid in ids:
        if sid not in groups:
            continue
        gm = group_map(parse_group_string(groups[sid]))
        g = {gm.get(x, x) for x in (s.lower() for s in parse_list_string_mer2024(gt.get(sid)))}
        p = {gm.get(x, x) for x in (s.lower() for s in parse_list_string_mer2024(pred.get(sid)))}
        if not g:  # the reference divides by zero here; we skip and count it
            skipped_empty_gt += 1
            continue
        pr, rc = (len(g & p) / len(p), len(g & p) / len(g)) if p else (0.0, 0.0)
        ps.append(pr)
        rs.append(rc)
        per[sid] = (pr, rc)
    n = len(ps)
    mp = math.fsum(ps) / n if n else 0.0
    mr = math.fsum(rs) / n if n else 0.0
    return {"precision": mp, "recall": mr, "score": (mp + mr) / 2, "n_scored": n,
            "n_without_groups": sum(1 for s in ids if s not in groups), "skipped_empty_gt": skipped_empty_gt,
            "per_sample": per}


# ---------------------------------------------------------------------------------------------- HIT rate
def hit_rate(gt: Sequence[Sequence[str]], pred: Sequence[Sequence[str]], norm: Normaliser,
             first_only: bool = False) -> dict[str, object]:
    """MER-UniBench one-hot score: per level-1 wheel metric, the mean over samples with a non-empty normalised
    ground truth of |G∩P|; averaged over the five wheels. Also the reference's "mscore" (|G∩P| / |P∩C|, C =
    the normalised label set of the whole ground truth). ``first_only`` keeps only the first predicted label
    (the strict one-label-per-sample variant)."""
    idx = [METRICS.index(k) for k in LEVEL1_METRICS]
    gmasks = [norm.masks(clean_labels(g)) for g in gt]
    pmasks = [norm.masks(clean_labels(p[:1] if first_only else p)) for p in pred]
    cand_all = norm.masks({lab for g in gt for lab in clean_labels(g)})
    per_wheel: dict[str, dict[str, float]] = {}
    per_sample: list[float | None] = [None] * len(gt)
    for name, m in zip(LEVEL1_METRICS, idx, strict=True):
        hits: list[int] = []
        ms: list[float] = []
        for j, (g_all, p_all) in enumerate(zip(gmasks, pmasks, strict=True)):
            g, p = g_all[m], p_all[m]
            if not g:
                continue
            h = (g & p).bit_count()
            hits.append(h)
            denom = (p & cand_all[m]).bit_count()
            ms.append(h / denom if denom else 0.0)
            per_sample[j] = (per_sample[j] or 0.0) + h / len(idx)
        n = len(hits)
        per_wheel[name] = {"hit_rate": sum(hits) / n if n else 0.0, "mscore": math.fsum(ms) / n if n else 0.0,
                           "n_scored": n}
    return {
        "hit_rate": math.fsum(v["hit_rate"] for v in per_wheel.values()) / len(per_wheel),
        "mscore": math.fsum(v["mscore"] for v in per_wheel.values()) / len(per_wheel),
        "per_wheel": per_wheel,
        "per_sample": per_sample,
    }
