"""One loaded model serving many callers: a bounded queue of jobs, decoded in batches by one worker thread.

This module knows nothing about HTTP and does no generation of its own: a ``Job`` (at most one media file, the
question, earlier text turns, which turn carried the media, and its ``Sampling``) becomes an
``affectllm.engine.Conversation`` answered by the model's ``affectllm.engine.Engine`` (perception cached by
content, the shared renderer, the one batched decoder), so the server and the web UI report what ``predict``
and the evaluated model report.

Batching: the worker takes the oldest waiting job and every other waiting job that decodes with the same
settings (up to ``max_batch``; after waiting ``batch_window_s`` for more when set), perceives each, and decodes
them as one left-padded batch (``Engine.replies``). Seeded sampling runs alone, so a seed gives the same text
whoever else is asking. At most ``max_queue`` jobs wait or run; one more raises ``QueueFull``. Text streams to
each job as the decoder finalises it; a batch whose callers have all gone away stops at the next token.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from affectllm.engine import GenerationCancelled
from affectllm.model.limits import MAX_NEW_TOKENS
from affectllm.report import EmotionReport
from affectllm.serving.errors import RequestError
from affectllm.serving.media import ResolvedMedia, media_error_message

CUE_TOKEN_MARGIN = 256  # room for the expert cue lines the renderer adds


class QueueFull(Exception):
    """More requests are waiting than the server accepts (``max_queue``)."""


@dataclass(frozen=True)
class Sampling:
    """How one request decodes: greedy unless ``temperature`` > 0 (the project default is greedy)."""

    temperature: float | None = None  # None or 0: greedy
    top_p: float | None = None  # nucleus mass when sampling
    seed: int | None = None  # sampling with a seed is reproducible
    stop: tuple[str, ...] = ()  # the text is cut before the first of these

    @property
    def greedy(self) -> bool:
        return not self.temperature

    def overrides(self, max_new_tokens: int) -> dict[str, Any]:
        """The ``GenerationSettings`` fields this request sets."""
        out: dict[str, Any] = {"max_new_tokens": max_new_tokens, "stop_strings": tuple(self.stop)}
        if not self.greedy:
            out.update(do_sample=True, temperature=float(self.temperature),
                       top_p=1.0 if self.top_p is None else float(self.top_p), seed=self.seed)
        return out

    def batch_key(self, max_new_tokens: int) -> tuple | None:
        """Jobs with equal keys decode in one batch; None: decode alone (seeded sampling: its own RNG)."""
        if not self.greedy and self.seed is not None:
            return None
        sampled = None if self.greedy else (float(self.temperature), self.top_p)
        return (max_new_tokens, self.stop, sampled)


@dataclass
class Job:
    """One request for the model: at most one media file, the question, and earlier text turns."""

    media: ResolvedMedia | None = None
    prompt: str | None = None  # None: the default question (DEFAULT_PROMPT)
    history: list[dict[str, str]] = field(default_factory=list)  # [{"role", "content": str}] before the question
    max_new_tokens: int = MAX_NEW_TOKENS
    media_turn: int | None = None  # index of the turn (history, then the question) that carried the media;
    # None: the question's turn
    sampling: Sampling = field(default_factory=Sampling)


@dataclass
class Result:
    report: EmotionReport
    text: str  # the generated text, exactly as streamed
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    perception: Any = None  # affectllm.perception.pipeline.Perception (the web UI plots its evidence)


@dataclass
class _Ticket:
    """A queued job and where its events go (``emit(kind, value)``; called from the worker thread)."""

    job: Job
    emit: Callable[[str, Any], None]
    stop: threading.Event = field(default_factory=threading.Event)
    limit: int = 1

    def key(self) -> tuple | None:
        return self.job.sampling.batch_key(self.limit)


@dataclass
class BatchStats:
    """What one decoded batch did (for ``/metrics``)."""

    size: int
    prompt_tokens: int
    completion_tokens: int
    seconds: float


class JobQueue:
    """The served model's engine and its bounded job queue; ``run`` is blocking, ``stream`` is for asyncio."""

    def __init__(self, model, processor, experts=None, model_id: str | None = None, max_new_tokens: int = 512,
                 max_queue: int = 32, max_batch: int = 8, batch_window_s: float = 0.0,
                 on_batch: Callable[[BatchStats], None] | None = None) -> None:
        from affectllm.engine import Engine as ModelEngine

        self.model = model
        self.processor = processor
        self.engine = ModelEngine.for_model(model, processor, experts=experts)
        self.experts = self.engine.experts
        self.model_id = model_id or getattr(model, "source_name", None) or "affectllm"
        self.max_new_tokens = max_new_tokens
        self.max_queue = max_queue
        self.max_batch = max(1, int(max_batch))
        self.batch_window_s = max(0.0, float(batch_window_s))
        self.on_batch = on_batch
        self._lock = threading.Lock()  # one batch on the model at a time, whoever calls
        self._waiting: deque[_Ticket] = deque()
        self._cv = threading.Condition()
        self._pending = 0  # waiting + decoding (guarded by _cv)
        self._worker: threading.Thread | None = None
        self._closed = False

    @property
    def prompt_budget(self) -> int:
        """Text tokens a conversation may use: context length - answer - media placeholders - cue lines."""
        lm = getattr(self.model, "language_model", None)
        cfg = lm.config if lm is not None else self.model.config.get_text_config()
        context = int(getattr(cfg, "max_position_embeddings", None) or 8192)
        media = sum(int(n) for n in (self.processor.num_tokens or {}).values())
        return max(64, min(context, 32768) - self.max_new_tokens - media - CUE_TOKEN_MARGIN)

    def check_conversation(self, job: Job) -> None:
        """Refuse (400) before queuing: a conversation the chat template rejects, or text over the budget."""
        from jinja2 import TemplateError

        from affectllm.model.defaults import DEFAULT_PROMPT

        msgs = [*job.history, {"role": "user", "content": job.prompt or DEFAULT_PROMPT}]
        try:
            text = self.processor.render(msgs).text
        except TemplateError as err:
            raise RequestError(400, f"the model's chat template refused the conversation ({err}); send "
                                    "alternating user and assistant turns", "messages") from None
        n = len(self.processor.tokenizer(text, add_special_tokens=False)["input_ids"])
        if n > self.prompt_budget:
            raise RequestError(400, f"the conversation is {n} tokens, over this model's budget of "
                                    f"{self.prompt_budget}; shorten the messages", "messages")

    @property
    def pending(self) -> int:
        """Jobs waiting for or using the model."""
        return self._pending

    @property
    def queued(self) -> int:
        """Jobs waiting for the model (not yet in a batch)."""
        return len(self._waiting)

    def perceive(self, media: ResolvedMedia | None):
        """Decode and run the cue experts (once per content: the engine caches); decoder failures become 400s."""
        from affectllm.media import MediaError

        if media is None:
            return self.engine.perceive()  # text only: the evidence says plainly that nothing was measured
        try:
            return self.engine.perceive(media.path)
        except MediaError as err:
            raise RequestError(400, media_error_message(err, media)) from None

    def conversation(self, job: Job, perception: Any = None):
        """The job as the engine's Conversation: text turns, the media in the turn that carried it."""
        from affectllm.engine import Conversation

        turns = [*job.history, {"role": "user", "content": job.prompt or ""}]
        where = len(turns) - 1 if job.media_turn is None else job.media_turn
        if perception is not None and not (0 <= where < len(turns) and turns[where]["role"] == "user"):
            raise RequestError(400, f"the media belongs to turn {where}, which is not a user turn of this "
                                    "conversation; attach media to a user message", "messages")
        return Conversation.from_messages(turns, {where: [perception]} if perception is not None else None)

    def _limit(self, job: Job) -> int:
        return max(1, min(job.max_new_tokens, self.max_new_tokens))

    # --- one batch ------------------------------------------------------------------------------------------
    def run_batch(self, tickets: list[_Ticket]) -> None:
        """Perceive each ticket's media, decode the rest as one batch, and emit ("done", Result) or ("error", e)
        to each (blocking; serialised by a lock). A ticket that fails perception fails alone."""
        with self._lock:
            rows: list[tuple[_Ticket, Any, Any]] = []  # (ticket, perception, conversation)
            for t in tickets:
                try:
                    if t.stop.is_set():  # the caller left while the job was queued
                        raise GenerationCancelled()
                    perception = self.perceive(t.job.media)
                    conv = self.conversation(t.job, perception if t.job.media is not None else None)
                    t.emit("perceived", perception)
                    rows.append((t, perception, conv))
                except BaseException as err:  # noqa: BLE001 - delivered to that caller
                    t.emit("error", err)
            if not rows:
                return
            first = rows[0][0]
            settings = self.engine.settings(**first.job.sampling.overrides(first.limit))
            started = time.perf_counter()
            try:
                decoded = self.engine.replies(
                    [conv for _, _, conv in rows], settings,
                    on_text=lambda row, piece: rows[row][0].emit("text", piece),
                    cancelled=lambda: all(t.stop.is_set() for t, _, _ in rows))
            except BaseException as err:  # noqa: BLE001 - the whole batch failed: every caller hears why
                for t, _, _ in rows:
                    t.emit("error", err)
                return
            seconds = time.perf_counter() - started
        results = []
        for (t, perception, _), d in zip(rows, decoded, strict=True):
            report = self.engine.to_report(d, perception)
            results.append(Result(report=report, text=d.text, prompt_tokens=d.prompt_tokens,
                                  completion_tokens=len(d.token_ids),
                                  finish_reason="length" if d.finish_reason == "length" else "stop",
                                  perception=perception))
            t.emit("done", results[-1])
        if self.on_batch is not None:
            self.on_batch(BatchStats(len(rows), sum(r.prompt_tokens for r in results),
                                     sum(r.completion_tokens for r in results), seconds))

    def run(self, job: Job, on_text: Callable[[str], None] | None = None,
            cancelled: Callable[[], bool] | None = None,
            on_perceived: Callable[[Any], None] | None = None) -> Result:
        """Perceive and answer one job now, in the calling thread (blocking)."""
        out: dict[str, Any] = {}

        def emit(kind: str, value: Any) -> None:
            if kind == "text" and on_text is not None:
                on_text(value)
            elif kind == "perceived" and on_perceived is not None:
                on_perceived(value)
            elif kind in ("done", "error"):
                out[kind] = value

        ticket = _Ticket(job, emit, limit=self._limit(job))
        if cancelled is not None:
            stop = ticket.stop
            ticket.stop = _Polled(stop, cancelled)  # type: ignore[assignment]
        self.run_batch([ticket])
        if "error" in out:
            raise out["error"]
        return out["done"]

    # --- the queue and its worker ---------------------------------------------------------------------------
    def _submit(self, ticket: _Ticket) -> None:
        """Queue a ticket (QueueFull when ``max_queue`` are waiting or decoding). Before its last event reaches
        the caller, its temporary media is removed and it stops counting as pending."""
        emit, finished = ticket.emit, threading.Event()

        def finishing_emit(kind: str, value: Any) -> None:
            if kind in ("done", "error") and not finished.is_set():
                finished.set()
                if ticket.job.media is not None:
                    ticket.job.media.cleanup()
                with self._cv:
                    self._pending -= 1
            emit(kind, value)

        with self._cv:
            if self._pending >= self.max_queue:
                raise QueueFull(f"{self._pending} requests are already queued (limit {self.max_queue}); retry later")
            ticket.emit = finishing_emit
            self._pending += 1
            self._waiting.append(ticket)
            if self._worker is None:
                self._worker = threading.Thread(target=self._work, name="affectllm-engine", daemon=True)
                self._worker.start()
            self._cv.notify_all()

    def _next_batch(self) -> list[_Ticket] | None:
        """The oldest waiting ticket and the waiting tickets that decode with its settings (None: closed)."""
        with self._cv:
            while not self._waiting and not self._closed:
                self._cv.wait()
            if self._closed:
                return None
            first = self._waiting.popleft()
            key = first.key()
            batch = [first]
            if key is None or self.max_batch == 1:
                return batch
            deadline = time.monotonic() + self.batch_window_s
            while True:
                for t in list(self._waiting):
                    if len(batch) >= self.max_batch:
                        break
                    if t.key() == key:
                        self._waiting.remove(t)
                        batch.append(t)
                left = deadline - time.monotonic()
                if len(batch) >= self.max_batch or left <= 0 or self._closed:
                    return batch
                self._cv.wait(left)

    def _work(self) -> None:
        while (batch := self._next_batch()) is not None:
            try:
                self.run_batch(batch)
            except BaseException as err:  # noqa: BLE001 - never leave a caller waiting
                for t in batch:
                    t.emit("error", err)

    async def stream(self, job: Job) -> AsyncIterator[tuple[str, Any]]:
        """Events for one job, in order: ("perceived", Perception), ("text", str)…, ("done", Result).

        Errors (RequestError, …) are raised from the iterator. Closing the iterator early cancels the
        generation at its next token (a batch goes on while any of its callers listens).
        """
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        ticket: _Ticket

        def emit(kind: str, value: Any) -> None:
            if ticket.stop.is_set():
                return
            try:
                loop.call_soon_threadsafe(events.put_nowait, (kind, value))
            except RuntimeError:  # the caller's event loop is gone: nobody listens any more
                ticket.stop.set()

        ticket = _Ticket(job, emit, limit=self._limit(job))
        try:
            self._submit(ticket)
        except QueueFull:
            if job.media is not None:
                job.media.cleanup()
            raise
        try:
            while True:
                kind, value = await events.get()
                if kind == "error":
                    raise value
                yield kind, value
                if kind == "done":
                    break
        finally:
            ticket.stop.set()

    async def complete(self, job: Job) -> Result:
        """Run one job to the end and return its result."""
        result = None
        async for kind, value in self.stream(job):
            if kind == "done":
                result = value
        assert result is not None
        return result

    def close(self) -> None:
        """Stop the worker after its current batch; waiting jobs are dropped."""
        with self._cv:
            self._closed = True
            dropped, self._waiting = list(self._waiting), deque()
            self._cv.notify_all()
        for t in dropped:
            t.emit("error", RequestError(503, "the server is shutting down; retry on another instance"))


class _Polled:
    """A stop flag that is also set when ``cancelled()`` says so (``run``'s caller-side cancellation)."""

    def __init__(self, event: threading.Event, cancelled: Callable[[], bool]) -> None:
        self._event, self._cancelled = event, cancelled

    def is_set(self) -> bool:
        return self._event.is_set() or bool(self._cancelled())

    def set(self) -> None:
        self._event.set()
