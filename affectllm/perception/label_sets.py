"""Open-vocabulary label sets: a ranked set of fine-grained labels from the fused distribution.

The fused estimate is over ``BASE_CLASSES`` (9). The text expert (``evidence.text.expert``) also gives a
distribution over GoEmotions' 28 fine labels. The fine distribution here spreads each base class's fused
mass over its fine labels (``FINE_TO_BASE``):

    P(f) = P_fused(base(f)) * [r * q(f | base) + (1 - r) * prior(f | base)],   r = rho * q(base)

with q the text expert's fine probabilities (q(f | base) renormalised within the base class, q(base) their sum
over it), rho the text's fusion weight relative to its prior (0 without a text expert), and prior(f | base)
``PRIOR_SPLIT`` (the prototype label of the class first). The words choose a class's shades as far as they
speak of that class: neutral words under a happy voice give "happy, excited, amused", not whichever happy
shade the text expert's noise ranks first. Base classes with no GoEmotions label (calm, bored) keep their mass under their
own name. Labels are the adjectives users and OV-MER references use (``ADJECTIVE``: nervousness -> nervous).

The set: labels in decreasing P, as many as needed to reach ``LABEL_MASS`` of the mass, at most
``LABEL_MAX``, at least one (``select``); "neutral" is set apart (``label_set``): it leads where it is the
fused top class and the emotions are chosen over the rest of the mass. The threshold is measured in ``bench/label_sets.py`` with the
OV-MER emotion-wheel F.
"""

from __future__ import annotations

from typing import Any

from affectllm.report.vocabulary import ADJECTIVE, FINE_LABELS, FINE_TO_BASE, base_of_label  # noqa: F401 - re-exported

LABEL_MASS = 0.7  # mass of the emotions the set covers: OV-MER EW-L1 0.38 at 0.5, 0.40 at 0.7 (bench/label_sets.py)
LABEL_MAX = 4  # emotions in a set (a leading "neutral" besides): OV-MER references hold 3.4 labels on average
EMOTION_FLOOR = 0.05  # below this non-neutral mass the set is "neutral" alone (the rest is noise)
EKMAN_GROUPS: dict[str, tuple[str, ...]] = {
    "anger": ("anger", "annoyance", "disapproval"),
    "disgust": ("disgust",),
    "fear": ("fear", "nervousness"),
    "joy": ("joy", "amusement", "approval", "excitement", "gratitude", "love", "optimism", "relief", "pride",
            "admiration", "desire", "caring"),
    "sadness": ("sadness", "disappointment", "embarrassment", "grief", "remorse"),
    "surprise": ("surprise", "realization", "confusion", "curiosity"),
    "neutral": ("neutral",),
}
CLUE_GROUPS: dict[str, tuple[str, ...]] = {
    "like": ("love", "admiration", "approval", "caring", "desire"),
    "happiness": ("joy", "amusement", "excitement", "gratitude", "optimism", "pride", "relief"),
    **{k: v for k, v in EKMAN_GROUPS.items() if k not in ("joy", "neutral")},
}
# prior(f | base) without a text expert: the class's prototype first, then its commonest shades
PRIOR_SPLIT: dict[str, dict[str, float]] = {
    "happy": {"joy": 0.5, "excitement": 0.15, "amusement": 0.15, "gratitude": 0.1, "love": 0.1},
    "angry": {"anger": 0.5, "annoyance": 0.3, "disapproval": 0.2},
    "sad": {"sadness": 0.5, "disappointment": 0.3, "grief": 0.1, "remorse": 0.1},
    "fearful": {"fear": 0.5, "nervousness": 0.5},
    "surprised": {"surprise": 0.6, "confusion": 0.2, "realization": 0.1, "curiosity": 0.1},
    "disgusted": {"disgust": 1.0}, "neutral": {"neutral": 1.0}, "calm": {"calm": 0.7, "relief": 0.3},
    "bored": {"bored": 1.0},
}


def fine_distribution(base: dict[str, float], fine: dict[str, float] | None = None,
                      rho: float = 0.0) -> dict[str, float]:
    """P over fine labels (GoEmotions names, plus calm / bored) from the fused base distribution; sums to 1."""
    out: dict[str, float] = {}
    rho = max(0.0, min(1.0, rho)) if fine else 0.0
    z_fine = float(sum((fine or {}).values()))
    for b, pb in base.items():
        prior = PRIOR_SPLIT.get(b, {b: 1.0})
        children = [f for f, fb in FINE_TO_BASE.items() if fb == b]
        q = {f: float((fine or {}).get(f, 0.0)) for f in children}
        zq = sum(q.values())
        names = dict.fromkeys([*prior, *children])
        # the words pick the shades of a class only as far as they speak of it: their own mass on it (zq)
        # scales rho, so neutral words under a happy voice leave the prototype split (joy first), not noise
        r = rho * min(1.0, zq / z_fine) if z_fine > 0 else 0.0
        for f in names:
            share = (1 - r) * prior.get(f, 0.0) + (r * q.get(f, 0.0) / zq if zq > 0 else r * prior.get(f, 0.0))
            if share > 0:
                out[f] = out.get(f, 0.0) + pb * share
    z = sum(out.values())
    return {f: p / z for f, p in out.items()} if z > 0 else {}


def select(dist: dict[str, float], mass: float = LABEL_MASS, max_size: int = LABEL_MAX) -> list[list[Any]]:
    """``[[adjective, p], ...]``: the most probable labels until their mass reaches ``mass``, at most
    ``max_size``, in decreasing p (ties by name). Two fine labels with one adjective pool their p."""
    merged: dict[str, float] = {}
    for f, p in dist.items():
        name = ADJECTIVE.get(f, f)
        merged[name] = merged.get(name, 0.0) + p
    ranked = sorted(merged.items(), key=lambda kv: (-kv[1], kv[0]))
    out, total = [], 0.0
    for name, p in ranked[:max(1, max_size)]:
        out.append([name, round(p, 4)])
        total += p
        if total >= mass:
            break
    return out


def label_set(base: dict[str, float] | None, fine: dict[str, float] | None = None, rho: float = 0.0,
              mass: float = LABEL_MASS, max_size: int = LABEL_MAX) -> list[list[Any]]:
    """The label set of a fused estimate (``[]`` when there is none), led by the fused top class.

    "neutral" is the absence of an emotion, not one of them: it neither spends the set's mass nor its size.
    The emotions are chosen by ``select`` over the mass that is not neutral (renormalised; their p stay the
    fused ones), so a mostly-neutral reading with a lean towards joy still names the joy (the question is
    which emotions are shown; the OV-MER metric drops "neutral"), and "neutral" comes first only where it is
    the fused top class (what a one-hot answer reads). Where the non-neutral mass is below ``EMOTION_FLOOR``
    the set is "neutral" alone.

    Ranking fine labels by their own mass alone would let an unsplit class outrank a split one: happy 0.46
    spread over joy, amusement, admiration … loses to neutral 0.30 kept whole, and the first label (the one a
    report leads with, what top-1 scores) would name a class the fusion ranked second. So the most probable
    label of the top base class goes first (added when the mass rule left it out, the last emotion dropped
    if the set is full)."""
    if not base:
        return []
    dist = fine_distribution(base, fine, rho)
    neutral = dist.pop("neutral", 0.0)
    rest = 1.0 - neutral
    out: list[list[Any]] = []
    if rest >= EMOTION_FLOOR:  # chosen over the emotions' own mass, reported at their fused p
        chosen = select({f: p / rest for f, p in dist.items()}, mass, max_size)
        out = [[name, round(p * rest, 4)] for name, p in chosen]
    top = max(base, key=lambda b: (base[b], b))
    if top == "neutral":
        return [["neutral", round(neutral, 4)], *out]
    lead = _best_label_of(dist, top)
    if lead is None or (out and out[0][0] == lead[0]):
        return out
    others = [x for x in out if x[0] != lead[0]]
    return [lead, *others][:max(1, max_size)]


def _best_label_of(dist: dict[str, float], base_class: str) -> list[Any] | None:
    """``[adjective, p]`` of the most probable fine label of ``base_class`` (adjectives pooled as in ``select``)."""
    merged: dict[str, float] = {}
    for f, p in dist.items():
        if FINE_TO_BASE.get(f, f) == base_class:
            name = ADJECTIVE.get(f, f)
            merged[name] = merged.get(name, 0.0) + p
    if not merged:
        return None
    name, p = min(merged.items(), key=lambda kv: (-round(kv[1], 4), kv[0] != base_class, kv[0]))  # ties: "happy"
    return [name, round(p, 4)]
