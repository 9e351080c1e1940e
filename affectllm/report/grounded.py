"""Grounded training targets: an explanation composed from the cues actually measured on a clip.

Used to build the starter instruction set, where only a class label is known: the target explanation is the
one composer's (``affectllm.instruct.reasoning``): it cites what each channel measured, says where they
disagree and which weighs more, says what was missing, and then names the label, so the model learns to
reason over the evidence it is shown.
"""

from __future__ import annotations

from affectllm.report import format_report

# label -> (open-vocabulary labels, valence, arousal); circumplex positions after Russell (1980)
EMOTIONS: dict[str, tuple[list[str], float, float]] = {
    "neutral": (["neutral"], 0.0, -0.2),
    "calm": (["calm", "relaxed"], 0.3, -0.6),
    "happy": (["happy", "joyful"], 0.8, 0.5),
    "sad": (["sad"], -0.7, -0.4),
    "angry": (["angry"], -0.7, 0.8),
    "fearful": (["fearful", "worried"], -0.6, 0.6),
    "disgusted": (["disgusted"], -0.6, 0.3),
    "surprised": (["surprised"], 0.2, 0.8),
    "bored": (["bored"], -0.3, -0.7),
}

ALIASES = {"anger": "angry", "happiness": "happy", "joy": "happy", "sadness": "sad", "fear": "fearful",
           "disgust": "disgusted", "surprise": "surprised", "boredom": "bored"}


def canonical(label: str) -> str:
    label = label.strip().lower()
    label = ALIASES.get(label, label)
    if label not in EMOTIONS:
        raise ValueError(f"unknown starter label {label!r}; known: {sorted(EMOTIONS)}")
    return label


def grounded_explanation(perception, label: str, key: str | None = None) -> str:
    """The composed explanation (``affectllm.instruct.reasoning``): every channel that measured something, the
    conflicts between them, what was missing, then the label's names as the conclusion."""
    from affectllm.instruct.reasoning import explain

    return explain(perception, EMOTIONS[canonical(label)][0], key=key)


def grounded_report(perception, label: str, key: str | None = None) -> str:
    """The full target text (Labels / Valence / Arousal / Explanation) for one labelled clip."""
    label = canonical(label)
    names, valence, arousal = EMOTIONS[label]
    return format_report(names, grounded_explanation(perception, label, key), valence, arousal)
