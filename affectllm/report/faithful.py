"""Faithfulness of an explanation to what the experts measured: quotes, cited emotion words, loops.

An explanation is faithful when
- everything inside quotation marks (straight "..." and '...', curly “...” ‘...’, CJK 「...」 『...』, «...»)
  occurs in the transcript, its English translation or the subtitle, compared after normalising case,
  whitespace and punctuation, at word boundaries (CJK characters count as words);
- every word it cites as a word ("words like X", "the word X") was found by the text cues or occurs in what
  was said; and
- it does not loop (a run of 2+ tokens repeated 3+ times in a row, or one token 5+ times, that the speaker did
  not say); and
- every figure it cites (a probability such as "sad 0.37" or "(0.86)") is one the experts measured: a number
  after an emotion word must be that emotion's figure in some expert's evidence (emotion words compared by
  base class: anger = angry, joy / admiring = happy), any other two-decimal number must occur in the evidence
  (language probability, detection confidence, fusion weights), both within 0.006 (``Grounding.figures``).

``check_faithfulness`` returns the problems (empty = faithful); ``report.parse_report(text, perception=...)``
sets ``EmotionReport.faithful`` / ``faithfulness_problems`` from it. ``QuoteScanner`` is the one quote grammar,
shared with the constrained decoder in ``affectllm.report.quote_guard`` so that what decoding allows is exactly what
the checker accepts.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

# opener -> closers. The straight single quote and ‘ also serve as apostrophes; see QuoteScanner.
QUOTE_PAIRS: dict[str, tuple[str, ...]] = {
    '"': ('"',), "“": ("”", '"'), "„": ("“", "”"), "「": ("」",), "『": ("』",), "«": ("»",), "‘": ("’",), "'": ("'",),
}
QUOTE_CHARS = frozenset("".join(QUOTE_PAIRS) + "".join(c for cs in QUOTE_PAIRS.values() for c in cs))
_APOSTROPHE_LIKE = {"'", "‘"}  # openers that close only when the next character is not a letter
_CJK_RE = re.compile(r"([\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af\uf900-\ufaff])")


def normalise(text: str) -> str:
    """Case-, space- and punctuation-free form for comparing quotes: letters, digits, marks kept; punctuation and
    control characters dropped; each CJK character and each symbol (incl. U+FFFD, emoji, $) is its own word, so
    a symbol must be in the source too."""
    text = unicodedata.normalize("NFKC", text.replace("’", "'").replace("‘", "'")).lower()
    out = []
    for ch in text:
        cat = unicodedata.category(ch)
        if ch == "'" or cat[0] == "S":
            out.append(f" {ch} ")
        elif cat[0] in "LNM":  # letters, digits and combining marks (part of a word)
            out.append(ch)
        else:
            out.append(" ")
    return " ".join(_CJK_RE.sub(r" \1 ", "".join(out)).split())


def is_word_char(ch: str) -> bool:
    """A letter or digit: a quote mark right after one is an apostrophe, not an opening quote."""
    return bool(ch) and unicodedata.category(ch)[0] in "LN"


@dataclass(frozen=True)
class QuoteState:
    """Where a left-to-right scan stands: inside a quote (``closer`` set) with its ``content`` so far."""

    closers: tuple[str, ...] = ()
    content: str = ""
    prev: str = ""  # the last character seen (opening a straight single quote depends on it)
    pending: str = ""  # an apostrophe-like closer seen inside its quote: closes unless a letter follows
    opener: str = ""

    @property
    def inside(self) -> bool:
        return bool(self.closers)


class QuoteScanner:
    """Streaming quote grammar: feed text piece by piece; closed quotes are reported to ``on_close``."""

    @staticmethod
    def feed(state: QuoteState, piece: str, on_close=None, on_open=None) -> QuoteState:
        closers, content, prev, pending, opener = state.closers, state.content, state.prev, state.pending, state.opener
        for ch in piece:
            if pending:  # was the apostrophe-like closer an apostrophe inside a word ("don't")?
                if is_word_char(ch):
                    content += pending + ch
                    pending, prev = "", ch
                    continue
                pending = ""
                if on_close:
                    on_close(content, opener)
                closers, content, opener = (), "", ""
            if closers:
                if ch in closers:
                    if opener in _APOSTROPHE_LIKE:
                        pending = ch
                    else:
                        if on_close:
                            on_close(content, opener)
                        closers, content, opener = (), "", ""
                else:
                    content += ch
            elif ch in QUOTE_PAIRS and (ch not in _APOSTROPHE_LIKE or not is_word_char(prev)):
                closers, content, opener = QUOTE_PAIRS[ch], "", ch
                if on_open:
                    on_open(ch)
            prev = ch
        return QuoteState(closers, content, prev, pending, opener)

    @staticmethod
    def finish(state: QuoteState, on_close=None) -> None:
        """End of text: a pending closer closes its quote; an unclosed quote is reported as it stands."""
        if state.inside and on_close:
            on_close(state.content, state.opener)


def quoted_spans(text: str) -> list[str]:
    """The contents of every quotation in ``text`` (an unclosed final quote included), in order."""
    spans: list[str] = []
    state = QuoteScanner.feed(QuoteState(), text, on_close=lambda c, o: spans.append(c))
    QuoteScanner.finish(state, on_close=lambda c, o: spans.append(c))
    return spans


def quote_in_sources(content: str, sources_norm: list[str], partial: bool = False) -> bool:
    """``content`` (normalised) occurs in a source at word boundaries; ``partial``: it may end mid-word."""
    q = normalise(content)
    if not q:
        return True  # "..." or an empty quote quotes nothing
    ends_word = not partial or not content or not is_word_char(content[-1])
    needle = f" {q} " if ends_word else f" {q}"
    return any(needle in f" {s} " for s in sources_norm)


@dataclass
class Grounding:
    """What an explanation may quote (``sources``: transcript, translation, subtitle) and cite as a word."""

    sources: list[str] = field(default_factory=list)
    emotion_words: list[str] = field(default_factory=list)
    # (label or field name, value) of every number the experts produced; None: figures are not checked
    figures: list[tuple[str, float]] | None = None

    @classmethod
    def from_perception(cls, p: Any) -> Grounding:
        text = getattr(p, "text", None) or {}
        sources = [getattr(p, "transcript", None), getattr(p, "translation", None), getattr(p, "subtitle", None)]
        evidence = p.evidence() if callable(getattr(p, "evidence", None)) else None
        return cls([s for s in sources if s], _words(text.get("emotion_words")),
                   evidence_figures(evidence) if evidence else None)

    @classmethod
    def from_report(cls, r: Any) -> Grounding:
        """From a report that already carries ``transcript`` and ``evidence.text`` (translation, words)."""
        evidence = getattr(r, "evidence", None) or {}
        text = evidence.get("text") or {}
        sources = [getattr(r, "transcript", None), text.get("translation"), text.get("subtitle")]
        return cls([s for s in sources if s], _words(text.get("emotion_words")),
                   evidence_figures(evidence) if evidence else None)

    def normalised_sources(self) -> list[str]:
        return [normalise(s) for s in self.sources if s]


def evidence_figures(evidence: Any, key: str = "") -> list[tuple[str, float]]:
    """Every number in an evidence tree with the name it stands under: a dict value under its key, a
    ``[label, p]`` pair under its label, a list's numbers under the list's key."""
    out: list[tuple[str, float]] = []
    if isinstance(evidence, dict):
        for k, v in evidence.items():
            out += evidence_figures(v, str(k))
    elif isinstance(evidence, (list, tuple)):
        if len(evidence) == 2 and isinstance(evidence[0], str) and isinstance(evidence[1], (int, float)):
            out.append((evidence[0], float(evidence[1])))
        else:
            for v in evidence:
                out += evidence_figures(v, key)
    elif isinstance(evidence, (int, float)) and not isinstance(evidence, bool):
        out.append((key, float(evidence)))
    return out


_FIGURE_RE = re.compile(r"(?<![\d.])([01]\.\d{2})(?![\d])")
_WORD_RE = re.compile(r"[^\W\d_]+", re.U)
FIGURE_TOLERANCE = 0.006  # a figure rounded to 2 decimals


def _emotion_base(word: str) -> str | None:
    """The base class an emotion word names (angry, anger, annoyed -> angry; joy, admiring -> happy), else None."""
    from affectllm.report.grounded import ALIASES, EMOTIONS
    from affectllm.report.vocabulary import base_of_label

    w = word.lower()
    w = {"disgust": "disgusted", "fear": "fearful", "surprise": "surprised"}.get(w, ALIASES.get(w, w))
    return w if w in EMOTIONS else base_of_label(w)


def cited_figures(explanation: str, figures: list[tuple[str, float]]) -> list[str]:
    """Problems: figures the explanation cites that no expert measured (see the module docstring)."""
    problems = []
    measured = [(_emotion_base(k), v) for k, v in figures]
    prev = 0
    for m in _FIGURE_RE.finditer(explanation):
        value = float(m.group(1))
        # the words naming this figure: after the previous figure and the last clause break ("sad (0.86)" keeps
        # "sad"; "anger 0.12 (language probability 0.98)" gives 0.98 to "language probability")
        window = explanation[max(prev, m.start() - 40):m.start()].rstrip(" (")
        window = re.split(r"[;,:.()\[\]]", window)[-1]
        prev = m.end()
        before = _WORD_RE.findall(window)[-4:]
        named = [(w, b) for w in reversed(before) if (b := _emotion_base(w))][:1]
        if named:
            ok = any(b == named[0][1] and abs(v - value) <= FIGURE_TOLERANCE for b, v in measured)
            what = f"{named[0][0]} {m.group(1)}"
            named = [named[0][1]]
        else:
            ok = any(abs(v - value) <= FIGURE_TOLERANCE for _, v in figures)
            what = m.group(1)
        if not ok:
            problems.append(f'cites "{what}", a figure no expert measured'
                            + (f" for {named[0]}" if named else ""))
    return problems


def _words(found: Any) -> list[str]:
    out = []
    for w in found or []:
        word = w.get("word") if isinstance(w, dict) else w
        if isinstance(word, str) and word:
            out.append(word)
    return out


# "words like X, Y and Z", "the word X", "terms such as 'X'": X is a cited word
# ("the words read as amused", "the face's expression stays neutral" cite nothing: a plural needs a connector or
# a quotation mark before the word it cites; a singular "word"/"term" cites what follows it)
_CITED_LIST = (r"((?:[\"“”'‘’「」『』]?[^\W\d_]+[\"“”'‘’「」『』]?)"
               r"(?:\s*(?:,|and|or|、)\s*[\"“”'‘’「」『』]?[^\W\d_]+[\"“”'‘’「」『』]?)*)")
_CITE_RE = re.compile(
    r"\b(?:(?:words?|terms?|expressions?)\s*(?:like|such as|including|as|:)\s*|(?:word|term)\s+"
    r"|(?:words|terms|expressions)\s+(?=[\"“”'‘’「」『』]))" + _CITED_LIST,
    re.I,
)
_STOP_CITE = {"that", "this", "the", "a", "an", "and", "or", "of", "he", "she", "they", "it", "his", "her", "their",
              "were", "was", "are", "is", "carry", "carries", "show", "shows", "suggest", "suggests", "in", "to"}


def cited_words(explanation: str) -> list[str]:
    """Words the explanation cites as words ("words like happy and sad" -> ["happy", "sad"])."""
    out: list[str] = []
    for m in _CITE_RE.finditer(explanation):
        for w in re.split(r"\s*(?:,|\band\b|\bor\b|、)\s*", m.group(1)):
            w = w.strip("\"“”'‘’「」『』 ").lower()
            if w and w not in _STOP_CITE and w not in out:
                out.append(w)
    return out


_TOKEN_RE = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af]|\w+", re.U)


def find_loop(text: str, sources_norm: list[str] | None = None) -> str | None:
    """A phrase the text repeats in a row (2+ tokens 3+ times, or 1 token 5+ times) unless it was said so."""
    tokens = _TOKEN_RE.findall(text.lower())
    n_tok = len(tokens)
    for n in range(1, min(24, n_tok // 3) + 1):
        need = 5 if n == 1 else 3
        i = 0
        while i + need * n <= n_tok:
            unit = tokens[i:i + n]
            reps = 1
            while tokens[i + reps * n:i + (reps + 1) * n] == unit:
                reps += 1
            if reps >= need:
                said = " ".join(unit * need)
                if not any(f" {said} " in f" {s} " for s in sources_norm or []):
                    return f"{' '.join(unit)!r} repeated {reps} times"
                i += reps * n
            else:
                i += 1
    return None


def check_faithfulness(explanation: str, grounding: Grounding | None, raw: str | None = None) -> list[str]:
    """Problems that make ``explanation`` unfaithful to ``grounding`` (empty list = faithful).

    ``grounding=None`` means nothing was heard: every quotation is then unsupported. ``raw`` (the whole
    generation) is also checked for loops.
    """
    grounding = grounding or Grounding()
    sources = grounding.normalised_sources()
    problems: list[str] = []
    for q in quoted_spans(explanation):
        if not quote_in_sources(q, sources):
            where = "the transcript or its translation" if sources else "a transcript (none was recognised)"
            problems.append(f'quotes "{q.strip()}", which is not in {where}')
    found = {normalise(w) for w in grounding.emotion_words}
    said = set(" ".join(sources).split())
    for w in cited_words(explanation):
        nw = normalise(w)
        if nw and nw not in found and not set(nw.split()) <= said:
            problems.append(f'cites the word "{w}", which the text cues did not find and nobody said')
    if grounding.figures is not None:
        problems += cited_figures(explanation, grounding.figures)
    for text in dict.fromkeys(t for t in (explanation, raw) if t):
        loop = find_loop(text, sources)
        if loop:
            problems.append(f"the generation loops: {loop}")
            break
    return problems


def mark_faithfulness(report: Any, grounding: Grounding | None) -> Any:
    """Set ``report.faithful`` and ``report.faithfulness_problems``; returns the report."""
    problems = check_faithfulness(report.explanation or "", grounding, raw=report.raw)
    report.faithfulness_problems = problems
    report.faithful = not problems
    return report


__all__ = ["QUOTE_PAIRS", "QUOTE_CHARS", "Grounding", "cited_figures", "evidence_figures", "QuoteScanner", "QuoteState", "check_faithfulness",
           "cited_words", "find_loop", "mark_faithfulness", "normalise", "quote_in_sources", "quoted_spans"]
