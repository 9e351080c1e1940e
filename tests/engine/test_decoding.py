"""The engine's decoder: greedy tokens equal ``model.generate``'s; batch rows equal single rows; stop strings,
the repetition guard, streaming, sampling, logits processors and the answer prefix do what they say."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectllm.engine import GenerationSettings, RepetitionGuard, decode

pytestmark = pytest.mark.timeout(600)


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


TEXTS = ["Labels: happy", "Describe the emotions of the person in the clip and why. What did the face do? "
                          "How did the voice sound?"]
AUDIO = (0.2 * np.sin(np.arange(16000) / 7.0)).astype(np.float32)


def _convs(texts, audio=None):
    convs = []
    for i, t in enumerate(texts):
        content = [{"type": "text", "text": t}]
        if audio is not None and i == 0:
            content.insert(0, {"type": "audio", "audio": audio})
        convs.append([{"role": "user", "content": content}])
    return convs


def _batch(processor, texts, audio=None):
    return dict(processor(_convs(texts, audio), add_generation_prompt=True))


def _generated(ref: torch.Tensor, prompt_len: int, eos: list[int]) -> list[list[int]]:
    """generate's new tokens per row, up to and including the first EOS (its padding dropped)."""
    rows = []
    for row in ref[:, prompt_len:].tolist():
        cut = next((i + 1 for i, t in enumerate(row) if t in eos), len(row))
        rows.append(row[:cut])
    return rows


def _eos(model) -> list[int]:
    e = model.generation_config.eos_token_id
    return list(e) if isinstance(e, (list, tuple)) else [e]


@pytest.mark.parametrize("text", ["qwen2", "gemma3"])
def test_greedy_tokens_equal_generate_with_left_padding_and_media(text, qwen):
    model, processor = qwen if text == "qwen2" else _varied(text)
    # the long prompt exceeds the tiny Gemma-3 sliding window (16): the cache must slide as under generate
    batch = _batch(processor, TEXTS, audio=AUDIO)
    assert batch["attention_mask"][0].min() == 0  # left padded
    with torch.no_grad():
        ref = model.generate(**batch, max_new_tokens=12, do_sample=False)
    ours = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=12))
    expected = _generated(ref, batch["input_ids"].shape[1], _eos(model))
    assert [d.token_ids for d in ours] == expected
    assert len(set(expected[0] + expected[1])) > 3  # a real sequence, not one token repeated
    texts = processor.batch_decode(ref[:, batch["input_ids"].shape[1]:])
    assert [d.text for d in ours] == texts


def test_batch_row_equals_the_same_row_alone(qwen):
    model, processor = qwen
    batch = _batch(processor, TEXTS, audio=AUDIO)
    together = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=10))
    alone = [decode(model, processor.tokenizer, _batch(processor, [TEXTS[0]], audio=AUDIO),
                    GenerationSettings(max_new_tokens=10))[0],
             decode(model, processor.tokenizer, _batch(processor, [TEXTS[1]]), GenerationSettings(max_new_tokens=10))[0]]
    assert [d.token_ids for d in together] == [d.token_ids for d in alone]
    assert [d.prompt_tokens for d in together] == [d.prompt_tokens for d in alone]


def test_min_new_tokens_suppress_tokens_and_eos_match_generate(qwen):
    model, processor = qwen
    gen = model.generation_config
    saved = (gen.eos_token_id, gen.suppress_tokens)
    batch = _batch(processor, ["Labels: sad", "Explanation: he looks down"])
    n = batch["input_ids"].shape[1]
    try:
        with torch.no_grad():
            first = model.generate(**batch, max_new_tokens=6, do_sample=False)
        eos = int(first[0, n + 1])  # make row 0's second token an EOS: that row finishes early
        assert eos not in first[1, n:].tolist()
        gen.eos_token_id = [eos, processor.tokenizer.eos_token_id]
        gen.suppress_tokens = sorted({*(gen.suppress_tokens or []), 7, 11})
        for kwargs in ({"max_new_tokens": 8}, {"max_new_tokens": 8, "min_new_tokens": 3}):
            with torch.no_grad():
                ref = model.generate(**batch, do_sample=False, **kwargs)
            ours = decode(model, processor.tokenizer, batch, GenerationSettings(**kwargs))
            assert [d.token_ids for d in ours] == _generated(ref, n, _eos(model)), kwargs
        assert ours[0].finish_reason == "length"  # min_new_tokens=3 masked the early EOS
        plain = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=8))
        assert plain[0].finish_reason == "stop" and len(plain[0].token_ids) == 2
    finally:
        gen.eos_token_id, gen.suppress_tokens = saved


def test_stop_strings_cut_the_text_and_end_the_row(qwen):
    model, processor = qwen
    batch = _batch(processor, TEXTS[1:])
    full = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=16))[0]
    assert len(full.text) > 6
    stop = full.text[3:5]  # two characters from the middle of the greedy answer
    cut = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=16, stop_strings=[stop]))[0]
    assert cut.text == full.text[: full.text.find(stop)] and cut.finish_reason == "stop"
    assert cut.token_ids == full.token_ids[: len(cut.token_ids)] and len(cut.token_ids) < len(full.token_ids)
    # the checkpoint's generation config declares stop strings too
    model.generation_config.stop_strings = [stop]
    try:
        from_config = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=16))[0]
    finally:
        model.generation_config.stop_strings = None
    assert from_config.text == cut.text


def test_streaming_pieces_join_to_the_text(qwen):
    model, processor = qwen
    batch = _batch(processor, TEXTS, audio=AUDIO)
    pieces: dict[int, list[str]] = {0: [], 1: []}
    stop = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=14))[1].text[4:6]
    s = GenerationSettings(max_new_tokens=14, stop_strings=[stop], answer_prefix="Labels:")
    out = decode(model, processor.tokenizer, batch, s, on_text=lambda i, p: pieces[i].append(p))
    for i, d in enumerate(out):
        assert "".join(pieces[i]) == d.text and d.text.startswith("Labels:")
        assert stop not in d.text
    plain: list[str] = []
    whole = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=14),
                   on_text=lambda i, p: plain.append(p) if i == 1 else None)[1]
    assert "".join(plain) == whole.text and len(plain) > 3  # streamed piece by piece, not at the end


def test_repetition_guard_stops_a_loop():
    from affectllm.testing import tiny_model_and_processor

    model, processor = tiny_model_and_processor()  # the default init repeats one token forever
    batch = _batch(processor, ["Labels: happy"])
    looped = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=80, repetition_guard=None))[0]
    assert looped.finish_reason == "length" and len(set(looped.token_ids[-40:])) <= 2  # it loops
    guarded = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=80))[0]
    assert guarded.finish_reason == "repetition" and len(guarded.token_ids) <= 40
    assert guarded.token_ids == looped.token_ids[: len(guarded.token_ids)]
    tail = guarded.token_ids[-1]  # one copy of the loop is kept, the repeats are dropped from tokens and text
    assert guarded.token_ids.count(tail) < 4
    assert guarded.text == processor.tokenizer.decode(guarded.token_ids, skip_special_tokens=True)
    guard = RepetitionGuard()
    assert guard.looping([1, 2, 3, 4, 5, 6, 7, 8] * 4) and not guard.looping(list(range(60)))
    assert not guard.looping([5] * 31) and guard.looping([9] + [5] * 32)
    assert not guard.looping([3, 4] * 2) and guard.looping([3, 4] * 3)  # " and voice" x 3, as the check counts
    assert not guard.looping([3, 4] * 3, said=[1, 3, 4, 3, 4, 3, 4, 2])  # copied from the prompt: not a loop
    assert guard.looping([3, 4] * 3, said=[1, 3, 4, 2])
    assert guard.repeated_tail([0, 1, 2, 3, 4, 5, 6, 7, 8] + [1, 2, 3, 4, 5, 6, 7, 8] * 3) == 16
    assert guard.repeated_tail([9] + [5] * 32) == 31 and guard.repeated_tail(list(range(60))) == 0


def test_repetition_guard_stops_a_quoted_loop_at_the_third_copy():
    """The held-out CASIA report that looped on ``"The...",`` (SmolLM2's tokens ' "', 'The', '...', '",'):
    stopped at the third copy, one kept, the dangling comma dropped; the faithfulness check finds no loop."""
    from affectllm.engine.decoding import _end_loop
    from affectllm.faithful import find_loop

    guard = RepetitionGuard()
    says, quote = [101, 102], [7, 8, 9, 10]  # '... the speaker says', ' "The...",'
    assert not guard.looping(says + quote * 2)
    assert guard.repeated_tail(says + quote * 3) == 8  # two copies dropped, one kept
    text = 'The voice shows high pitch; the speaker says ' + '"The...", ' * 8  # the 8 copies the old guard let by
    assert find_loop(text) is not None  # unfaithful: a loop
    kept = _end_loop('The voice shows high pitch; the speaker says "The...",')
    assert kept == 'The voice shows high pitch; the speaker says "The..."' and find_loop(kept) is None


def test_sampling_is_seeded_and_logits_processors_apply(qwen):
    model, processor = qwen
    batch = _batch(processor, TEXTS[1:])
    s = GenerationSettings(max_new_tokens=8, do_sample=True, temperature=1.5, top_k=20, top_p=0.9, seed=7)
    a = decode(model, processor.tokenizer, batch, s)[0]
    b = decode(model, processor.tokenizer, batch, s)[0]
    greedy = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=8))[0]
    assert a.token_ids == b.token_ids and a.token_ids != greedy.token_ids
    seen = []

    def only_token_42(input_ids, scores):  # transformers' LogitsProcessor signature
        seen.append(tuple(input_ids.shape))
        out = torch.full_like(scores, -float("inf"))
        out[:, 42] = 0.0
        return out

    forced = decode(model, processor.tokenizer, batch, GenerationSettings(max_new_tokens=3, repetition_guard=None,
                                                                          logits_processors=[only_token_42]))[0]
    assert forced.token_ids == [42, 42, 42]
    n = batch["input_ids"].shape[1]
    assert seen == [(1, n), (1, n + 1), (1, n + 2)]


def test_merged_lora_gives_the_same_logits_and_saves_the_same_weights(tmp_path):
    from safetensors.torch import load_file

    from affectllm.checkpoint import save_checkpoint
    from affectllm.testing import tiny_model_and_processor

    model, processor = tiny_model_and_processor(seed=1)
    model.eval()
    with torch.no_grad():  # a non-zero LoRA delta, so merging changes the base weights
        for name, p in model.named_parameters():
            if "lora_B" in name:
                p.normal_(0, 0.2)
    batch = _batch(processor, TEXTS, audio=AUDIO)
    with torch.no_grad():
        before = model(**batch).logits
    save_checkpoint(model, processor, tmp_path / "a")
    assert model.merge_lora() and model.lora_merged()
    with torch.no_grad():
        after = model(**batch).logits
    assert torch.allclose(before, after, atol=1e-4)
    save_checkpoint(model, processor, tmp_path / "b")  # the LoRA is taken out of the saved LLM weights
    a, b = load_file(tmp_path / "a" / "model.safetensors"), load_file(tmp_path / "b" / "model.safetensors")
    assert a.keys() == b.keys() and any("lora_" in k for k in a)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert model.lora_merged()  # and merged again after saving
