"""The one decoder: batched, left-padded, greedy by default, streamed, with stop strings and a repetition guard.

Why not ``model.generate``: for a 270M-parameter LLM on a CPU each decode step is a few milliseconds of
matrix-vector work, so ``generate``'s per-step bookkeeping and the LM head over the whole prompt at prefill
(262k-vocabulary logits per prompt token) are a visible share of the time. This loop prefills with
``logits_to_keep=1`` and keeps only what decoding needs. With default settings (greedy, no stop string
matched, no loop) its tokens are exactly ``model.generate(do_sample=False)``'s (``tests/engine``).

Per step, in order: the generation config's ``suppress_tokens``, ``min_new_tokens`` (EOS masked), the
caller's ``logits_processors`` (transformers' signature ``(input_ids [B, L], scores [B, V]) -> scores``),
then argmax, or temperature / top-k / top-p sampling when ``do_sample``. A row ends at an EOS id, at a stop
string (the caller's plus the generation config's ``stop_strings``; the text is cut before it), when the
repetition guard sees its tail repeat, or at ``max_new_tokens``; finished rows are padded like ``generate``.
Streaming: ``on_text(row, piece)`` receives text as it becomes final (never a piece a stop string would cut,
never half a UTF-8 character); the pieces of a row join to exactly its ``Decoded.text``.

A single greedy row (a caption, a chat turn: the latency a user waits for) decodes with prompt-lookup drafts
(``engine/lookup.py``, ``GenerationSettings.draft_tokens``): reports copy their cues and quotes, so several
tokens are often confirmed by one forward pass. Batches and sampling go token by token.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from affectllm.model.limits import MAX_NEW_TOKENS


class GenerationCancelled(Exception):
    """The caller stopped listening (``cancelled()`` returned True); decoding was aborted."""


@dataclass
class RepetitionGuard:
    """Stops a row whose last tokens are ``n`` copies of one period ``p`` (p <= ``max_period``).

    ``n = max(min_repeats, ceil(min_span / p))`` for a phrase, ``min_run`` for one token (runs of one token —
    newlines, dashes, dots — are legitimate formatting far more often than phrases): one token repeated 32 times,
    a 2-token phrase (`` and voice``) or any longer phrase 3 times. Loops of greedy decoding in small LMs look
    like that; real reports do not. The faithfulness check (``affectllm.faithful.find_loop``) calls a phrase
    said 3 times in a row a loop, so the guard stops at the third copy and keeps one; as the check does, it
    lets by a repetition the prompt holds (``said``: a transcript's "no, no, no" quoted).
    """

    max_period: int = 32
    min_repeats: int = 3
    min_span: int = 6
    min_run: int = 32

    def looping(self, ids: Sequence[int], said: Sequence[int] | None = None) -> bool:
        return self.repeated_tail(ids, said) > 0

    def repeated_tail(self, ids: Sequence[int], said: Sequence[int] | None = None) -> int:
        """How many trailing tokens are extra copies of the loop (0: not looping); the decoder drops them,
        so a stopped row keeps one copy of the phrase, not n. ``said``: the prompt's tokens; a repetition
        found in them is copied, not a loop."""
        n = len(ids)
        for p in range(1, min(self.max_period, n // self.min_repeats) + 1):
            if ids[-1] != ids[-1 - p] if n > p else True:
                continue
            if p > 1 and len(set(ids[-p:])) == 1:
                continue  # a run of one token, counted at p = 1
            reps = self.min_run if p == 1 else max(self.min_repeats, math.ceil(self.min_span / p))
            span = p * reps
            if span <= n and list(ids[-span:]) == list(ids[-p:]) * reps:
                if said is not None and _contains(said, list(ids[-span:])):
                    continue
                return span - p
        return 0


def _contains(seq: Sequence[int], part: list[int]) -> bool:
    """Whether ``part`` occurs in ``seq`` as a contiguous run."""
    k = len(part)
    first = part[0]
    return any(seq[i] == first and list(seq[i:i + k]) == part for i in range(len(seq) - k + 1))


@dataclass
class GenerationSettings:
    """What the decoder does; defaults are deterministic greedy decoding."""

    max_new_tokens: int = MAX_NEW_TOKENS
    min_new_tokens: int = 0
    do_sample: bool = False
    temperature: float = 1.0
    top_k: int = 0
    top_p: float = 1.0
    seed: int | None = None
    stop_strings: Sequence[str] = ()
    logits_processors: Sequence[Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] = ()
    answer_prefix: str | Sequence[str] = ""  # forced start of the answer (already in the prompt), one for every
    # row or one per row; part of the returned text

    def prefix(self, row: int) -> str:
        """The forced answer start of batch row ``row``."""
        p = self.answer_prefix
        return p if isinstance(p, str) else (p[row] if row < len(p) else "")
    repetition_guard: RepetitionGuard | None = field(default_factory=RepetitionGuard)
    draft_tokens: int = 4  # prompt-lookup guesses checked per forward pass (one row, greedy); 0: token by token

    def to_dict(self) -> dict[str, Any]:
        """The settings that change an answer (for cache keys and run records)."""
        g = self.repetition_guard
        return {"max_new_tokens": self.max_new_tokens, "min_new_tokens": self.min_new_tokens,
                "do_sample": self.do_sample, "temperature": self.temperature, "top_k": self.top_k,
                "top_p": self.top_p, "seed": self.seed, "stop_strings": list(self.stop_strings),
                "answer_prefix": self.answer_prefix if isinstance(self.answer_prefix, str) else list(self.answer_prefix),
                "logits_processors": [repr(p) for p in self.logits_processors],
                "repetition_guard": None if g is None else [g.max_period, g.min_repeats, g.min_span, g.min_run]}


@dataclass
class Decoded:
    """One row's answer."""

    text: str  # answer_prefix + generated text, cut before a stop string
    token_ids: list[int]  # generated ids up to and including the one that ended the row
    prompt_tokens: int
    finish_reason: str  # "stop" (EOS or stop string) | "length" | "repetition"
    drafted: int = 0  # prompt-lookup guesses fed to the model (single-row greedy decoding)
    accepted: int = 0  # of them, those the model's own choice confirmed


def _ids(value: Any) -> list[int]:
    if value is None:
        return []
    return [int(v) for v in (value if isinstance(value, (list, tuple)) else [value])]


def _hold_back(text: str, stops: Sequence[str]) -> int:
    """How many trailing characters of ``text`` may still change: half a character, the start of a stop string."""
    keep = len(text)
    while keep and text[keep - 1] == "\ufffd":
        keep -= 1
    held = 0
    for s in stops:
        for k in range(min(len(s) - 1, keep), 0, -1):
            if text[:keep].endswith(s[:k]):
                held = max(held, k)
                break
    return len(text) - keep + held


def _end_loop(text: str) -> str:
    """The text of a row stopped by the repetition guard: its one kept copy, without a dangling separator
    (`` says "The...",`` -> `` says "The..."``)."""
    return text.rstrip(" \t,;:")


def _sample(logits: torch.Tensor, s: GenerationSettings, generator: torch.Generator | None) -> torch.Tensor:
    """[B, V] -> [B] token ids drawn with temperature, top-k and top-p."""
    logits = logits / max(float(s.temperature), 1e-5)
    if s.top_k and s.top_k > 0:
        kth = torch.topk(logits, min(int(s.top_k), logits.shape[-1]), dim=-1).values[:, -1:]  # [B, 1]
        logits = logits.masked_fill(logits < kth, -float("inf"))
    if s.top_p < 1.0:
        sorted_logits, order = torch.sort(logits, descending=True, dim=-1)
        cum = sorted_logits.softmax(-1).cumsum(-1)
        drop = cum - sorted_logits.softmax(-1) > s.top_p  # keep the smallest prefix whose mass reaches top_p
        sorted_logits = sorted_logits.masked_fill(drop, -float("inf"))
        logits = torch.full_like(logits, -float("inf")).scatter(-1, order, sorted_logits)
    probs = logits.softmax(-1)
    return torch.multinomial(probs, 1, generator=generator).squeeze(-1)


class _Rows:
    """The answers being built, one per batch row: tokens, text, stop strings, the repetition guard, streaming."""

    def __init__(self, tokenizer: Any, s: GenerationSettings, eos: list[int], stops: list[str],
                 on_text: Callable[[int, str], None] | None, n_rows: int,
                 prompts: list[list[int]] | None = None) -> None:
        self.tokenizer, self.s, self.eos, self.stops, self.on_text = tokenizer, s, eos, stops, on_text
        self.prompts = prompts or [None] * n_rows  # each row's prompt tokens (the repetition guard's "said")
        self.watch_text = bool(stops) or on_text is not None
        self.ids: list[list[int]] = [[] for _ in range(n_rows)]
        self.texts = [""] * n_rows
        self.emitted = [0] * n_rows
        self.reasons = ["length"] * n_rows
        self.alive = [True] * n_rows
        if on_text is not None:
            for i in range(n_rows):
                if s.prefix(i):
                    on_text(i, s.prefix(i))

    def _decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True, clean_up_tokenization_spaces=False)

    def take(self, i: int, tok: int) -> bool:
        """Append ``tok`` to row ``i``; False when that ended the row (EOS, stop string, loop)."""
        row = self.ids[i]
        row.append(tok)
        if tok in self.eos:
            self.reasons[i], self.alive[i] = "stop", False
            return False
        if self.watch_text:
            text = self._decode(row)
            cut = min((text.find(x) for x in self.stops if x in text), default=-1)
            if cut >= 0:
                text, self.reasons[i], self.alive[i] = text[:cut], "stop", False
            self.texts[i] = text
            if self.on_text is not None:
                ready = len(text) if cut >= 0 else len(text) - _hold_back(text, self.stops)
                if ready > self.emitted[i]:
                    self.on_text(i, text[self.emitted[i]:ready])
                    self.emitted[i] = ready
        guard = self.s.repetition_guard
        extra = guard.repeated_tail(row, self.prompts[i]) if self.alive[i] and guard is not None else 0
        if extra:  # keep one copy of the loop (a streamed row has already shown the copies)
            self.reasons[i], self.alive[i] = "repetition", False
            del row[-extra:]
            self.texts[i] = _end_loop(self._decode(row))
        return self.alive[i]

    def results(self, prompt_tokens: list[int], drafted: int = 0, accepted: int = 0) -> list[Decoded]:
        out = []
        for i, row in enumerate(self.ids):
            ids = row[:-1] if row and row[-1] in self.eos else row  # the EOS id is no text
            text = self.texts[i] if self.watch_text or self.reasons[i] == "repetition" else self._decode(ids)
            if self.on_text is not None and len(text) > self.emitted[i]:
                self.on_text(i, text[self.emitted[i]:])
            out.append(Decoded(self.s.prefix(i) + text, row, prompt_tokens[i], self.reasons[i], drafted, accepted))
        return out


class _Scorer:
    """Step logits -> the next token: suppressed tokens, min_new_tokens, the caller's processors, argmax or
    sampling. Keeps ``seq`` ([B, L + generated]) for processors that read the text so far."""

    def __init__(self, s: GenerationSettings, input_ids: torch.Tensor, eos: list[int], suppress: list[int]) -> None:
        dev = input_ids.device
        self.s, self.seq = s, input_ids
        self.eos_t = torch.tensor(eos, dtype=torch.long, device=dev)
        self.sup_t = torch.tensor(suppress, dtype=torch.long, device=dev)
        self.generator = None
        if s.do_sample and s.seed is not None:
            self.generator = torch.Generator(device=dev).manual_seed(int(s.seed))

    def choose(self, logits: torch.Tensor, step: int) -> torch.Tensor:
        """[B, V] logits of step ``step`` -> [B] token ids."""
        logits = logits.float()
        if self.sup_t.numel():
            logits[:, self.sup_t] = -float("inf")
        if step < self.s.min_new_tokens and self.eos_t.numel():
            logits[:, self.eos_t] = -float("inf")
        for proc in self.s.logits_processors:
            logits = proc(self.seq, logits)
        return _sample(logits, self.s, self.generator) if self.s.do_sample else logits.argmax(-1)

    def append(self, nxt: torch.Tensor) -> None:
        if self.s.logits_processors:
            self.seq = torch.cat([self.seq, nxt[:, None]], dim=1)  # [B, L + step + 1]


def _croppable(cache: Any) -> bool:
    """Whether rejected draft positions can be cut off the cache (plain full-attention layers only: a sliding
    window layer past its window cannot roll back)."""
    layers = getattr(cache, "layers", None)
    return bool(layers) and all(type(layer).__name__ == "DynamicLayer" for layer in layers) and hasattr(cache, "crop")


@torch.inference_mode()
def decode(model: Any, tokenizer: Any, batch: dict[str, Any], settings: GenerationSettings | None = None,
           on_text: Callable[[int, str], None] | None = None,
           cancelled: Callable[[], bool] | None = None) -> list[Decoded]:
    """Decode a left-padded batch (``input_ids [B, L]``, ``attention_mask``, media tensors) -> one Decoded per row."""
    s = settings or GenerationSettings()
    gen = model.generation_config
    eos = _ids(gen.eos_token_id)
    pad = gen.pad_token_id if gen.pad_token_id is not None else (eos[0] if eos else 0)
    suppress = sorted({int(t) for t in (gen.suppress_tokens or [])})
    stops = [x for x in (*s.stop_strings, *(getattr(gen, "stop_strings", None) or [])) if x]
    if isinstance(getattr(gen, "stop_strings", None), str):
        stops = [x for x in (*s.stop_strings, gen.stop_strings) if x]
    input_ids = batch["input_ids"]  # [B, L]
    n_rows = input_ids.shape[0]
    mask = batch.get("attention_mask")
    if mask is None:
        mask = torch.ones_like(input_ids)
    prompt_tokens = [int(x) for x in mask.sum(-1).tolist()]
    prompts = [row[m.bool()].tolist() for row, m in zip(input_ids, mask)]  # without padding
    rows = _Rows(tokenizer, s, eos, stops, on_text, n_rows, prompts)
    scorer = _Scorer(s, input_ids, eos, suppress)
    out = model(**batch, use_cache=True, logits_to_keep=1)  # prefill: LM head on the last position only
    cache = out.cache
    if n_rows == 1 and s.draft_tokens > 0 and not s.do_sample and s.max_new_tokens > 0 and _croppable(cache):
        return _decode_with_drafts(model, batch, s, rows, scorer, out, mask, prompt_tokens, cancelled)
    unfinished = torch.ones(n_rows, dtype=torch.bool, device=input_ids.device)  # [B]
    for step in range(s.max_new_tokens):
        if cancelled is not None and cancelled():
            raise GenerationCancelled()
        nxt = scorer.choose(out.logits[:, -1, :], step)  # [B]
        nxt = torch.where(unfinished, nxt, torch.full_like(nxt, pad))
        scorer.append(nxt)
        for i, tok in enumerate(nxt.tolist()):
            if rows.alive[i] and not rows.take(i, tok):
                unfinished[i] = False
        if not bool(unfinished.any()) or step == s.max_new_tokens - 1:
            break
        mask = torch.cat([mask, mask.new_ones(n_rows, 1)], dim=1)  # [B, L + step + 1]
        out = model(input_ids=nxt[:, None], attention_mask=mask, cache=cache, use_cache=True, logits_to_keep=1)
        cache = out.cache
    return rows.results(prompt_tokens)


def _decode_with_drafts(model: Any, batch: dict[str, Any], s: GenerationSettings, rows: _Rows, scorer: _Scorer,
                        out: Any, mask: torch.Tensor, prompt_tokens: list[int],
                        cancelled: Callable[[], bool] | None) -> list[Decoded]:
    """One row, greedy, with prompt-lookup drafts (``lookup.PromptLookup``): each forward pass feeds the newest
    token and up to ``draft_tokens`` guessed ones; the guesses the model's own choice confirms are kept, the cache
    is cut back to the first rejected one, and that step's choice is the next token. Every kept token is the one
    greedy decoding chooses after the same text, so the answer is the plain loop's (up to float rounding of
    a several-token pass, which ``tests/engine`` checks against token-by-token decoding)."""
    from affectllm.engine.lookup import PromptLookup

    placeholders = list(getattr(model, "placeholder_ids", {}).values())
    prompt = [t for t, m in zip(batch["input_ids"][0].tolist(), mask[0].tolist(), strict=True) if m]
    lookup = PromptLookup(prompt, banned=placeholders)
    cache = out.cache
    dev = batch["input_ids"].device
    drafted = accepted = 0
    logits = out.logits[:, -1:, :]  # [1, 1, V]: the positions whose choices are next
    guesses: list[int] = []
    while True:
        if cancelled is not None and cancelled():
            raise GenerationCancelled()
        for j in range(logits.shape[1]):
            step = len(rows.ids[0])
            nxt = scorer.choose(logits[:, j, :], step)  # [1]
            scorer.append(nxt)
            tok = int(nxt)
            if not rows.take(0, tok) or len(rows.ids[0]) >= s.max_new_tokens:
                return rows.results(prompt_tokens, drafted, accepted)
            lookup.extend([tok])
            if j < len(guesses) and tok == guesses[j]:
                accepted += 1
                continue
            rejected = len(guesses) - j  # guesses after position j were computed on a text the model did not choose
            if rejected > 0:
                cache.crop(-rejected)
                mask = mask[:, :-rejected]
            break  # the last position always breaks here: its choice follows the last guess
        room = s.max_new_tokens - len(rows.ids[0]) - 1  # guesses beyond the budget would be thrown away
        guesses = lookup.draft(min(s.draft_tokens, room))
        drafted += len(guesses)
        feed = torch.tensor([[rows.ids[0][-1], *guesses]], dtype=torch.long, device=dev)  # [1, 1 + g]
        mask = torch.cat([mask, mask.new_ones(1, feed.shape[1])], dim=1)
        out = model(input_ids=feed, attention_mask=mask, cache=cache, use_cache=True, logits_to_keep=feed.shape[1])
        cache, logits = out.cache, out.logits  # [1, 1 + g, V]
