"""The starter's emotion vocabulary: base labels, their open-vocabulary names and circumplex positions.

The starter's training targets (``affectllm.instruct.reasoning.grounded_report``) name a clip's class by these;
fusion and the voice expert map their classes onto them.
"""

from __future__ import annotations

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
