"""Write a scored run: OUTDIR/results.json, OUTDIR/samples.jsonl and OUTDIR/report.html; read results back."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

from affectllm.evaluation.scoring import Evaluation


def _clean(obj: Any) -> Any:
    """JSON-safe: non-finite floats become None (json.dumps would write NaN, which is not JSON)."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    return obj


def write_outputs(ev: Evaluation, out_dir: str | os.PathLike[str], html: bool = True) -> dict[str, Path]:
    """The three files of a run; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"results": out / "results.json", "samples": out / "samples.jsonl"}
    paths["results"].write_text(json.dumps(_clean(ev.results), indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
    with open(paths["samples"], "w", encoding="utf-8") as f:
        for row in ev.samples:
            f.write(json.dumps(_clean(row), ensure_ascii=False) + "\n")
    if html:
        from affectllm.evaluation.html_page import render_html

        paths["report"] = out / "report.html"
        paths["report"].write_text(render_html(ev.results, ev.plots), encoding="utf-8")
    return paths


def read_results(path: str | os.PathLike[str]) -> dict[str, Any]:
    """results.json of an OUTDIR (or the file itself), with a clear error when it is not a scored run."""
    p = Path(path)
    f = p / "results.json" if p.is_dir() else p
    if not f.is_file():
        raise FileNotFoundError(f"{f}: no results.json; run `affectllm eval score ... --out {p}` first")
    try:
        return json.loads(f.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ValueError(f"{f}: not valid JSON ({e.msg} at line {e.lineno})") from None
