"""Grounded training targets: an explanation composed from the cues actually measured on a clip.

Used to build the starter instruction set, where only a class label is known: the target explanation cites
what the experts observed (the face's expression probabilities, the prosody cues, the transcript and its
emotion words) and then names the label, so the model learns to ground its reasons in evidence it is shown.
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


def grounded_explanation(perception, label: str) -> str:
    """One to four sentences: face, voice, words (each only when observed), then the conclusion."""
    label = canonical(label)
    parts: list[str] = []
    face = perception.face or {}
    if face.get("mean_probs"):
        top = face["top"]
        p = face["mean_probs"][top]
        parts.append(f"The face looks {_face_word(top)} ({p:.2f}) in {face['frames_with_face']} of "
                     f"{face['frames']} frames")
    elif perception.frames is not None:
        parts.append("No face is visible")
    cues = (perception.voice or {}).get("cues") or []
    if cues:
        parts.append("the voice shows " + _join([c for c in cues if c]))
    if perception.transcript:
        said = f'the speaker says "{perception.transcript.strip()}"'
        if getattr(perception, "translation", None):
            said += f' ("{perception.translation.strip()}")'
        words = (perception.text or {}).get("emotion_words") or []
        if words:  # lexicon hits: {word, emotions, source, text} (plain strings in older perceptions)
            word = words[0]["word"] if isinstance(words[0], dict) else words[0]
            said += f", and words like \"{word}\" carry the feeling"
        parts.append(said)
    evidence = "; ".join(parts)
    if evidence:
        evidence = evidence[0].upper() + evidence[1:]
        evidence += "" if evidence.rstrip('"').endswith((".", "!", "?")) else "."
    else:
        evidence = "There are few cues."
    names = EMOTIONS[label][0]
    return f"{evidence} Together this suggests the person feels {_join(names)}."


def grounded_report(perception, label: str) -> str:
    """The full target text (Labels / Valence / Arousal / Explanation) for one labelled clip."""
    label = canonical(label)
    names, valence, arousal = EMOTIONS[label]
    return format_report(names, grounded_explanation(perception, label), valence, arousal)


def _face_word(expr: str) -> str:
    return {"angry": "angry", "disgust": "disgusted", "fear": "fearful", "happy": "happy", "sad": "sad",
            "surprise": "surprised", "neutral": "neutral"}.get(expr, expr)


def _join(items: list[str]) -> str:
    items = [i for i in items if i]
    if len(items) <= 1:
        return "".join(items)
    return ", ".join(items[:-1]) + " and " + items[-1]
