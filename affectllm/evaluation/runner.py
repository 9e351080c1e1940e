"""``affectllm eval run``: run a model over a task's media, cache each response, then score.

Media of a sample are found under ``--data-root`` with the task's patterns (``media.video: ["video/{id}.mp4"]``);
the subtitle, when the task names a column, is passed as text. Each response is appended to
``OUTDIR/responses/<fingerprint-hash>.jsonl`` as soon as it exists, keyed by sample id and model fingerprint, so an
interrupted or repeated run only does the samples it has not done. The model API is
``affectllm.load(model=...)`` → (model, processor) and ``affectllm.predict(model, processor, video=, audio=,
image=, text=)`` → EmotionReport.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from affectllm.evaluation.io import EvalInputError, load_samples
from affectllm.evaluation.outputs import write_outputs
from affectllm.evaluation.scoring import Evaluation, evaluate
from affectllm.evaluation.tasks import Task, load_task

MODALITIES = ("video", "audio", "image")


def find_media(task: Task, data_root: Path, sid: str) -> dict[str, str]:
    """modality → the first existing file among the task's patterns for this id."""
    found: dict[str, str] = {}
    for modality in MODALITIES:
        patterns = task.media.get(modality) or []
        for pat in [patterns] if isinstance(patterns, str) else patterns:
            p = data_root / pat.format(id=sid)
            if p.is_file():
                found[modality] = str(p)
                break
    return found


def read_cache(path: Path) -> dict[str, dict[str, Any]]:
    """id → cached response line; a truncated last line (interrupted run) is ignored."""
    done: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
                done[str(obj["id"])] = obj
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


def run_task(task: str | Task, model: str | None, data_root: str | os.PathLike[str], out_dir: str | os.PathLike[str],
             *, gt: str | os.PathLike[str] | None = None, limit: int | None = None,
             wheel_dir: str | os.PathLike[str] | None = None, judge: Any = None,
             progress: Callable[[int, int, str], None] | None = None, **score_kw: Any) -> Evaluation:
    import affectllm

    t = load_task(task)
    root = Path(data_root)
    gt_path = Path(gt) if gt is not None else root / (t.gt_file or "")
    if not gt_path.is_file():
        raise EvalInputError(f"{gt_path}: ground truth not found; pass --gt or put the task's "
                             f"'{t.gt_file}' under --data-root")
    gt_file = load_samples(gt_path, **t.gt_columns())
    ids = gt_file.ids[:limit] if limit else gt_file.ids
    out = Path(out_dir)
    m, processor = affectllm.load(model=model)
    fingerprint = str(getattr(m, "fingerprint", None) or repr(model))
    cache_path = out / "responses" / f"{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}.jsonl"
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    done = {k: v for k, v in read_cache(cache_path).items() if "error" not in v}  # failures are retried
    if cache_path.is_file() and cache_path.stat().st_size and not cache_path.read_bytes().endswith(b"\n"):
        with open(cache_path, "a", encoding="utf-8") as f:
            f.write("\n")  # an interrupted run left half a line: start ours on a fresh one
    with open(cache_path, "a", encoding="utf-8") as f:
        for n, sid in enumerate(ids, start=1):
            if sid in done:
                continue
            media = find_media(t, root, sid)
            subtitle = gt_file.records[sid].extra.get("subtitle") or None
            row: dict[str, Any] = {"id": sid, "fingerprint": fingerprint, "media": media}
            if not media and not subtitle:
                row["error"] = f"no media for '{sid}' under {root} (patterns: {t.media})"
            else:
                rep = affectllm.predict(m, processor, video=media.get("video"), audio=media.get("audio"),
                                        image=media.get("image"), text=subtitle)
                row["report"] = rep.to_dict()
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
            f.flush()
            done[sid] = row
            if progress:
                progress(n, len(ids), sid)
    pred_path = out / "predictions.jsonl"
    with open(pred_path, "w", encoding="utf-8") as f:
        for sid in ids:
            rep = done[sid].get("report") or {}
            # labels (and the explanation for judges); the report's own valence is kept apart so sentiment tasks
            # follow the MER-UniBench protocol (labels → judge → polarity).
            f.write(json.dumps({"id": sid, "labels": rep.get("labels", []), "explanation": rep.get("explanation", ""),
                                "report_valence": rep.get("valence")}, ensure_ascii=False) + "\n")
    sub_gt = load_samples({sid: gt_file.records[sid] for sid in ids}) if limit else gt_file
    sub_gt.path, sub_gt.sha256 = gt_file.path, gt_file.sha256
    ev = evaluate(t, sub_gt, pred_path, wheel_dir, judge=judge, **score_kw)
    ev.results["run"] = {"model": model, "fingerprint": fingerprint, "data_root": str(root),
                         "responses": str(cache_path), "n_errors": sum(1 for s in ids if "error" in done[s])}
    write_outputs(ev, out)
    return ev
