"""Constrained decoding that makes a fabricated quotation impossible (transformers LogitsProcessor).

``QuoteGuard(tokenizer, sources)`` is called as ``(input_ids [B, L], scores [B, V]) -> scores`` at every step
of ``model.generate(..., logits_processor=LogitsProcessorList([guard]))`` (or the engine's
``logits_processors`` hook). It reads the text generated so far with the same quote grammar as the checker
(``affectllm.report.faithful.QuoteScanner``) and:

- inside an open quotation, keeps only the ``top_k`` best-scoring tokens whose text keeps the quotation a
  word-aligned substring of an allowed source (transcript, translation, subtitle), or closes it there; every
  other token is masked. If none of them is valid, the closing quotation mark is forced (or, when the quotation
  ends mid-word, the best-scoring token of the whole vocabulary that continues it);
- outside a quotation, masks every token that would open one when the row has no source (nothing was said),
  and every quote-opening token whose quoted text would already be invalid.

One guard serves one ``generate`` call: the prompt length is taken from its first call (``reset()`` to reuse
it). Sources are one list for every row, or one list per row. A token holding half a UTF-8 character decodes
to U+FFFD, which no source contains, so inside a quotation only whole characters pass: with a byte-level
tokenizer (SmolLM2, Qwen) a CJK transcript cannot be quoted character by character (its English translation
can); Gemma's vocabulary has whole-character tokens for common CJK characters.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence

import torch
from transformers import LogitsProcessor

from affectllm.report.faithful import (
    QUOTE_CHARS,
    QuoteScanner,
    QuoteState,
    is_word_char,
    normalise,
    quote_in_sources,
)

_TABLES: dict[int, tuple[list[str], list[int], dict[str, int]]] = {}  # id(tokenizer) -> vocab pieces


def _byte_decoder() -> dict[str, int]:
    """GPT-2's printable-character -> byte table (inverse of transformers' ``bytes_to_unicode``)."""
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    return {c: b for b, c in bytes_to_unicode().items()}


def _token_pieces(tokenizer) -> list[str]:
    """The text each token adds mid-sentence. Fast paths read the vocabulary directly (byte-level BPE:
    GPT-2 byte table; SentencePiece: '▁' is a space, <0xNN> is a byte); anything else is decoded pairwise."""
    size = len(tokenizer)
    raw = tokenizer.convert_ids_to_tokens(list(range(size)))
    decoder = {}
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None and backend.decoder is not None:
        decoder = json.loads(backend.decoder.__getstate__())  # the decoder's own JSON only (not the vocab)
    kinds = {decoder.get("type")} | {d.get("type") for d in decoder.get("decoders", []) or []}
    if "ByteLevel" in kinds:
        table = _byte_decoder()
        return [bytes(table.get(c, 32) for c in (t or "")).decode("utf-8", errors="replace") for t in raw]
    if kinds & {"Metaspace", "Replace", "ByteFallback"}:
        def piece(t: str) -> str:
            if re.fullmatch(r"<0x[0-9A-Fa-f]{2}>", t):  # byte fallback: ASCII is itself, other bytes half a char
                b = int(t[3:5], 16)
                return chr(b) if b < 0x80 else "\ufffd"
            return t.replace("▁", " ")

        return [piece(t or "") for t in raw]
    anchor = tokenizer.encode("a", add_special_tokens=False)[-1]
    base = tokenizer.decode([anchor])
    texts = tokenizer.batch_decode([[anchor, i] for i in range(size)], skip_special_tokens=False)
    return [t[len(base):] if t.startswith(base) else t for t in texts]


def _vocab_tables(tokenizer) -> tuple[list[str], list[int], dict[str, int]]:
    """(text of every token as it reads mid-sentence, ids of tokens holding a quote mark, closer -> token id)."""
    key = id(tokenizer)
    if key not in _TABLES:
        special = set(getattr(tokenizer, "all_special_ids", []) or [])
        pieces = ["" if i in special else p for i, p in enumerate(_token_pieces(tokenizer))]
        quoting = [i for i, p in enumerate(pieces) if any(ch in QUOTE_CHARS for ch in p)]
        closers: dict[str, int] = {}
        for i, p in enumerate(pieces):
            if len(p) == 1 and p in QUOTE_CHARS and p not in closers:
                closers[p] = i
        _TABLES[key] = (pieces, quoting, closers)
    return _TABLES[key]


class QuoteGuard(LogitsProcessor):
    """A transformers ``LogitsProcessor``: quotations may only copy the allowed sources (see module doc)."""

    def __init__(self, tokenizer, sources: Sequence[str | None] | Sequence[Sequence[str | None]],
                 top_k: int = 32, prompt_length: int | None = None) -> None:
        self.tokenizer = tokenizer
        rows = list(sources)
        per_row = bool(rows) and all(isinstance(r, (list, tuple)) for r in rows)
        self._rows = [[normalise(s) for s in r if s] for r in rows] if per_row else None
        self._shared = None if per_row else [normalise(s) for s in rows if s]
        self.top_k = top_k
        self.prompt_length = prompt_length
        self._given_length = prompt_length
        self.pieces, self.quoting, self.closers = _vocab_tables(tokenizer)
        self._outside: dict[tuple, list[int]] = {}

    def __repr__(self) -> str:  # stable across runs: part of the engine's settings in cache keys
        return f"QuoteGuard(top_k={self.top_k})"

    def reset(self) -> None:
        self.prompt_length = self._given_length

    def sources_for(self, row: int) -> list[str]:
        if self._rows is None:
            return self._shared or []
        if row >= len(self._rows):
            raise ValueError(f"QuoteGuard was given sources for {len(self._rows)} rows but the batch has row {row}")
        return self._rows[row]

    # ------------------------------------------------------------------------------------------ checks

    def valid(self, state: QuoteState, piece: str, sources: list[str]) -> bool:
        """Whether appending ``piece`` to a text in ``state`` keeps every quotation within ``sources``."""
        ok = [True]

        def closed(content: str, opener: str) -> None:
            ok[0] = ok[0] and quote_in_sources(content, sources)

        def opened(ch: str) -> None:
            ok[0] = ok[0] and bool(sources)

        end = QuoteScanner.feed(state, piece, on_close=closed, on_open=opened)
        if not ok[0]:
            return False
        if end.inside:
            if end.pending:
                return quote_in_sources(end.content, sources)  # closes here unless a letter follows
            return quote_in_sources(end.content, sources, partial=True)
        return True

    def _closer_id(self, state: QuoteState) -> int | None:
        for ch in state.closers:
            if ch in self.closers:
                return self.closers[ch]
        return None

    # ------------------------------------------------------------------------------------------ call

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        # input_ids: [B, L]; scores: [B, V]
        if self.prompt_length is None:
            self.prompt_length = input_ids.shape[1]
        out = scores.clone()
        n_vocab = min(scores.shape[1], len(self.pieces))
        for b in range(input_ids.shape[0]):
            sources = self.sources_for(b)
            text = self.tokenizer.decode(input_ids[b, self.prompt_length:].tolist(), skip_special_tokens=True)
            state = QuoteScanner.feed(QuoteState(), text)
            if state.inside:
                self._inside(b, state, sources, scores, out, n_vocab)
            else:
                banned = self._banned_outside(state, sources)
                banned = [i for i in banned if i < n_vocab]
                if banned:
                    out[b, banned] = float("-inf")
        return out

    def _banned_outside(self, state: QuoteState, sources: list[str]) -> list[int]:
        """Quote-bearing tokens that may not follow a text outside any quotation. Outside a quotation the scan
        state is only whether the last character is a letter, so the answer is cached per (sources, that)."""
        key = (tuple(sources), is_word_char(state.prev))
        if key not in self._outside:
            self._outside[key] = [i for i in self.quoting if not self.valid(state, self.pieces[i], sources)]
        return self._outside[key]

    def _inside(self, b: int, state: QuoteState, sources: list[str], scores, out, n_vocab: int) -> None:
        closer = self._closer_id(state)
        if not quote_in_sources(state.content, sources, partial=True) and closer is not None:
            allowed = [closer]  # defensive: a quotation already off its source closes at once
        else:
            k = min(self.top_k, n_vocab)
            top = torch.topk(scores[b, :n_vocab], k).indices.tolist()
            allowed = [i for i in top if self.pieces[i] and self.valid(state, self.pieces[i], sources)]
            if not allowed and closer is not None and self.valid(state, self.pieces[closer], sources):
                allowed = [closer]  # the quotation is a whole stretch of the source: close it
            if not allowed:  # it ends mid-word: the best-scoring token that continues it (rare, full scan)
                order = torch.argsort(scores[b, :n_vocab], descending=True).tolist()
                allowed = next(([i] for i in order if self.pieces[i] and self.valid(state, self.pieces[i], sources)),
                               [closer] if closer is not None else [])
        if not allowed:
            return  # no single-token closing mark in this vocabulary: leave the step alone
        keep = out[b, allowed].clone()
        out[b] = float("-inf")
        out[b, allowed] = torch.where(torch.isfinite(keep), keep, torch.zeros_like(keep))


def guard_for(tokenizer, perceptions: Sequence, top_k: int = 32) -> QuoteGuard:
    """The guard for one batch of perceptions (row b may quote perception b's transcript/translation/subtitle).

    Engine wiring: ``model.generate(..., logits_processor=LogitsProcessorList([guard_for(tok, perceptions)]))``
    or the engine decoder's ``logits_processors=[guard_for(tok, perceptions)]``; a new guard per call.
    """
    from affectllm.report.faithful import Grounding

    return QuoteGuard(tokenizer, [list(Grounding.from_perception(p).sources) for p in perceptions], top_k=top_k)
