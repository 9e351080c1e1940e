"""``affectllm eval run``: run a model over a task's media, cache each response, then score.

Media of a sample are found under ``--data-root`` with the task's patterns (``media.video: ["video/{id}.mp4"]``);
the subtitle, when the task names a column, is passed as text. Each response is appended to
``OUTDIR/responses/<fingerprint-hash>.jsonl`` as soon as it exists, so an interrupted or repeated run only does the
samples it has not done. A response is reused when its key matches, checked BEFORE the sample is perceived: sha256
over the model's full weights fingerprint (affectllm/utils/fingerprint.py), what the responder fixes before
perceiving (``Responder.settings``: the question, the generation parameters, the perception settings and the
experts' weights), the media files' content, the subtitle and the task file's content. Changing any of them re-asks
the model; a cached sample costs a file hash, not a perception. Each row also keeps the key of its rendered prompt
(chat template + expert cues, ``prompt_key``) as a record of what the model saw. Samples still to do are perceived
and answered ``batch_size`` at a time (one batched generation). A ``Responder`` perceives a sample, renders its
prompt and answers it (``ModelResponder`` for an AffectLLM model; tests pass a fake).
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
from affectllm.model.limits import MAX_NEW_TOKENS
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

    def settings(self) -> dict[str, Any]: ...  # what decides an answer besides the sample (JSON-able)

    def request(self, media: dict[str, str], subtitle: str | None) -> Request: ...

    def answer(self, req: Request) -> EmotionReport: ...

    def answers(self, reqs: list[Request]) -> list[EmotionReport]: ...


class ModelResponder:
    """An AffectLLM model: perceive the sample, render its prompt, answer greedily (a batch at a time)."""

    def __init__(self, model: Any, processor: Any, prompt: str | None = None, max_new_tokens: int = MAX_NEW_TOKENS) -> None:
        from affectllm.engine import Engine

        self.model, self.processor = model, processor
        self.prompt, self.max_new_tokens = prompt, max_new_tokens
        self.fingerprint = str(model.fingerprint)
        self.engine = Engine.for_model(model, processor)

    def settings(self) -> dict[str, Any]:
        experts = self.engine.experts
        vision = dict(self.processor.vision or {})
        return {"prompt": self.prompt, "max_new_tokens": self.max_new_tokens,
                "generation": self.model.generation_config.to_diff_dict(),
                "perception": {"num_frames": vision.get("num_frames", 8), "vision": vision,
                               "num_tokens": dict(self.processor.num_tokens),
                               "use_cues": bool(self.model.config.use_cues), "whisper": experts.whisper_name,
                               "faces": experts.faces, "experts": experts_identity(experts)}}

    def request(self, media: dict[str, str], subtitle: str | None) -> Request:
        engine = self.engine
        p = engine.perceive(video=media.get("video"), audio=media.get("audio"), image=media.get("image"),
                            subtitle=subtitle)
        text = engine.prompt_text(engine.renderer.single_turn(p, self.prompt))
        grounded = engine.grounded(engine.settings(max_new_tokens=self.max_new_tokens), [p], anchor=self.prompt is None)
        return Request(text, {"generation": grounded.to_dict()}, p)

    def answer(self, req: Request) -> EmotionReport:
        return self.answers([req])[0]

    def answers(self, reqs: list[Request]) -> list[EmotionReport]:
        return self.engine.report([r.state for r in reqs], prompt=self.prompt, max_new_tokens=self.max_new_tokens)


def experts_identity(experts: Any) -> dict[str, Any]:
    """What the cue experts are: the package's expert weights (name, size, sha256 of each file under
    ``affectllm/assets`` that is not a starter adapter or an example) and the voice head actually loaded (its
    training info), so a changed expert re-asks the model."""
    from affectllm.utils.fingerprint import sha256_file

    assets = Path(__file__).resolve().parents[1] / "assets"
    files = {str(f.relative_to(assets)): sha256_file(f) for f in sorted(assets.rglob("*.safetensors"))
             if not f.relative_to(assets).parts[0].startswith(("starter", "examples"))}
    voice = getattr(experts, "_voice", None)
    return {"files": files, "voice_head": getattr(voice, "info", None)}


def sample_key(fingerprint: str, settings: dict[str, Any], media: dict[str, str], subtitle: str | None,
               task_hash: str) -> str:
    """sha256 of everything that decides a response, known before the sample is perceived."""
    blob = {"v": 3, "weights": fingerprint, "settings": settings,
            "media": {m: sha256_file(p) for m, p in sorted(media.items())}, "subtitle": subtitle, "task": task_hash}
    return hashlib.sha256(json.dumps(blob, sort_keys=True, default=str, ensure_ascii=False).encode()).hexdigest()


def prompt_key(req: Request) -> str:
    """sha256 of the rendered prompt and its grounded generation settings (a record of what the model saw)."""
    blob = {"prompt": req.prompt_text, "settings": req.settings}
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
             max_new_tokens: int = MAX_NEW_TOKENS, responder: Responder | None = None, batch_size: int = 1,
             load_kwargs: dict[str, Any] | None = None, **score_kw: Any) -> Evaluation:
    """Answer every sample of ``task`` (cached), then score. ``load_kwargs``: ``affectllm.load``'s adapter, device,
    dtype, quantization; ``batch_size``: samples perceived and answered together."""
    if batch_size < 1:
        raise ValueError(f"--batch-size {batch_size}: use 1 or more")
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

        m, processor = affectllm.loading.load(model=model, **(load_kwargs or {}))
        responder = ModelResponder(m, processor, prompt=prompt, max_new_tokens=max_new_tokens)
    fingerprint = responder.fingerprint
    settings = responder.settings()
    thash = task_hash(t)
    cache_path = out / "responses" / f"{hashlib.sha256(fingerprint.encode()).hexdigest()[:16]}.jsonl"
    cache_path.parent.mkdir(parents=True, exist_ok=True)
    cached = {k: v for k, v in read_cache(cache_path).items() if "error" not in v}  # failures are retried
    if cache_path.is_file() and cache_path.stat().st_size and not cache_path.read_bytes().endswith(b"\n"):
        with open(cache_path, "a", encoding="utf-8") as f:
            f.write("\n")  # an interrupted run left half a line: start ours on a fresh one
    done: dict[str, dict[str, Any]] = {}
    stats = {"reused": 0, "asked": 0}
    pending: list[tuple[int, str, dict[str, Any], Request]] = []  # (n, id, row, request) waiting for a batch

    def flush(f) -> None:
        reports = responder.answers([req for *_, req in pending]) if pending else []
        for (n, sid, row, req), rep in zip(pending, reports, strict=True):
            row["prompt_key"] = prompt_key(req)
            row["report"] = rep.to_dict()
            stats["asked"] += 1
            write(f, n, sid, row)
        pending.clear()

    def write(f, n: int, sid: str, row: dict[str, Any]) -> None:
        f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        done[sid] = row
        if progress:
            progress(n, len(ids), sid)

    with open(cache_path, "a", encoding="utf-8") as f:
        for n, sid in enumerate(ids, start=1):
            media = find_media(t, root, sid)
            subtitle = gt_file.records[sid].extra.get("subtitle") or None
            row: dict[str, Any] = {"id": sid, "fingerprint": fingerprint, "media": media}
            if not media and not subtitle:
                row["error"] = f"no media for '{sid}' under {root} (patterns: {t.media})"
                write(f, n, sid, row)
                continue
            key = sample_key(fingerprint, settings, media, subtitle, thash)
            if key in cached:  # before any perception
                done[sid] = cached[key]
                stats["reused"] += 1
                continue
            row["key"] = key
            try:
                pending.append((n, sid, row, responder.request(media, subtitle)))
            except Exception as e:  # noqa: BLE001 - one unreadable sample is recorded (and retried next run)
                row["error"] = f"{', '.join(media.values()) or sid}: {type(e).__name__}: {e}"
                write(f, n, sid, row)
            if len(pending) >= batch_size:
                flush(f)
        flush(f)
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
