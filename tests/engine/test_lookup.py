"""Prompt-lookup drafts: the guesses are what followed the tail before, and decoding with them gives exactly the
tokens, text, stream and finish reason of token-by-token decoding (greedy, one row), with the cache cut back
after each rejected guess."""

from __future__ import annotations

import pytest
import torch

from affectllm.engine import GenerationSettings, decode
from affectllm.engine.lookup import PromptLookup

pytestmark = pytest.mark.timeout(600)


def test_the_draft_copies_what_followed_the_most_recent_longest_match():
    lookup = PromptLookup([5, 6, 7, 8, 9, 1, 6, 7, 3, 4], max_ngram=3, min_ngram=2)
    assert lookup.draft(4) == []  # the tail (3, 4) never occurred before
    lookup.extend([6, 7])
    assert lookup.draft(3) == [3, 4, 6]  # (6, 7) occurred twice: the most recent one is followed by 3, 4
    lookup.extend([8])
    assert lookup.draft(2) == [9, 1]  # (6, 7, 8) occurred once, at the start
    assert PromptLookup([1, 2, 3, 1, 2], min_ngram=1).draft(4) == [3, 1, 2, 3]  # past the end: the period goes on
    assert PromptLookup([1, 2, 3, 1, 2], min_ngram=2).draft(0) == []
    # a media placeholder is never proposed: the draft stops before it
    assert PromptLookup([1, 2, 99, 3, 1, 2], min_ngram=2, banned=[99]).draft(4) == []
    assert PromptLookup([1, 2, 4, 99, 3, 1, 2], min_ngram=2, banned=[99]).draft(4) == [4]


def test_the_longer_match_is_preferred():
    lookup = PromptLookup([1, 2, 3, 10, 9, 2, 3, 20, 1, 2, 3], max_ngram=3, min_ngram=2)
    assert lookup.draft(1) == [10]  # (1, 2, 3) -> 10, although the newer (2, 3) -> 20


def _model(kind: str):
    from affectllm.testing import tiny_model_and_processor

    if kind == "looping":  # the default init repeats one token: every guess is confirmed
        return tiny_model_and_processor()
    model, processor = tiny_model_and_processor(seed=3, text="qwen2")
    model.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():  # a model whose output varies, copying its prompt now and then
        for name, p in model.language_model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (0.05 if "embed" in name else 0.5))
    return model, processor


@pytest.mark.parametrize("kind", ["looping", "varied"])
@pytest.mark.parametrize("extra", [{}, {"max_new_tokens": 7}, {"repetition_guard": None}, {"stream": True}])
def test_drafted_decoding_equals_token_by_token_decoding(kind, extra):
    model, processor = _model(kind)
    text = "Labels: happy, sad. Labels: happy, sad. The voice is loud; the face smiles; the voice is loud"
    batch = dict(processor([[{"role": "user", "content": [{"type": "text", "text": text}]}]],
                           add_generation_prompt=True))
    extra = dict(extra)
    stream = extra.pop("stream", False)
    kw = {"max_new_tokens": 48, **extra}
    pieces: dict[int, list[str]] = {0: [], 4: []}
    out = {}
    for k in (0, 4):
        on_text = (lambda i, p, k=k: pieces[k].append(p)) if stream else None
        out[k] = decode(model, processor.tokenizer, batch, GenerationSettings(draft_tokens=k, **kw), on_text=on_text)[0]
    plain, drafted = out[0], out[4]
    assert drafted.token_ids == plain.token_ids and drafted.text == plain.text
    assert drafted.finish_reason == plain.finish_reason and drafted.prompt_tokens == plain.prompt_tokens
    assert plain.drafted == 0 and (drafted.drafted > 0 or len(plain.token_ids) < 20)
    if kind == "looping":
        assert drafted.accepted > 0
        if len(drafted.token_ids) >= 20:
            assert drafted.accepted >= len(drafted.token_ids) // 2  # most tokens came from confirmed guesses
    if stream:
        assert pieces[4] == pieces[0] or "".join(pieces[4]) == "".join(pieces[0])
        if drafted.finish_reason != "repetition":  # a stopped loop has streamed its copies already
            assert "".join(pieces[4]) == drafted.text
    assert len(drafted.token_ids) <= kw["max_new_tokens"]


def test_drafts_are_checked_under_the_callers_processors():
    """A logits processor that bans a token is applied at every drafted position: a guess it bans is rejected."""
    model, processor = _model("looping")
    batch = dict(processor([[{"role": "user", "content": [{"type": "text", "text": "Labels: happy"}]}]],
                           add_generation_prompt=True))
    first = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=6, draft_tokens=0))[0]
    loop_token = first.token_ids[-1]
    calls = []

    def no_loop_after_three(input_ids, scores):
        calls.append(input_ids.shape[1])
        if input_ids.shape[1] - batch["input_ids"].shape[1] >= 3:
            scores[:, loop_token] = -float("inf")
        return scores

    s = dict(max_new_tokens=10, repetition_guard=None, logits_processors=[no_loop_after_three])
    plain = decode(model, processor.tokenizer, batch, GenerationSettings(draft_tokens=0, **s))[0]
    calls_plain, calls[:] = list(calls), []
    drafted = decode(model, processor.tokenizer, batch, GenerationSettings(draft_tokens=4, **s))[0]
    assert drafted.token_ids == plain.token_ids and loop_token not in plain.token_ids[3:]
    assert calls == calls_plain  # the processor saw the same text lengths, one call per kept token


def test_batches_and_sampling_go_token_by_token():
    model, processor = _model("looping")
    convs = [[{"role": "user", "content": [{"type": "text", "text": t}]}] for t in ("Labels: happy", "Hi there")]
    batch = dict(processor(convs, add_generation_prompt=True))
    assert all(d.drafted == 0 for d in decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=8)))
    one = dict(processor(convs[:1], add_generation_prompt=True))
    sampled = decode(model, processor.tokenizer, one, GenerationSettings(max_new_tokens=8, do_sample=True, seed=1))[0]
    assert sampled.drafted == 0
