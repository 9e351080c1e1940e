"""The lean greedy loop gives exactly ``model.generate``'s greedy tokens (batch, left padding, media, Gemma-3)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectllm.captioning.fast_decode import fast_generate_reports, greedy_decode


def _varied(text: str):
    """A tiny model whose greedy output changes from token to token (the default init repeats one token)."""
    from affectllm.testing import tiny_model_and_processor

    model, processor = tiny_model_and_processor(seed=3, text=text)
    model.eval()
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for name, p in model.language_model.named_parameters():
            if p.dim() >= 2:
                p.copy_(torch.randn(p.shape, generator=g) * (0.05 if "embed" in name else 0.5))
    return model, processor


@pytest.fixture(scope="module")
def qwen():
    return _varied("qwen2")


def _batch(processor, texts, audio=None):
    convs = []
    for i, t in enumerate(texts):
        content = [{"type": "text", "text": t}]
        if audio is not None and i == 0:
            content.insert(0, {"type": "audio", "audio": audio})
        convs.append([{"role": "user", "content": content}])
    return processor(convs, add_generation_prompt=True)


@pytest.mark.parametrize("text", ["qwen2", "gemma3"])
def test_same_tokens_as_generate_with_left_padding_and_media(text, qwen):
    model, processor = qwen if text == "qwen2" else _varied(text)
    audio = (0.2 * np.sin(np.arange(16000) / 7.0)).astype(np.float32)
    # the long prompt exceeds the tiny Gemma-3 sliding window (16): the cache must slide as under generate
    batch = dict(_batch(processor, ["Labels: happy", "Describe the emotions of the person in the clip and why."
                                    " What did the face do? How did the voice sound?"], audio=audio))
    assert batch["attention_mask"][0].min() == 0  # left padded
    with torch.no_grad():
        ref = model.generate(**batch, max_new_tokens=12, do_sample=False)
    ours = greedy_decode(model, batch, max_new_tokens=12)
    assert torch.equal(ours, ref)
    assert len(set(ref[:, batch["input_ids"].shape[1]:].flatten().tolist())) > 3  # a real sequence, not one token


def test_min_new_tokens_suppress_tokens_and_eos_padding_match_generate(qwen):
    model, processor = qwen
    gen = model.generation_config
    saved = (gen.eos_token_id, gen.suppress_tokens)
    batch = dict(_batch(processor, ["Labels: sad", "Explanation: he looks down"]))
    try:
        with torch.no_grad():
            first = model.generate(**batch, max_new_tokens=6, do_sample=False)
        # make row 0's second generated token an EOS: that row finishes early and is padded
        eos = int(first[0, batch["input_ids"].shape[1] + 1])
        assert eos not in first[1, batch["input_ids"].shape[1]:].tolist()
        gen.eos_token_id = [eos, processor.tokenizer.eos_token_id]
        with torch.no_grad():
            ref = model.generate(**batch, do_sample=False, max_new_tokens=8)
        new0 = ref[0, batch["input_ids"].shape[1]:].tolist()
        assert new0[1] == eos and set(new0[2:]) == {gen.pad_token_id}  # row 0 finished early and was padded
        assert torch.equal(greedy_decode(model, batch, max_new_tokens=8), ref)
        gen.suppress_tokens = sorted({*(gen.suppress_tokens or []), 7, 11})
        for kwargs in ({"max_new_tokens": 8}, {"max_new_tokens": 8, "min_new_tokens": 3}):
            with torch.no_grad():
                ref = model.generate(**batch, do_sample=False, **kwargs)
            assert torch.equal(greedy_decode(model, batch, **kwargs), ref), kwargs
    finally:
        gen.eos_token_id, gen.suppress_tokens = saved


def test_fast_reports_equal_generate_reports(tiny, shared):
    from affectllm.api import generate_reports
    from affectllm.perception.pipeline import Experts, perceive

    model, processor = tiny
    ps = [perceive(shared / "media/speech/jfk.flac", experts=Experts(whisper=None)),
          perceive(shared / "media/faces/grace_hopper.jpg", experts=Experts(whisper=None))]
    a = generate_reports(model, processor, ps, max_new_tokens=10)
    b = fast_generate_reports(model, processor, ps, max_new_tokens=10)
    assert [r.to_dict() for r in a] == [r.to_dict() for r in b]
