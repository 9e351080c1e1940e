"""Held-out evaluation during training: mean loss on assistant tokens, and optionally greedy generation scored
on labels (strict set precision / recall / F1 of normalised labels, the official OV-MER averaging: means of
per-sample P and R, then F from the means; the wheel-normalised OV-MER metrics live in affectllm.evaluation).
"""

from __future__ import annotations

from typing import Any

import torch

from affectllm.engine.decoding import GenerationSettings, decode
from affectllm.report import normalise_labels, parse_report
from affectllm.training.data import Collator, TrainBatch
from affectllm.training.features import batch_tower_outputs


def _batches(rows, collator: Collator, batch_size: int, max_samples: int):
    n = min(len(rows), max_samples)
    for start in range(0, n, batch_size):
        yield collator([rows[i] for i in range(start, min(n, start + batch_size))])


@torch.no_grad()
def eval_loss(model, rows, collator: Collator, cache, device, batch_size: int, max_samples: int,
              autocast=None) -> dict[str, float]:
    """Token-weighted mean loss over the first ``max_samples`` rows (model in eval mode, no gradients)."""
    was_training = model.training
    model.eval()
    total, tokens, used = 0.0, 0, 0
    for batch in _batches(rows, collator, batch_size, max_samples):
        if not len(batch):
            continue
        out = _forward(model, batch, cache, device, autocast)
        n = int((batch.text["labels"][:, 1:] != -100).sum())
        total += float(out.loss) * n
        tokens += n
        used += len(batch)
    model.train(was_training)
    return {"eval_loss": total / max(tokens, 1), "eval_samples": used}


def _forward(model, batch: TrainBatch, cache, device, autocast=None):
    inner = getattr(model, "module", model)
    towers = batch_tower_outputs(inner, batch, cache, device)
    text = {k: v.to(device) for k, v in batch.text.items()}
    if autocast is None:
        return model(**text, tower_outputs=towers)
    with autocast():
        return model(**text, tower_outputs=towers)


@torch.no_grad()
def generate_rows(model, rows, collator: Collator, cache, device, batch_size: int = 8,
                  max_new_tokens: int = 64) -> list[dict[str, Any]]:
    """Greedy generation for each row's first user turn -> [{id, target, text}] (rows that fail are skipped)."""
    assert collator.prompt_only, "generate_rows needs a Collator(prompt_only=True)"
    was_training = model.training
    model.eval()
    out: list[dict[str, Any]] = []
    for batch in _batches(rows, collator, batch_size, len(rows)):
        if not len(batch):
            continue
        towers = batch_tower_outputs(model, batch, cache, device)
        ids = batch.text["input_ids"].to(device)
        inputs = {"input_ids": ids, "attention_mask": batch.text["attention_mask"].to(device), "tower_outputs": towers}
        settings = GenerationSettings(max_new_tokens=max_new_tokens)  # the engine's greedy decoder, as at inference
        texts = [d.text for d in decode(model, collator.processor.tokenizer, inputs, settings)]
        for rm, text in zip(batch.rows, texts):
            out.append({"id": rm.row_id, "target": rm.target, "text": text})
    model.train(was_training)
    return out


def label_scores(generations: list[dict[str, Any]]) -> dict[str, float]:
    """Strict label P / R / F1 and exact-set accuracy of parsed generations against their targets."""
    ps, rs, exact, n = [], [], 0, 0
    for g in generations:
        want = set(normalise_labels(parse_report(g["target"] or "").labels))
        if not want:
            continue
        got = set(parse_report(g["text"]).labels)
        n += 1
        hit = len(want & got)
        ps.append(hit / len(got) if got else 0.0)
        rs.append(hit / len(want))
        exact += int(got == want)
    if not n:
        return {}
    p, r = sum(ps) / n, sum(rs) / n
    return {"label_precision": p, "label_recall": r, "label_f1": 2 * p * r / (p + r) if p + r else 0.0,
            "label_exact": exact / n, "label_samples": n}
