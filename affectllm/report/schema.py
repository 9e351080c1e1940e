"""The JSON Schema of an ``EmotionReport`` (``to_json``'s output): what structured-output clients may ask for.

One entry per dataclass field, with the JSON types the field can take (``valence`` is null when the answer
gave none). The server answers ``response_format: json_schema`` requests with the report's fields their schema
names, so a schema can ask for any subset of these properties with types at least this wide.
"""

from __future__ import annotations

import copy
from typing import Any

_STRINGS = {"type": "array", "items": {"type": "string"}}
REPORT_JSON_SCHEMA: dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "title": "EmotionReport",
    "type": "object",
    "properties": {
        "labels": {**_STRINGS, "description": "emotion labels, open vocabulary, lower-case, most salient first"},
        "explanation": {"type": "string", "description": "why: the face, voice and words that show it"},
        "valence": {"type": ["number", "null"], "minimum": -1, "maximum": 1, "description": "negative .. positive"},
        "arousal": {"type": ["number", "null"], "minimum": -1, "maximum": 1, "description": "calm .. excited"},
        "transcript": {"type": ["string", "null"], "description": "what was said (ASR or the given subtitle)"},
        "language": {"type": ["string", "null"], "description": "language of the speech"},
        "evidence": {"type": "object", "description": "per-modality cues: face, voice, text, fused"},
        "raw": {"type": "string", "description": "the generated text, as produced"},
        "translation": {"type": ["string", "null"], "description": "English rendering of non-English speech"},
        "faithful": {"type": "boolean", "description": "no unsupported quote, cited word or loop"},
        "faithfulness_problems": {**_STRINGS, "description": "why the report is not faithful"},
        "labels_source": {"type": ["string", "null"], "enum": ["answer", "fused", None],
                          "description": "where the labels came from"},
        "explanation_source": {"type": ["string", "null"], "enum": ["answer", "composed", None],
                               "description": "the model's own explanation, or one composed from the evidence"},
        "explanation_replaced": {**_STRINGS, "description": "why the model's own explanation was replaced"},
    },
    "required": ["labels", "explanation", "valence", "arousal", "transcript", "language", "evidence", "raw",
                 "translation", "faithful", "faithfulness_problems", "labels_source"],
    "additionalProperties": False,
}


def report_json_schema() -> dict[str, Any]:
    """A copy of the report's JSON Schema (draft 2020-12)."""
    return copy.deepcopy(REPORT_JSON_SCHEMA)


def field_types(name: str) -> set[str]:
    """The JSON types report field ``name`` can take (``{"number", "null"}`` for valence)."""
    t = REPORT_JSON_SCHEMA["properties"][name]["type"]
    return {t} if isinstance(t, str) else set(t)
