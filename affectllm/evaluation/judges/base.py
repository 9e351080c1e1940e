"""One interface for every judge (lexicon, local HF causal LM, OpenAI-compatible endpoint), and the disk cache.

A judge turns free text into labels, groups labels into synonym sets (MER2024), gives a sentiment polarity, and
(LLM judges only) rates EMER clue / label overlap 1-10. LLM judges implement only ``_complete(prompt)``; the
task methods build the documented prompts (prompts.py), parse the answer, and cache every response on disk keyed by
sha256(judge fingerprint + prompt), so re-scoring never re-queries.
"""

from __future__ import annotations

import hashlib
import re
import sqlite3
import threading
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path

from affectllm.evaluation.judges import prompts
from affectllm.evaluation.parsing import (
    clean_labels,
    format_list_string,
    parse_group_string,
    parse_list_string,
)


class JudgeError(RuntimeError):
    """A judge could not answer (endpoint down, model missing); the message says what to fix."""


class JudgeCache:
    """sqlite table key → response, key = sha256(fingerprint + NUL + prompt). Safe to share between runs."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False)
        self._db.execute("CREATE TABLE IF NOT EXISTS responses (key TEXT PRIMARY KEY, judge TEXT, prompt TEXT, "
                         "response TEXT)")
        self._db.commit()

    @staticmethod
    def key(fingerprint: str, prompt: str) -> str:
        return hashlib.sha256(f"{fingerprint}\0{prompt}".encode()).hexdigest()

    def get(self, fingerprint: str, prompt: str) -> str | None:
        with self._lock:
            row = self._db.execute("SELECT response FROM responses WHERE key = ?",
                                   (self.key(fingerprint, prompt),)).fetchone()
        return None if row is None else row[0]

    def put(self, fingerprint: str, prompt: str, response: str) -> None:
        with self._lock:
            self._db.execute("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?)",
                             (self.key(fingerprint, prompt), fingerprint, prompt, response))
            self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return self._db.execute("SELECT COUNT(*) FROM responses").fetchone()[0]

    def close(self) -> None:
        with self._lock:
            self._db.close()


class Judge(ABC):
    """What the scorer asks of a judge."""

    fingerprint: str = "judge"
    can_rate: bool = False  # True for LLM judges (EMER 1-10 ratings)

    @abstractmethod
    def extract_labels(self, text: str) -> list[str]:
        """Emotion labels a free-text description supports, in order."""

    @abstractmethod
    def group_synonyms(self, words: Sequence[str]) -> list[list[str]]:
        """Partition ``words`` into synonym groups (MER2024 metric)."""

    @abstractmethod
    def polarity(self, labels: Sequence[str]) -> int:
        """+1 positive, -1 negative, 0 neutral."""

    def rate(self, kind: str, reference: str, prediction: str) -> float | None:
        """EMER 1-10 rating (``kind`` = 'clue' or 'label'); None for judges that cannot rate."""
        return None


_SCORE_RE = re.compile(r"score\s*[:：=]?\s*(\d+(?:\.\d+)?)", re.I)
_NUM_RE = re.compile(r"\b(10|[1-9])(?:\.\d+)?\b")
_POLARITY_RE = re.compile(r"\b(positive|negative|neutral)\b", re.I)


def parse_label_answer(text: str) -> list[str]:
    """``"... ['happy', 'sad'] ..."`` → ['happy', 'sad']; without brackets, the first line split on commas."""
    m = re.search(r"\[[^\[\]]*\]", text)
    if m:
        return clean_labels(parse_list_string(m.group(0)))
    first = text.strip().splitlines()[0] if text.strip() else ""
    return [x for x in clean_labels(re.split(r"[,;]", first)) if x and len(x) <= 40]


def parse_groups_answer(text: str, words: Sequence[str]) -> list[list[str]]:
    """Groups from the first ``[[...]]`` block; unknown words dropped, words the judge forgot become singletons."""
    m = re.search(r"\[\s*\[.*\]\s*\]", text, re.S)
    wanted = list(dict.fromkeys(words))
    seen: set[str] = set()
    groups: list[list[str]] = []
    for g in parse_group_string(m.group(0)) if m else []:
        g = [w for w in clean_labels(g) if w in wanted and w not in seen]
        seen.update(g)
        if g:
            groups.append(g)
    groups.extend([w] for w in wanted if w not in seen)
    return groups


def parse_polarity_answer(text: str) -> int:
    m = _POLARITY_RE.search(text)
    return {"positive": 1, "negative": -1}.get(m.group(1).lower(), 0) if m else 0


def parse_rating_answer(text: str) -> float | None:
    """``"Score: 7"`` → 7.0; else the first integer 1-10; None when there is none (counted and reported)."""
    m = _SCORE_RE.search(text) or _NUM_RE.search(text)
    if not m:
        return None
    return min(10.0, max(1.0, float(m.group(1))))


class PromptJudge(Judge):
    """An LLM judge: subclasses implement ``_complete``; everything else is prompts, parsing and the cache."""

    can_rate = True

    def __init__(self, cache: JudgeCache | None = None) -> None:
        self.cache = cache
        self.calls = 0  # real model/endpoint calls (cache misses)
        self.cache_hits = 0

    @abstractmethod
    def _complete(self, prompt: str) -> str:
        """The model's greedy answer to ``prompt``."""

    def complete(self, prompt: str) -> str:
        if self.cache is not None:
            hit = self.cache.get(self.fingerprint, prompt)
            if hit is not None:
                self.cache_hits += 1
                return hit
        self.calls += 1
        out = self._complete(prompt)
        if self.cache is not None:
            self.cache.put(self.fingerprint, prompt, out)
        return out

    def extract_labels(self, text: str) -> list[str]:
        return parse_label_answer(self.complete(prompts.EXTRACT_LABELS.format(text=text.strip())))

    def group_synonyms(self, words: Sequence[str]) -> list[list[str]]:
        words = list(dict.fromkeys(clean_labels(words)))
        if not words:
            return []
        return parse_groups_answer(self.complete(prompts.SYNONYM_GROUPS.format(words=format_list_string(words))), words)

    def polarity(self, labels: Sequence[str]) -> int:
        if not labels:
            return 0
        return parse_polarity_answer(self.complete(prompts.SENTIMENT.format(labels=", ".join(labels))))

    def rate(self, kind: str, reference: str, prediction: str) -> float | None:
        template = {"clue": prompts.EMER_CLUE_OVERLAP, "label": prompts.EMER_LABEL_OVERLAP}[kind]
        return parse_rating_answer(self.complete(template.format(reference=reference.strip(),
                                                                 prediction=prediction.strip())))
