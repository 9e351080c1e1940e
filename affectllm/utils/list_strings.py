"""The official OV-MER ``string_to_list``: how a label cell such as ``"['happy', 'relieved']"`` becomes a list.

The official code strips one leading ``[`` and one trailing ``]``, splits on quotes and commas and drops blanks;
a different parser (``ast.literal_eval``, JSON) changes which labels survive and therefore the scores. It lives
in ``utils`` so the metrics (``evaluation.parsing``) and the data builders (``instruct.labels``) read one copy.
"""

from __future__ import annotations

import re

# pandas.read_csv's default NA strings: the reference reads CSVs with pandas, so these cells are "empty" there.
PANDAS_NA = frozenset(
    {"", "#N/A", "#N/A N/A", "#NA", "-1.#IND", "-1.#QNAN", "-NaN", "-nan", "1.#IND", "1.#QNAN", "<NA>", "N/A",
     "NA", "NULL", "NaN", "None", "n/a", "nan", "null"}
)

LIST_SPLIT_RE = re.compile(r"['\",]")


def parse_list_string(value: object) -> list[str]:
    """The official ``string_to_list``: ``"['a', 'b']"`` → ``['a', 'b']``; a list passes through; empty → []."""
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return [str(v) for v in value]
    if hasattr(value, "tolist"):  # numpy scalar / array read from an npz
        return parse_list_string(value.tolist())
    if isinstance(value, float):  # pandas NaN
        return []
    s = str(value)
    if s in PANDAS_NA:
        return []
    if s[:1] == "[":
        s = s[1:]
    if s[-1:] == "]":
        s = s[:-1]
    return [item.strip() for item in LIST_SPLIT_RE.split(s) if item.strip() not in ("", ",")]
