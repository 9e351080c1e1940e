"""What a training run writes as it goes: ``metrics.jsonl`` (one line a step) and the closing summary text."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, flushed at once (other processes watch it)."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        if resume_step is None:
            path.write_text("")
        elif path.exists():  # drop what the interrupted run logged after its last checkpoint
            keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0)
                    <= resume_step]
            path.write_text("".join(k + "\n" for k in keep))
        self.f = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def summary_text(s: dict[str, Any]) -> str:
    """The summary dict as the few lines the run prints at its end."""
    lines = [f"done: {s['steps']} steps, {s['epochs_completed']} epoch(s) completed in {s['wall_s']} s",
             f"rows skipped: {s['skipped_at_load']} at load, {s['skipped_in_epochs']} during epochs"
             + (f" (e.g. {', '.join(s['skipped_ids'][:5])})" if s["skipped_ids"] else ""),
             f"feature cache: {s['cache']['hits']} hits, {s['cache']['misses']} misses, "
             f"{s['cache']['invalid']} invalid entries recomputed (hit rate {s['cache']['hit_rate']:.0%})"]
    if s["eval"]:
        lines.append("eval: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in s["eval"].items()))
    lines.append(f"adapter: {s['adapter']}")
    return "\n".join(lines)
