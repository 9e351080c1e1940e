"""String parsing shared by every metric: the official list-string rules, and pandas' notion of an empty cell.

The official OV-MER code reads label lists such as ``"['happy', 'relieved']"`` with a tiny parser (strip one
leading ``[`` and one trailing ``]``, split on quotes and commas, drop blanks). We reproduce it exactly, because a
different parser (``ast.literal_eval``, JSON) changes which labels survive and therefore the scores.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

from affectllm.utils.list_strings import LIST_SPLIT_RE, PANDAS_NA, parse_list_string  # noqa: F401 - one parser

_QUOTE_RE = re.compile(r"['\"]")
_GROUP_RE = re.compile(r"[\[\]]")


def parse_list_string_mer2024(value: object) -> list[str]:
    """MERTools' older ``string_to_list`` used by the MER2024 metric: text between the first ``[`` and ``]``,
    split on quotes only (commas inside quotes survive). Items are not stripped, exactly as there."""
    if value is None or isinstance(value, float):
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    s = str(value)
    if s in PANDAS_NA:
        return []
    if "[" in s:
        s = s.split("[", 1)[1]
    s = s.split("]", 1)[0]
    return [item for item in _QUOTE_RE.split(s) if item.strip() not in ("", ",")]


def parse_group_string(value: object) -> list[list[str]]:
    """The official ``listlist_to_list``: ``"[['a', 'b'], ['c']]"`` → ``[['a', 'b'], ['c']]``."""
    if isinstance(value, (list, tuple)):
        return [[str(x) for x in g] if isinstance(g, (list, tuple)) else [str(g)] for g in value]
    if hasattr(value, "tolist"):
        return parse_group_string(value.tolist())
    groups = [item for item in _GROUP_RE.split(str(value)) if item.strip() not in ("", ",")]
    return [[x for x in _QUOTE_RE.split(g) if x.strip() not in ("", ",")] for g in groups]


def parse_clean(value: object) -> list[str]:
    """``clean_labels(parse_list_string(value))`` in one pass for the common case, a list-string cell."""
    if type(value) is not str or value in PANDAS_NA:
        return clean_labels(parse_list_string(value))
    s = value[1:] if value[:1] == "[" else value
    if s[-1:] == "]":
        s = s[:-1]
    return [t.lower().strip() for item in LIST_SPLIT_RE.split(s) if (t := item.strip())]


def clean_labels(labels: Iterable[str]) -> list[str]:
    """Lower-case and strip each label (the reference does this before every lookup); order and repeats kept."""
    return [str(x).lower().strip() for x in labels]


def format_list_string(labels: Iterable[str]) -> str:
    """Write labels the way the official CSVs do: ``['a', 'b']``."""
    return "[" + ", ".join(f"'{x}'" for x in labels) + "]"
