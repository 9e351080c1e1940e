"""``affectllm eval run``: run a model over a task's media, cache each response, then score.

Media of a sample are found under ``--data-root`` with the task's patterns (``media.video: ["video/{id}.mp4"]``);
the subtitle, when the task names a column, is passed as text. Each response is appended to
``OUTDIR/responses/<fingerprint-hash>.jsonl`` as soon as it exists, so an interrupted or repeated run only does the
samples it has not done. A response is reused only when its key matches: sha256 over the model's full weights
fingerprint (affectllm/utils/fingerprint.py), the rendered prompt text (chat template + expert cues), the media files'
content, the generation parameters, the perception settings and the task file's content. Changing any of them
re-asks the model. A ``Responder`` perceives a sample, renders its prompt and answers it (``ModelResponder`` for an
AffectLLM model; tests pass a fake).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from affectllm.evaluation.io import EvalInputError, load_samples
from affectllm.evaluation.outputs import write_outputs
from affectllm.evaluation.scoring import Evaluation, evaluate
from affectllm.evaluation.tasks import Task, load_task
from affectllm.report import EmotionReport
from affectllm.utils.fingerprint import sha256_file

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
    """response key → cached response line; a truncated last line (interrupted run) and lines written before
    responses were keyed (no "key") are ignored."""
    done: dict[str, dict[str, Any]] = {}
    if path.is_file():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                obj = json.loads(line)
                done[str(obj["key"])] = obj
            except (json.JSONDecodeError, KeyError, TypeError):
                continue
    return done


@dataclass
class Request:
    """One sample made ready for the model: what decides its answer (keyed) and what answering needs."""

    prompt_text: str  # the rendered prompt: chat template, expert cues, question; media as markers
    settings: dict[str, Any]  # {"generation": {...}, "perception": {...}}
    state: Any = None  # e.g. the Perception, handed back to Responder.answer


class Responder(Protocol):
    fingerprint: str

    def request(self, media: dict[str, str], subtitle: str | None) -> Request: ...

    def answer(self, req: Request) -> EmotionReport: ...


class ModelResponder:
    """An AffectLLM model: perceive the sample, render its prompt, answer greedily."""

    def __init__(self, model: Any, processor: Any, prompt: str | None = None, max_new_tokens: int = 128) -> None:
        self.model, self.processor = model, processor
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        self.fingerprint = str(model.fingerprint)

    def request(self, media: dict[str, str], subtitle: str | None) -> Request:
        from affectllm.engine import Engine

        engine = Engine.for_model(self.model, self.processor)
        vision = dict(self.processor.vision or {})
        num_frames = vision.get("num_frames", 8)
        experts = engine.experts
        p = engine.perceive(video=media.get("video"), audio=media.get("audio"), image=media.get("image"),
                            subtitle=subtitle)
        text = engine.prompt_text(engine.renderer.single_turn(p, self.prompt))
        grounded = engine.grounded(engine.settings(max_new_tokens=self.max_new_tokens), [p], anchor=self.prompt is None)
        settings = {
            "generation": {**grounded.to_dict(), "config": self.model.generation_config.to_diff_dict()},
            "perception": {"num_frames": num_frames, "vision": vision, "num_tokens": dict(self.processor.num_tokens),
                           "use_cues": bool(self.model.config.use_cues), "whisper": experts.whisper_name,
                           "faces": experts.faces},
        }
        return Request(text, settings, p)

    def answer(self, req: Request) -> EmotionReport:
        from affectllm.engine import Engine

        engine = Engine.for_model(self.model, self.processor)
        return engine.report([req.state], prompt=self.prompt, max_new_tokens=self.max_new_tokens)[0]


def response_key(fingerprint: str, req: Request, media: dict[str, str], subtitle: str | None, task_hash: str) -> str:
    """sha256 of everything that decides a response (see the module docstring)."""
    blob = {"v": 2, "weights": fingerprint, "prompt": req.prompt_text, "settings": req.settings,
            "media": {m: sha256_file(p) for m, p in sorted(media.items())}, "subtitle": subtitle, "task": task_hash}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def task_hash(t: Task) -> str:
    """The task file's content hash (a Task built in code: its fields)."""
    if t.path and Path(t.path).is_file():
        return sha256_file(t.path)
    return hashlib.sha256(json.dumps(t.to_dict(), sort_keys=True, default=str).encode()).hexdigest()


def run_task(task: str | Task, model: str | None, data_root: str | os.PathLike[str], out_dir: str | os.PathLike[str],
             *, gt: str | os.PathLike[str] | None = None, limit: int | None = None,
             wheel_dir: str | os.PathLike[str] | None = None, judge: Any = None,
             progress: Callable[[int, int, str], None] | None = None, prompt: str | None = None,
             max_new_tokens: int = 128, responder: Responder | None = None, **score_kw: Any) -> Evaluation:
    t = load_task(task)
    root = Path(data_root)
    gt_path = Path(gt) if gt is not None else root / (t.gt_file or "")
    if not gt_path.is_file():
        raise EvalInputError(f"{gt_path}: ground truth not found; pass --gt or put the task's "
                             f"'{t.gt_file}' under --data-root")
    gt_file = load_samples(gt_path, **t.gt_columns())
    ids = gt_file.ids[:limit] if limit else gt_file.ids
    out = Path(out_dir)
    if responder is None:
        import affectllm.loading

        m, processor = affectllm.loading.load(model=model)
        responder = ModelResponder(m, processor, prompt=prompt, max_new_tokens=max_new_tokens)
    fingerprint = responder.fingerprint
    thash = task_hash(t)
    cache_path = out / "responses" / f"{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}.jsonl"
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cached = {k: v for k, v in read_cache(cache_path).items() if "error" not in v}  # failures are retried
    if cache_path.is_file() and cache_path.stat().st_size and not cache_path.read_bytes().endswith(b"\n"):
        with open(cache_path, "a", encoding="utf-8") as f:
            f.write("\n")  # an interrupted run left half a line: start ours on a fresh one
    done: dict[str, dict[str, Any]] = {}
    stats = {"reused": 0, "asked": 0}
    with open(cache_path, "a", encoding="utf-8") as f:
        for n, sid in enumerate(ids, start=1):
            media = find_media(t, root, sid)
            subtitle = gt_file.records[sid].extra.get("subtitle") or None
            row: dict[str, Any] = {"id": sid, "fingerprint": fingerprint, "media": media}
            if not media and not subtitle:
                row["error"] = f"no media for '{sid}' under {root} (patterns: {t.media})"
            else:
                req = responder.request(media, subtitle)
                key = response_key(fingerprint, req, media, subtitle, thash)
                if key in cached:
                    done[sid] = cached[key]
                    stats["reused"] += 1
                    continue
                row["key"] = key
                row["report"] = responder.answer(req).to_dict()
                stats["asked"] += 1
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
                         "responses": str(cache_path), "n_errors": sum(1 for s in ids if "error" in done[s]),
                         "task_sha256": thash, "max_new_tokens": max_new_tokens, "prompt": prompt, **stats}
    write_outputs(ev, out)
    return ev
