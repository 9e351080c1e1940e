"""A lean greedy decoding loop that gives exactly the tokens of ``model.generate(do_sample=False)``.

Why: for a 270M-parameter LLM on a CPU, each decode step is a few milliseconds of matrix-vector work, so the
per-step bookkeeping of ``generate`` (logits processors, stopping criteria, kwargs plumbing) and the LM head
over the whole prompt at prefill (262k-vocabulary logits for every prompt token) are a visible share of the
time. This loop keeps only what greedy decoding needs: prefill with ``logits_to_keep=1``, argmax, the
generation config's ``suppress_tokens``, ``min_new_tokens`` and EOS handling, padding of finished rows.
The model builds its own KV cache on the first call (sliding-window layers included), as under ``generate``.

Equivalence with ``generate`` (same tokens, batch and left padding included) is asserted in
``tests/captioning/test_fast_decode.py``; ``bench/caption_throughput.py`` measures both.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

# generation-config fields that add logits processors the lean loop does not implement
_UNSUPPORTED = {"repetition_penalty": 1.0, "no_repeat_ngram_size": 0, "encoder_no_repeat_ngram_size": 0,
                "bad_words_ids": None, "forced_bos_token_id": None, "forced_eos_token_id": None,
                "begin_suppress_tokens": None, "sequence_bias": None, "exponential_decay_length_penalty": None,
                "renormalize_logits": False, "do_sample": False, "num_beams": 1, "diversity_penalty": 0.0}


def lean_supported(model: Any) -> bool:
    """True when ``model.generate`` would do plain greedy decoding, so the lean loop gives the same tokens."""
    gen = model.generation_config
    return all(getattr(gen, k, default) in (default, None) for k, default in _UNSUPPORTED.items()) and (
        getattr(gen, "num_beams", 1) in (1, None))


def _eos_ids(model: Any) -> list[int]:
    eos = model.generation_config.eos_token_id
    if eos is None:
        return []
    return [int(e) for e in (eos if isinstance(eos, (list, tuple)) else [eos])]


@torch.inference_mode()
def greedy_decode(model: Any, batch: dict[str, Any], max_new_tokens: int, min_new_tokens: int = 0,
                  on_step: Callable[[torch.Tensor], None] | None = None) -> torch.Tensor:
    """``[B, L]`` prompt (+ media tensors) -> ``[B, L + T]`` ids, T <= ``max_new_tokens``.

    ``on_step`` receives each step's ``[B]`` new tokens (for streaming). Finished rows are padded with the
    generation config's ``pad_token_id`` like ``generate`` does.
    """
    gen = model.generation_config
    eos = _eos_ids(model)
    pad = gen.pad_token_id if gen.pad_token_id is not None else (eos[0] if eos else 0)
    suppress = sorted({int(t) for t in (gen.suppress_tokens or [])})
    input_ids = batch["input_ids"]  # [B, L]
    mask = batch.get("attention_mask")
    if mask is None:
        mask = torch.ones_like(input_ids)
    eos_t = torch.tensor(eos, dtype=torch.long, device=input_ids.device)
    sup_t = torch.tensor(suppress, dtype=torch.long, device=input_ids.device)
    out = model(**batch, use_cache=True, logits_to_keep=1)  # prefill: LM head on the last position only
    cache = out.cache
    unfinished = torch.ones(input_ids.shape[0], dtype=torch.bool, device=input_ids.device)  # [B]
    steps: list[torch.Tensor] = []
    for step in range(max_new_tokens):
        logits = out.logits[:, -1, :].float()  # [B, V]
        if sup_t.numel():
            logits[:, sup_t] = -float("inf")
        if step < min_new_tokens and eos_t.numel():
            logits[:, eos_t] = -float("inf")
        nxt = logits.argmax(-1)  # [B]
        nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad))
        steps.append(nxt)
        if on_step is not None:
            on_step(nxt)
        if eos_t.numel():
            unfinished &= ~torch.isin(nxt, eos_t)
        if not bool(unfinished.any()) or step == max_new_tokens - 1:
            break
        mask = torch.cat([mask, mask.new_ones(mask.shape[0], 1)], dim=1)  # [B, L + step + 1]
        out = model(input_ids=nxt[:, None], attention_mask=mask, cache=cache, use_cache=True, logits_to_keep=1)
        cache = out.cache
    if not steps:
        return input_ids
    return torch.cat([input_ids, torch.stack(steps, dim=1)], dim=1)


def fast_generate_reports(model: Any, processor: Any, perceptions: list, prompt: str | None = None,
                          max_new_tokens: int = 128, streamer: Any = None) -> list:
    """``affectllm.api.generate_reports`` with ``greedy_decode`` in place of ``generate`` (same reports)."""
    import affectllm.api as api

    def decode(**kwargs: Any) -> torch.Tensor:
        kwargs.pop("do_sample", None)
        stream = kwargs.pop("streamer", None)
        n = int(kwargs.pop("max_new_tokens"))
        if stream is None:
            return greedy_decode(model, kwargs, n)
        stream.put(kwargs["input_ids"].cpu())  # as generate does: the prompt first, then each new token
        try:
            return greedy_decode(model, kwargs, n, on_step=lambda t: stream.put(t.cpu()))
        finally:
            stream.end()

    class _Lean:  # generate_reports calls model.generate(**batch, ...); route it here, delegate the rest
        def __getattr__(self, name: str) -> Any:
            return getattr(model, name)

        generate = staticmethod(decode)

    return api.generate_reports(_Lean(), processor, perceptions, prompt=prompt, max_new_tokens=max_new_tokens,
                                streamer=streamer)
