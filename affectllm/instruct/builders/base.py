"""The builder contract and the one driver that streams a source into a validated JSONL file.

A builder parses one corpus layout into `SourceSample`s and reports what it cannot use through `BuildContext.skip`
(a malformed line, an unknown label, a missing clip) instead of raising; the driver turns samples into rows
(`affectllm.instruct.compose`), validates each row, skips duplicates and invalid rows, writes the file
atomically and returns a `BuildSummary` with rows written and rows skipped per reason.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

from affectllm.instruct.builders._index import MediaIndex, Scratch
from affectllm.instruct.compose import PathMode, SourceSample, rows_for_sample
from affectllm.instruct.io import write_jsonl
from affectllm.instruct.prompts import PromptPools, load_pools
from affectllm.instruct.schema import TASKS, Row, check_row

log = logging.getLogger("affectllm.instruct.build")


@dataclass
class BuildSummary:
    """What a build did: samples used, rows written per task, and samples/rows skipped per reason."""

    source: str
    out: Path | None = None
    samples_used: int = 0
    rows: int = 0
    rows_by_task: Counter[str] = field(default_factory=Counter)
    skipped: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)  # the first few skipped items, "where [key]: reason"

    def lines(self) -> list[str]:
        out = [f"source {self.source}: {self.rows} rows written from {self.samples_used} samples"
               + (f" -> {self.out}" if self.out else "")]
        if self.rows_by_task:
            out.append("  rows per task: " + ", ".join(f"{k} {v}" for k, v in sorted(self.rows_by_task.items())))
        total = sum(self.skipped.values())
        out.append(f"  skipped: {total}" + (" (" + "; ".join(f"{r}: {n}" for r, n in
                                                             self.skipped.most_common()) + ")" if total else ""))
        return out


class BuildContext:
    """What a builder gets: the root, a scratch database, media lookup, and `skip` for bad input."""

    def __init__(self, root: Path, scratch: Scratch, summary: BuildSummary, max_examples: int = 20) -> None:
        self.root = Path(root)
        self.folder = self.root if self.root.is_dir() else self.root.parent
        self.scratch, self.summary, self.max_examples = scratch, summary, max_examples
        self._media: MediaIndex | None = None

    def skip(self, reason: str, where: str, key: str | None = None, detail: str = "") -> None:
        """Count one skipped sample under ``reason`` and log where it is (the first few are also kept)."""
        self.summary.skipped[reason] += 1
        text = f"{where}" + (f" [{key}]" if key else "") + f": {reason}" + (f" ({detail})" if detail else "")
        if len(self.summary.examples) < self.max_examples:
            self.summary.examples.append(text)
            log.warning("skipped %s", text)

    def find_media(self, stem: str, kind: str, hint: str | None = None) -> Path | None:
        """A media file of ``kind`` named ``stem`` anywhere under the root folder (any extension of that kind)."""
        if self._media is None:
            self._media = MediaIndex(self.scratch, self.folder)
        return self._media.find(stem, kind, hint)

    def locate(self, names: Sequence[str], main: bool = False, required: bool = True) -> Path | None:
        """An annotation file by name: ROOT itself when it is a file (and ``main``), else under the root folder."""
        if self.root.is_file():
            if main or self.root.name in names:
                return self.root
        for name in names:
            if (self.folder / name).is_file():
                return self.folder / name
        for name in names:
            hits = sorted(self.folder.rglob(name))
            if hits:
                return hits[0]
        if required:
            raise FileNotFoundError(f"{self.root}: found no {' or '.join(names)}; point --root at the folder "
                                    "that holds the annotation files (or at the file itself)")
        return None

    def main_file(self, names: Sequence[str]) -> Path:
        """The corpus's main annotation file (ROOT itself when it is a file); missing: FileNotFoundError."""
        path = self.locate(names, main=True)
        assert path is not None  # required: locate raised otherwise
        return path


class Builder(ABC):
    """One corpus layout. Subclasses set the class attributes and implement `samples`."""

    name: ClassVar[str]  # the --source name
    summary: ClassVar[str]  # one line for `affectllm data sources`
    layout: ClassVar[str]  # the files it expects under --root

    @abstractmethod
    def samples(self, ctx: BuildContext) -> Iterator[SourceSample]:
        """Stream the corpus' samples; report unusable input with ``ctx.skip`` and carry on."""


class AnnotationFileBuilder(Builder):
    """A corpus indexed by one main annotation file: ROOT itself when it is a file, else the first of
    ``main_files`` found under it. Subclasses implement `samples_from` that file."""

    main_files: ClassVar[tuple[str, ...]]  # the accepted names, preferred first

    def samples(self, ctx: BuildContext) -> Iterator[SourceSample]:
        yield from self.samples_from(ctx, ctx.main_file(self.main_files))

    @abstractmethod
    def samples_from(self, ctx: BuildContext, path: Path) -> Iterator[SourceSample]:
        """Stream the samples of the main annotation file at ``path``."""


@dataclass(frozen=True)
class RowOptions:
    """How a source's samples become rows (the keyword arguments of `iter_rows` and `build`)."""

    tasks: Sequence[str] | None = None  # None: every task a sample has a target for
    seed: int = 0  # picks the prompt paraphrases
    limit: int | None = None  # stop after this many samples used
    out_dir: Path | None = None  # media paths are written relative to it (``path_mode``)
    path_mode: PathMode = "auto"
    require_media: bool = True  # skip samples whose clip is not found
    pools: PromptPools | None = None  # None: the packaged prompt pools


def iter_rows(builder: Builder, root: Path, summary: BuildSummary, **options: Any) -> Iterator[Row]:
    """Stream validated rows of one source (``options``: the fields of `RowOptions`); every skip is counted in
    ``summary``."""
    return _iter_rows(builder, Path(root), summary, RowOptions(**options))


def _iter_rows(builder: Builder, root: Path, summary: BuildSummary, opts: RowOptions) -> Iterator[Row]:
    if not root.exists():
        raise FileNotFoundError(f"{root}: no such file or folder; pass the corpus folder as --root")
    unknown = [t for t in (opts.tasks or []) if t not in TASKS]
    if unknown:
        raise ValueError(f"unknown task(s) {', '.join(unknown)}; tasks are {', '.join(TASKS)}")
    pools = opts.pools or load_pools()
    seen: set[str] = set()
    with Scratch() as scratch:
        ctx = BuildContext(root, scratch, summary)
        samples = builder.samples(ctx)
        try:
            yield from _rows_of(samples, ctx, summary, seen, pools, opts)
        finally:
            samples.close()  # type: ignore[attr-defined]


def _rows_of(samples: Iterator[SourceSample], ctx: BuildContext, summary: BuildSummary, seen: set[str],
             pools: PromptPools, opts: RowOptions) -> Iterator[Row]:
    limit = opts.limit
    for sample in samples:
        if limit is not None and summary.samples_used >= limit:
            break
        where = sample.where or str(ctx.root)
        if opts.require_media and not sample.media():
            ctx.skip("media not found", where, sample.key,
                     f"no video/audio/image named {Path(sample.key).name!r} under {ctx.folder}")
            continue
        if not sample.media() and not sample.subtitle:
            ctx.skip("no media and no subtitle", where, sample.key, "the sample has nothing to watch or read")
            continue
        rows = rows_for_sample(sample, opts.tasks, pools, seed=opts.seed, out_dir=opts.out_dir,
                               path_mode=opts.path_mode)
        if not rows:
            ctx.skip("no known target for the requested tasks", where, sample.key)
            continue
        good: list[Row] = []
        for row in rows:
            errors = check_row(row, 0)
            if row["id"] in seen:
                ctx.skip("duplicate id", where, row["id"])
            elif errors:
                ctx.skip("invalid row", where, row["id"], "; ".join(e.message for e in errors[:3]))
            else:
                seen.add(row["id"])
                good.append(row)
        if good:
            summary.samples_used += 1
        for row in good:
            summary.rows += 1
            summary.rows_by_task[row["task"]] += 1
            yield row
        if limit is not None and summary.samples_used >= limit:
            return  # stop before the builder reads (and maybe skips) anything past the limit


def build(builder: Builder, root: Path, out: Path, **options: Any) -> BuildSummary:
    """Build ``out`` (JSONL, written atomically) from the corpus at ``root``; returns the summary. ``options``: the
    fields of `RowOptions` (media paths are relative to ``out``'s folder)."""
    out = Path(out)
    summary = BuildSummary(source=builder.name, out=out)
    write_jsonl(out, iter_rows(builder, root, summary, out_dir=out.parent, **options))
    return summary
