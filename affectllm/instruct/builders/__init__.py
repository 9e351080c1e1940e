"""Dataset builders: one class per corpus layout, looked up by its ``--source`` name.

Each builder streams its corpus into `SourceSample`s; `build` / `iter_rows` (in `base`) turn them into validated
schema rows and a summary. ``affectllm data sources`` lists them with the files each one expects.
"""

from __future__ import annotations

from affectllm.instruct.builders.base import Builder, BuildSummary, RowOptions, build, iter_rows
from affectllm.instruct.builders.corpora import IemocapBuilder, MeldBuilder
from affectllm.instruct.builders.filenames import EmoDBBuilder, RavdessBuilder
from affectllm.instruct.builders.mer import EmerV1Builder, EmerV2Builder, MerCaptionPlusBuilder, OvMerdBuilder
from affectllm.instruct.builders.merr import MerrBuilder

SOURCES: dict[str, type[Builder]] = {
    cls.name: cls
    for cls in (MerCaptionPlusBuilder, OvMerdBuilder, EmerV1Builder, EmerV2Builder, MerrBuilder, MeldBuilder,
                IemocapBuilder, RavdessBuilder, EmoDBBuilder)
}


def get_builder(name: str) -> Builder:
    """The builder for a ``--source`` name; the error lists the known names."""
    try:
        return SOURCES[name.strip().lower()]()
    except KeyError:
        raise KeyError(f"unknown source {name!r}; known sources: {', '.join(SOURCES)}") from None


__all__ = ["SOURCES", "Builder", "BuildSummary", "RowOptions", "build", "get_builder", "iter_rows"]
