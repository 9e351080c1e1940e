"""Label vocabularies of the closed-set corpora and one canonical spelling for their class names.

Closed-set datasets name the same emotion differently (MELD "joy", EmoDB "happiness", RAVDESS "happy"). Builders
map class names through `canonical_label` so the model sees one adjective form per emotion; the dataset's own
name is kept in the row's ``meta.original_label``. Open-vocabulary labels (MER-Caption+, OV-MERD) are kept as
annotated (only lower-cased and stripped by `affectllm.report.normalise_labels`).
"""

from __future__ import annotations

_ALIASES: dict[str, str] = {
    "anger": "angry", "ang": "angry",
    "joy": "happy", "happiness": "happy", "hap": "happy", "exc": "happy",
    "sadness": "sad",
    "fear": "fearful", "afraid": "fearful",
    "disgust": "disgusted",
    "surprise": "surprised",
    "boredom": "bored",
    "neu": "neutral",
    "worry": "worried",
}

# Closed label sets, in each dataset's documented order, after `canonical_label`.
RAVDESS_EMOTIONS: dict[str, str] = {
    "01": "neutral", "02": "calm", "03": "happy", "04": "sad",
    "05": "angry", "06": "fearful", "07": "disgusted", "08": "surprised",
}
EMODB_EMOTIONS: dict[str, str] = {
    "W": "angry", "L": "bored", "E": "disgusted", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral",
}
MELD_LABELS: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "surprised", "fearful", "disgusted")
IEMOCAP4_LABELS: tuple[str, ...] = ("angry", "happy", "neutral", "sad")
MER2023_LABELS: tuple[str, ...] = ("neutral", "angry", "happy", "sad", "worried", "surprised")
MERR_LABELS: tuple[str, ...] = (
    "neutral", "angry", "happy", "sad", "worried", "surprised", "fearful", "contempt", "doubt",
)


def canonical_label(name: str) -> str:
    """One spelling per emotion class: lower-case, stripped, aliases mapped (``anger`` -> ``angry``)."""
    key = " ".join(str(name).strip().lower().split())
    return _ALIASES.get(key, key)


def parse_list_string(text: str | None) -> list[str]:
    """A MER list-string such as ``['happy', "relieved"]`` read by the official OV-MER rule
    (``affectllm.utils.list_strings.parse_list_string``, the one parser), every label lower-cased for the builders.
    ``None`` / empty text gives ``[]``."""
    from affectllm.utils.list_strings import parse_list_string as official

    return [label.lower() for label in official(text)]
