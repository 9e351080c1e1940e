"""The default judge: deterministic, offline, instant. Built on the surface forms of format.csv.

* labels from text: every surface form of format.csv (strict map) whose canonical name shares its first four
  letters (so "used" is not read as useful/useless) found in the text, longest match first (multi-word forms
  such as "let down" included), skipping forms right after a negation ("not happy"); in order, unique.
* synonym groups: words whose strict M2 normalisation (canonical → synonym-wheel word) is equal share a group;
  unknown words stay alone. The first word of a group is the one that appears first.
* polarity: each label votes with the polarity of its level-1 root on the five wheels (ROOT_POLARITY below);
  the sign of the summed votes is the answer, words positive/negative/neutral count directly.
It cannot rate EMER descriptions; EMER then reports the embedding-similarity scores only.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from affectllm.evaluation.judges.base import Judge
from affectllm.evaluation.tables import LEVEL1_METRICS, METRICS, NormTables

# Level-1 roots of wheel1-5.xlsx → sentiment polarity (surprise is ambivalent).
ROOT_POLARITY = {
    "happy": 1, "joyful": 1, "joy": 1, "powerful": 1, "peaceful": 1, "genius": 1,
    "mad": -1, "angry": -1, "anger": -1, "disgusted": -1, "disgust": -1, "sad": -1, "scared": -1,
    "fearful": -1, "fear": -1, "bad": -1, "surprised": 0, "neutral": 0,
}
DIRECT_POLARITY = {"positive": 1, "negative": -1, "neutral": 0}
NEGATIONS = frozenset({"not", "no", "never", "without", "hardly", "barely", "nor", "n't", "isn't", "wasn't",
                       "doesn't", "didn't", "don't", "aren't", "weren't"})
_TOKEN_RE = re.compile(r"[a-z][a-z'’-]*")
_L1 = tuple(METRICS.index(k) for k in LEVEL1_METRICS)
_M1 = METRICS.index("M1")
_M2 = METRICS.index("M2")


class LexiconJudge(Judge):
    def __init__(self, tables: NormTables) -> None:
        self.tables = tables
        self.fingerprint = f"lexicon:v1:{tables.fingerprint[:16]}"
        # a form counts only if its canonical name shares its first 4 letters: format.csv also lists loose
        # derivations ("used" → useful), which in running text are almost always not emotions
        self._forms = {k for k, row in tables.strict.items() if k and row[_M1][:4] == k[:4]}
        self._max_words = max(len(k.split()) for k in self._forms)

    def extract_labels(self, text: str) -> list[str]:
        tokens = _TOKEN_RE.findall(text.lower().replace("’", "'"))
        out: list[str] = []
        i = 0
        while i < len(tokens):
            for n in range(min(self._max_words, len(tokens) - i), 0, -1):
                cand = " ".join(tokens[i:i + n])
                if cand in self._forms:
                    if not (i > 0 and tokens[i - 1] in NEGATIONS) and cand not in out:
                        out.append(cand)
                    i += n
                    break
            else:
                i += 1
        return out

    def group_synonyms(self, words: Sequence[str]) -> list[list[str]]:
        groups: dict[str, list[str]] = {}
        for w in dict.fromkeys(x.lower().strip() for x in words):
            key = self.tables.lookup(w, strict=True)[_M2] or f"\0{w}"
            groups.setdefault(key, []).append(w)
        return list(groups.values())

    def label_polarity(self, label: str) -> int:
        lab = label.lower().strip()
        if lab in DIRECT_POLARITY:
            return DIRECT_POLARITY[lab]
        row = self.tables.lookup(lab, strict=True)
        votes = sum(ROOT_POLARITY.get(row[i], 0) for i in _L1)
        return (votes > 0) - (votes < 0)

    def polarity(self, labels: Sequence[str]) -> int:
        total = sum(self.label_polarity(x) for x in labels)
        return (total > 0) - (total < 0)
