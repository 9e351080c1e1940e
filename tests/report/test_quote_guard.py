"""QuoteGuard (constrained decoding): a fabricated quotation cannot be generated, a real one passes unchanged."""

from __future__ import annotations

import pytest
import torch
from transformers import LogitsProcessorList

from affectllm.faithful import Grounding, check_faithfulness, quoted_spans
from affectllm.quote_guard import QuoteGuard
from affectllm.testing import tiny_model_and_processor, tiny_tokenizer

SOURCE = "Kids are talking by the door."


@pytest.fixture(scope="module")
def tok():
    return tiny_tokenizer()


def scripted_decode(tok, guard, target: str, steps: int = 40, seed: int = 0) -> str:
    """Greedy decoding from scripted scores [1, V]: the token extending ``target`` longest scores highest,
    the rest get small random scores; ``guard`` (or None) edits the scores as in ``model.generate``."""
    gen = torch.Generator().manual_seed(seed)
    prompt = tok("Explanation:", return_tensors="pt").input_ids  # [1, P]
    ids = prompt
    pieces = guard.pieces if guard is not None else QuoteGuard(tok, []).pieces
    for _ in range(steps):
        text = tok.decode(ids[0, prompt.shape[1]:].tolist())
        scores = torch.rand(1, len(pieces), generator=gen)  # [1, V]
        rest = target[len(text):] if target.startswith(text) else ""
        for i, p in enumerate(pieces):
            if p and rest.startswith(p):
                scores[0, i] = 10.0 + len(p)
        if guard is not None:
            scores = guard(ids, scores)
        ids = torch.cat([ids, scores.argmax(-1, keepdim=True)], dim=1)
    return tok.decode(ids[0, prompt.shape[1]:].tolist())


def test_scripted_fabricated_quote_is_impossible_and_a_real_one_passes(tok):
    fake = ' He says "we lost the game again" and frowns.'
    unguarded = scripted_decode(tok, None, fake)
    assert unguarded.startswith(fake)  # the script really tries to fabricate
    assert check_faithfulness(unguarded, Grounding([SOURCE])) != []
    for seed in range(3):
        guarded = scripted_decode(tok, QuoteGuard(tok, [SOURCE]), fake, seed=seed)
        problems = [p for p in check_faithfulness(guarded, Grounding([SOURCE])) if p.startswith("quotes")]
        assert problems == [], guarded
        assert guarded.startswith(' He says "')  # the quote opened (a source exists), then had to close
    real = ' He says "kids are talking by the door" and frowns.'
    assert scripted_decode(tok, QuoteGuard(tok, [SOURCE]), real).startswith(real)  # untouched


def test_scripted_quote_cannot_open_without_a_transcript(tok):
    fake = ' He says "hello" and frowns.'
    guarded = scripted_decode(tok, QuoteGuard(tok, []), fake)
    assert quoted_spans(guarded) == [] and guarded.startswith(" He says")


def test_per_row_sources_and_forced_closing_quote(tok):
    guard = QuoteGuard(tok, [[SOURCE], ["我哪知道啊"]])
    ids = tok(['Explanation: "kids', 'Explanation: "kids'], return_tensors="pt").input_ids  # [2, L]
    guard.prompt_length = tok("Explanation:", return_tensors="pt").input_ids.shape[1]
    scores = torch.zeros(2, len(guard.pieces))
    out = guard(ids, scores)  # [2, V]
    allowed0 = {guard.pieces[i] for i in torch.isfinite(out[0]).nonzero().flatten().tolist()}
    allowed1 = torch.isfinite(out[1]).nonzero().flatten().tolist()
    assert allowed0 and all(p.startswith((" ", '"')) or p == "" for p in allowed0)  # " are" ... or a close
    assert allowed1 == [guard.closers['"']]  # "kids" is in neither row-2 source: only the closing mark


def test_tiny_model_generate_with_the_guard_never_fabricates():
    model, processor = tiny_model_and_processor(text="gemma3", vision=False, audio=False, whisper=False)
    tok = processor.tokenizer
    quote = tok.encode(' "', add_special_tokens=False)
    assert len(quote) == 1

    def push_quote(input_ids, scores):  # make the random model want to open a quotation at every step
        scores = scores.clone()
        scores[:, quote[0]] += 50.0
        return scores

    prompt = tok("Labels: sad\nExplanation: He says", return_tensors="pt")
    for sources in ([SOURCE], []):
        guard = QuoteGuard(tok, sources)
        out = model.generate(**prompt, max_new_tokens=24, do_sample=False,
                             logits_processor=LogitsProcessorList([push_quote, guard]))
        text = tok.decode(out[0, prompt.input_ids.shape[1]:], skip_special_tokens=True)
        assert [p for p in check_faithfulness(text, Grounding(sources)) if p.startswith("quotes")] == [], text
        if sources:
            assert '"' in text  # it did quote, and only the source
        else:
            assert quoted_spans(text) == []


def test_vocabulary_pieces_match_the_tokenizers_own_decoding(tok):
    """The fast vocabulary read (GPT-2 byte table) gives exactly what decoding a token mid-sentence adds."""
    guard = QuoteGuard(tok, [SOURCE])
    anchor = tok.encode("a", add_special_tokens=False)[-1]
    base = tok.decode([anchor])
    special = set(tok.all_special_ids)
    for i in range(len(tok)):
        if i not in special:
            assert guard.pieces[i] == tok.decode([anchor, i])[len(base):], i
    assert guard.pieces[guard.closers['"']] == '"'


def test_guard_for_a_batch_of_perceptions(tok):
    from affectllm.perception.pipeline import Perception
    from affectllm.quote_guard import guard_for

    heard = Perception(source=None, kind="audio", transcript=SOURCE)
    silent = Perception(source=None, kind="audio")
    guard = guard_for(tok, [heard, silent])
    assert guard.sources_for(0) == ["kids are talking by the door"] and guard.sources_for(1) == []
    ids = tok(["Explanation: He says", "Explanation: He says"], return_tensors="pt").input_ids  # [2, L]
    guard.prompt_length = 2
    out = guard(ids, torch.zeros(2, len(guard.pieces)))
    opener = guard.closers['"']
    assert torch.isfinite(out[0, opener]) and not torch.isfinite(out[1, opener])  # no transcript: no quote


def test_sentencepiece_style_pieces_match_decoding():
    """Gemma-style vocabularies ('▁' spaces, <0xNN> byte fallback) read the same as the tokenizer decodes."""
    from tokenizers import Tokenizer, decoders, models
    from transformers import PreTrainedTokenizerFast

    from affectllm.quote_guard import _token_pieces

    vocab = ["<unk>", "<0x22>", "<0xE2>", "▁kids", "▁are", '"', '▁"', "a", "▁a", "「", "我"]
    backend = Tokenizer(models.Unigram([(v, -1.0) for v in vocab], unk_id=0, byte_fallback=True))
    backend.decoder = decoders.Sequence([decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    sp = PreTrainedTokenizerFast(tokenizer_object=backend, unk_token="<unk>")
    anchor = vocab.index("▁a")
    base = sp.decode([anchor])
    assert _token_pieces(sp) == [sp.decode([anchor, i])[len(base):] for i in range(len(vocab))]
    assert _token_pieces(sp)[1:4] == ['"', "\ufffd", " kids"]
