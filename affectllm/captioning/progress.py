"""Progress of a caption run on stderr: a rich bar with ETA, throughput and error count, then a summary.

Records go to stdout or ``--out``; everything here goes to stderr so ``affectllm caption x.mp4 | jq`` works.
On a non-terminal stderr rich draws nothing live and only the summary line is printed.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeRemainingColumn,
)
from rich.text import Text


@dataclass
class Summary:
    """Counts of one run: ``ok`` and ``failed`` records written now, ``skipped`` ids already in the output."""

    ok: int = 0
    failed: int = 0
    skipped: int = 0
    skipped_failed: int = 0  # of the skipped ids, those whose earlier record is an error
    started: float = field(default_factory=time.perf_counter)
    seconds: float = 0.0

    @property
    def done(self) -> int:
        return self.ok + self.failed

    @property
    def items_per_minute(self) -> float:
        return 60.0 * self.done / self.seconds if self.seconds > 0 else 0.0

    @property
    def any_failed(self) -> bool:
        return self.failed > 0 or self.skipped_failed > 0

    def line(self) -> str:
        extra = f" ({self.skipped_failed} of them failed earlier)" if self.skipped_failed else ""
        return (f"{self.ok} ok, {self.failed} failed, {self.skipped} skipped{extra} in {self.seconds:.1f} s "
                f"({self.items_per_minute:.1f} items/min)")

    def to_dict(self) -> dict[str, Any]:
        return {"ok": self.ok, "failed": self.failed, "skipped": self.skipped,
                "skipped_failed": self.skipped_failed, "seconds": round(self.seconds, 3),
                "items_per_minute": round(self.items_per_minute, 3)}


class _RateColumn(ProgressColumn):
    """Items per minute since the start (the per-item time is seconds, so per second reads as 0.0)."""

    def render(self, task: Task) -> Text:
        elapsed = task.elapsed or 0.0
        rate = 60.0 * task.completed / elapsed if elapsed > 0 else 0.0
        return Text(f"{rate:.1f}/min", style="progress.data.speed")


class CaptionProgress:
    """``with CaptionProgress(total) as p: p.advance(record)``; ``p.summary`` holds the counts."""

    def __init__(self, total: int, skipped: int = 0, skipped_failed: int = 0, console: Console | None = None,
                 enabled: bool = True) -> None:
        self.console = console or Console(stderr=True)
        self.summary = Summary(skipped=skipped, skipped_failed=skipped_failed)
        self.enabled = enabled
        self._progress = Progress(
            TextColumn("[bold]caption"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn(), _RateColumn(),
            TextColumn("[red]{task.fields[errors]} failed"), TextColumn("{task.fields[current]}"),
            console=self.console, transient=False, disable=not enabled)
        self._task = self._progress.add_task("caption", total=total, errors=0, current="")

    def __enter__(self) -> CaptionProgress:
        self.summary.started = time.perf_counter()
        self._progress.start()
        return self

    def advance(self, record: dict[str, Any]) -> None:
        if record.get("status") == "ok":
            self.summary.ok += 1
        else:
            self.summary.failed += 1
        self._progress.update(self._task, advance=1, errors=self.summary.failed, current=str(record.get("id", ""))[-40:])

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()
        self.summary.seconds = time.perf_counter() - self.summary.started
        if self.enabled:
            style = "red" if self.summary.any_failed else "green"
            self.console.print(f"[{style}]{self.summary.line()}[/{style}]")
