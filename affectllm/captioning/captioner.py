"""The captioner: inputs in, one JSON record per input out, in input order, never stopped by a bad input.

Per input: plan its segments (``affectllm.media.plan_segments``: one ``whole`` segment for short inputs,
speech regions or fixed windows for long ones), perceive each segment through the engine (decode, faces,
expression, Whisper, prosody; ``start=, end=`` keeps memory bounded for long files), then generate the report
of each segment with the engine's decoder. Generation is batched across segments and inputs (``batch_size``
perceptions per call, left padding), and perception of the next inputs runs in a worker thread while the
current batch decodes (``prefetch``). Any failure becomes an ``error`` record that names the file, the
problem and the fix; a failing batch is retried item by item so one bad item never costs its neighbours.

The captioner takes an already loaded ``(model, processor)`` so tests, the CLI, shards and Ray actors share it.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from affectllm.captioning.inputs import CaptionInput
from affectllm.captioning.records import empty_record, error_record, fill_record, model_info, segment_entry
from affectllm.model.limits import MAX_NEW_TOKENS

DEFAULT_SEGMENT_SECONDS = 30.0


def describe_failure(source: str, err: BaseException) -> str:
    """An error message that names the file, the problem and a fix, for any exception."""
    from affectllm.media import MediaError

    if isinstance(err, MediaError):
        return str(err)
    if isinstance(err, MemoryError):
        return f"{source}: ran out of memory while processing it; use a smaller --segment-seconds or --batch-size"
    detail = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return (f"{source}: could not be processed ({type(err).__name__}{': ' + detail if detail else ''}); "
            "check that the file plays in a media player or convert it to mp4/wav, and report the bug if it does")


@dataclass
class _Unit:
    """One segment of one input: its perception, then its report (or error)."""

    start: float
    end: float
    kind: str
    perception: Any = None
    report: Any = None
    error: str | None = None

    @property
    def done(self) -> bool:
        return self.report is not None or self.error is not None


@dataclass
class _Job:
    item: CaptionInput
    units: list[_Unit] = field(default_factory=list)
    error: str | None = None
    perceive_s: float = 0.0
    generate_s: float = 0.0
    started: float = 0.0

    @property
    def done(self) -> bool:
        return self.error is not None or all(u.done for u in self.units)


class Captioner:
    """Caption inputs with a loaded AffectLLM model.

    ``experts`` default to the model's own (``affectllm.engine.experts_for``); tests pass
    ``Experts(whisper=None)`` to run without Whisper weights. ``generate`` replaces the batched report
    generation and must accept ``affectllm.api.generate_reports``' arguments; by default it is the engine's
    ``report``. ``prefetch``: perceive ahead in a worker thread (at most ``batch_size + 1`` inputs ahead).
    """

    def __init__(self, model: Any, processor: Any, experts: Any = None,
                 segment_seconds: float = DEFAULT_SEGMENT_SECONDS, prompt: str | None = None,
                 max_new_tokens: int = MAX_NEW_TOKENS, batch_size: int = 1, use_vad: bool = True,
                 generate: Callable[..., list[Any]] | None = None, prefetch: bool = True,
                 explanation: str = "model") -> None:
        from affectllm.engine import Engine

        if segment_seconds <= 0:
            raise ValueError(f"segment_seconds must be positive, got {segment_seconds}")
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        from affectllm.engine.core import EXPLANATIONS

        if explanation not in EXPLANATIONS:
            raise ValueError(f"explanation={explanation!r}: choose one of {', '.join(EXPLANATIONS)}")
        self.explanation = explanation
        self.model, self.processor = model, processor
        self.engine = Engine.for_model(model, processor, experts=experts)
        self.experts = self.engine.experts
        self.segment_seconds = float(segment_seconds)
        self.prompt = prompt
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.use_vad = use_vad
        self.prefetch = bool(prefetch)
        self._generate = generate or self._engine_reports
        self.model_info = model_info(model)

    # --- public ------------------------------------------------------------------------------------
    def caption_one(self, item: CaptionInput) -> dict[str, Any]:
        """The record of one input (generation unbatched)."""
        return next(iter(self.caption([item])))

    def caption(self, items: Iterable[CaptionInput]) -> Iterator[dict[str, Any]]:
        """Records for ``items``, yielded in input order as soon as each input's segments are all generated."""
        pending: list[_Job] = []
        queue: list[tuple[_Job, _Unit]] = []
        for job in self._perceived(items):
            pending.append(job)
            queue.extend((job, u) for u in job.units if u.perception is not None)
            while len(queue) >= self.batch_size:
                self._run_batch(queue[: self.batch_size])
                queue = queue[self.batch_size:]
            while pending and pending[0].done:
                yield self._record(pending.pop(0))
        if queue:
            self._run_batch(queue)
        while pending:
            yield self._record(pending.pop(0))

    # --- steps -------------------------------------------------------------------------------------
    def _engine_reports(self, model: Any, processor: Any, perceptions: list, **kw: Any) -> list[Any]:
        return self.engine.report(perceptions, **kw)

    def _perceived(self, items: Iterable[CaptionInput]) -> Iterator[_Job]:
        """Perceived jobs in input order; with ``prefetch`` a worker thread perceives ahead of generation."""
        if not self.prefetch:
            yield from map(self._perceive, items)
            return
        ahead: queue.Queue = queue.Queue(maxsize=self.batch_size + 1)
        end, stop = object(), threading.Event()

        def work() -> None:
            try:
                for item in items:
                    if stop.is_set():
                        return
                    ahead.put(self._perceive(item))
            except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
                ahead.put(e)
            finally:
                ahead.put(end)

        worker = threading.Thread(target=work, name="affectllm-perceive", daemon=True)
        worker.start()
        try:
            while (job := ahead.get()) is not end:
                if isinstance(job, BaseException):
                    raise job
                yield job
        finally:
            stop.set()
            while worker.is_alive():  # unblock a worker waiting on a full queue
                try:
                    ahead.get(timeout=0.05)
                except queue.Empty:
                    pass

    def _perceive(self, item: CaptionInput) -> _Job:
        """Plan segments and perceive each; failures are recorded on the job or the unit, never raised."""
        from affectllm.media import plan_segments

        job = _Job(item, started=time.perf_counter())
        try:
            segments = plan_segments(item.path, segment_seconds=self.segment_seconds, use_vad=self.use_vad)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001 - any failure is this input's error record
            job.error = describe_failure(item.path, e)
            job.perceive_s = time.perf_counter() - job.started
            return job
        whole = len(segments) == 1 and segments[0].source == "whole"
        for seg in segments:
            unit = _Unit(seg.start, seg.end, seg.source)
            try:
                window = {} if whole else {"start": seg.start, "end": seg.end}
                unit.perception = self.engine.perceive(item.path, subtitle=item.subtitle, cache=False, **window)
            except (KeyboardInterrupt, SystemExit):
                raise
            except BaseException as e:  # noqa: BLE001
                unit.error = describe_failure(item.path if whole else f"{item.path} [{seg.start:.1f}-{seg.end:.1f} s]", e)
            job.units.append(unit)
        job.perceive_s = time.perf_counter() - job.started
        return job

    def _run_batch(self, batch: list[tuple[_Job, _Unit]]) -> None:
        """Generate the reports of a batch of units; on failure, retry one by one to isolate the bad one."""
        t0 = time.perf_counter()
        try:
            reports = self._generate(self.model, self.processor, [u.perception for _, u in batch],
                                     prompt=self.prompt, max_new_tokens=self.max_new_tokens,
                                     explanation=self.explanation)
        except (KeyboardInterrupt, SystemExit):
            raise
        except BaseException as e:  # noqa: BLE001
            if len(batch) > 1:
                for pair in batch:
                    self._run_batch([pair])
                return
            job, unit = batch[0]
            unit.error = describe_failure(job.item.path, e)
            unit.perception = None
            job.generate_s += time.perf_counter() - t0
            return
        share = (time.perf_counter() - t0) / len(batch)
        for (job, unit), report in zip(batch, reports, strict=True):
            unit.report = report
            unit.perception = None  # free frames and audio as soon as the report exists
            job.generate_s += share

    def _record(self, job: _Job) -> dict[str, Any]:
        item = job.item
        if job.error is not None:
            rec = error_record(item.id, item.path, self.model_info, job.error, item.subtitle)
        else:
            rec = empty_record(item.id, item.path, self.model_info, item.subtitle)
            entries = [segment_entry(u.start, u.end, u.kind, u.report, u.error) for u in job.units]
            fill_record(rec, entries)
        rec["timing"] = {"perceive_s": round(job.perceive_s, 3), "generate_s": round(job.generate_s, 3),
                         "total_s": round(time.perf_counter() - job.started, 3)}
        return rec
