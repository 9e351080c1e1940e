"""Prompt-lookup drafts for the decoder: guess the next tokens by copying what followed the last n-gram earlier.

A report copies much of its prompt (cue names, figures such as ``happy 0.46``, the transcript it quotes) and
repeats its own phrases ("the voice expert reads ..."). When the last ``n`` tokens occurred before, in the prompt or
in the answer so far, the tokens that followed them then are a cheap guess of what follows now. The decoder feeds
the guess with the current token in one forward pass and keeps the longest prefix the model itself would have
chosen, so greedy output is the model's own (see ``decoding.decode``); on a CPU, where one decode step is bound by
reading the weights, checking 8 guessed tokens costs little more than producing one.
"""

from __future__ import annotations

from collections.abc import Sequence


class PromptLookup:
    """Indexes a token sequence by its n-grams (n = ``min_ngram`` .. ``max_ngram``) as it grows; ``draft`` returns
    up to ``k`` tokens that followed the most recent earlier occurrence of the longest matching tail.

    The defaults were chosen on the default model's reports of the 8 TV clips and the example clip (replayed token
    by token): a one-token tail guesses wrong too often to pay for its check (``bench/caption_latency.py``)."""

    def __init__(self, prompt_ids: Sequence[int], max_ngram: int = 5, min_ngram: int = 2,
                 banned: Sequence[int] = ()) -> None:
        self.max_ngram, self.min_ngram = max_ngram, min_ngram
        self.banned = set(int(b) for b in banned)  # ids never proposed (media placeholders: not text)
        self.ids: list[int] = []
        self._last: dict[tuple[int, ...], int] = {}  # n-gram -> the position after its most recent occurrence
        self.extend(prompt_ids)

    def extend(self, ids: Sequence[int]) -> None:
        for t in ids:
            self.ids.append(int(t))
            end = len(self.ids)
            # index the n-grams that end one token earlier: their follower is known now
            for n in range(self.min_ngram, self.max_ngram + 1):
                if end - 1 - n >= 0:
                    self._last[tuple(self.ids[end - 1 - n:end - 1])] = end - 1

    def draft(self, k: int) -> list[int]:
        """Up to ``k`` guessed next tokens (empty when no tail of the sequence occurred before)."""
        if k <= 0:
            return []
        for n in range(self.max_ngram, self.min_ngram - 1, -1):
            if len(self.ids) <= n:
                continue
            start = self._last.get(tuple(self.ids[-n:]))
            if start is None:
                continue
            out: list[int] = []
            for pos in range(start, start + k):
                # past the end, the guess continues itself: a tail that repeats with period p is guessed to go on
                t = self.ids[pos] if pos < len(self.ids) else out[pos - len(self.ids)]
                if t in self.banned:
                    break
                out.append(t)
            if out:
                return out
        return []
