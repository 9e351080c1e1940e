"""``response_format`` answered through the structured report: the content is the EmotionReport as JSON.

- ``json_object``: the whole report (``affectllm.report.schema``);
- ``json_schema``: the report's fields that the client's schema names (its ``properties``; all of them when it
  names none). The schema is checked before any model work: a property that is no report field, or whose type
  is narrower than the field's (``valence`` may be null), is a 400 naming it and the fix. The answer is then
  validated against the client's schema; a report that cannot satisfy it (``minItems`` on empty labels ...) is
  a 422, never invalid JSON.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from affectllm.report import EmotionReport
from affectllm.report.schema import REPORT_JSON_SCHEMA, field_types
from affectllm.serving.errors import RequestError

PARAM = "response_format.json_schema.schema"


@dataclass(frozen=True)
class StructuredOutput:
    """How to write a report as the answer's content."""

    fields: tuple[str, ...] | None = None  # None: every report field
    schema: dict[str, Any] | None = None  # the client's schema, validated against

    def render(self, report: EmotionReport) -> str:
        full = json.loads(report.to_json())  # JSON-safe (numpy scalars in evidence become numbers)
        out = full if self.fields is None else {k: full[k] for k in self.fields}
        if self.schema is not None:
            from jsonschema import Draft202012Validator

            error = next(iter(Draft202012Validator(self.schema).iter_errors(out)), None)
            if error is not None:
                where = "/".join(str(p) for p in error.absolute_path) or "(root)"
                raise RequestError(422, f"this answer's report does not satisfy response_format's schema at "
                                        f"{where}: {error.message[:200]}; loosen that constraint (the report's "
                                        "own schema fits every answer)", PARAM, "schema_unsatisfied")
        return json.dumps(out, ensure_ascii=False)


def _types(prop: dict[str, Any]) -> set[str] | None:
    """The JSON types a schema property allows (None: any)."""
    if "type" in prop:
        t = prop["type"]
        return {t} if isinstance(t, str) else {str(x) for x in t}
    alternatives = prop.get("anyOf") or prop.get("oneOf")
    if isinstance(alternatives, list):
        found: set[str] = set()
        for alt in alternatives:
            got = _types(alt) if isinstance(alt, dict) else None
            if got is None:
                return None
            found |= got
        return found
    return None


def structured_output(kind: str, spec: Any = None) -> StructuredOutput | None:
    """The output of ``response_format`` of type ``kind`` (``spec``: its ``json_schema`` object); None: text."""
    if kind in (None, "text"):
        return None
    if kind == "json_object":
        return StructuredOutput()
    if spec is None:
        raise RequestError(400, 'response_format of type json_schema needs a "json_schema" object: '
                                '{"name": ..., "schema": {...}}', "response_format.json_schema")
    schema = spec.schema_
    if schema is None:
        return StructuredOutput()
    from jsonschema import Draft202012Validator
    from jsonschema.exceptions import SchemaError

    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as err:
        raise RequestError(400, f"response_format's schema is not a valid JSON Schema: {err.message[:200]}",
                           PARAM) from None
    if schema.get("type", "object") != "object":
        raise RequestError(400, f"response_format's schema has type {schema.get('type')!r}; the answer is the "
                                "emotion report, a JSON object: use \"type\": \"object\"", PARAM)
    props = schema.get("properties") or {}
    names = list(props) + [n for n in (schema.get("required") or []) if n not in props]
    if not names:
        return StructuredOutput(schema=schema)
    report_fields = REPORT_JSON_SCHEMA["properties"]
    for name in names:
        if name not in report_fields:
            raise RequestError(400, f"response_format's schema asks for {name!r}, which the emotion report does "
                                    f"not have; ask for some of: {', '.join(report_fields)}", PARAM)
        allowed = _types(props.get(name) or {})
        if allowed is None:
            continue
        missing = field_types(name) - allowed
        if missing:
            want = sorted(field_types(name))
            raise RequestError(400, f"response_format's schema gives {name!r} type {sorted(allowed)}, but the "
                                    f"report's {name} can be {' or '.join(missing)}; declare \"type\": {json.dumps(want)}",
                               f"{PARAM}.properties.{name}")
    return StructuredOutput(fields=tuple(names), schema=schema)
