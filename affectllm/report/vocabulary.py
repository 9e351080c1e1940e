"""The emotion vocabulary that reports, evidence and explanations share: GoEmotions' 28 fine labels, their base
classes and adjectives, and the flags a reliability reason carries when it lowered a channel's weight. It sits
in ``report`` (the lowest layer that speaks of emotions) so perception, instruct and report read one copy."""

from __future__ import annotations

from affectllm.report.grounded import EMOTIONS

# GoEmotions' label order (its emotions.txt), 27 emotions + neutral
FINE_LABELS: tuple[str, ...] = (
    "admiration", "amusement", "anger", "annoyance", "approval", "caring", "confusion", "curiosity", "desire",
    "disappointment", "disapproval", "disgust", "embarrassment", "excitement", "fear", "gratitude", "grief", "joy",
    "love", "nervousness", "optimism", "pride", "realization", "relief", "remorse", "sadness", "surprise", "neutral",
)
FINE_TO_BASE: dict[str, str] = {
    # Demszky et al. (2020)'s Ekman grouping of GoEmotions, with relief as calm
    "admiration": "happy", "amusement": "happy", "approval": "happy", "caring": "happy", "desire": "happy",
    "excitement": "happy", "gratitude": "happy", "joy": "happy", "love": "happy", "optimism": "happy",
    "pride": "happy", "relief": "calm",
    "anger": "angry", "annoyance": "angry", "disapproval": "angry",
    "disgust": "disgusted",
    "fear": "fearful", "nervousness": "fearful",
    "sadness": "sad", "disappointment": "sad", "embarrassment": "sad", "grief": "sad", "remorse": "sad",
    "surprise": "surprised", "realization": "surprised", "confusion": "surprised", "curiosity": "surprised",
    "neutral": "neutral",
}
ADJECTIVE: dict[str, str] = {
    "admiration": "admiring", "amusement": "amused", "anger": "angry", "annoyance": "annoyed",
    "approval": "approving", "caring": "caring", "confusion": "confused", "curiosity": "curious",
    "desire": "eager", "disappointment": "disappointed", "disapproval": "disapproving", "disgust": "disgusted",
    "embarrassment": "embarrassed", "excitement": "excited", "fear": "afraid", "gratitude": "grateful",
    "grief": "grieving", "joy": "happy", "love": "loving", "nervousness": "nervous", "optimism": "optimistic",
    "pride": "proud", "realization": "realizing", "relief": "relieved", "remorse": "guilty", "sadness": "sad",
    "surprise": "surprised", "neutral": "neutral", "calm": "calm", "bored": "bored",
}
# the flags ending a reliability reason whose factor lowered the weight ("2 words (too few)"): written by
# ``perception.reliability``, cited by ``instruct.reasoning`` when it says why a channel is trusted less
LOWERING_FLAGS = ("too few", "low", "small", "short", "out of domain", "partial", "weak")


def base_of_label(name: str) -> str | None:
    """The base class a label-set name (an adjective such as ``admiring``, or a GoEmotions name) belongs to, by
    ``FINE_TO_BASE``; None for a name outside the fine vocabulary."""
    name = str(name).strip().lower()
    fine = next((f for f, adj in ADJECTIVE.items() if adj == name), name)
    return FINE_TO_BASE.get(fine) or (fine if fine in EMOTIONS else None)
