"""One loaded model serving many callers: requests queue up and run one at a time in a worker thread.

This module knows nothing about HTTP and does no generation of its own: a ``Job`` (at most one media file, the
question, earlier text turns, and which turn carried the media) becomes an ``affectllm.engine.Conversation``
answered by the model's ``affectllm.engine.Engine`` (perception cached by content, the shared renderer, the
one decoder), so the server and the web UI report what ``predict`` and the evaluated model report. Text
streams to a callback as the decoder finalises it; a caller that goes away cancels at the next token.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from affectllm.engine import GenerationCancelled
from affectllm.report import EmotionReport
from affectllm.serving.errors import RequestError
from affectllm.serving.media import ResolvedMedia, media_error_message

CUE_TOKEN_MARGIN = 256  # room for the expert cue lines the renderer adds


class QueueFull(Exception):
    """More requests are waiting than the server accepts (``max_queue``)."""


@dataclass
class Job:
    """One request for the model: at most one media file, the question, and earlier text turns."""

    media: ResolvedMedia | None = None
    prompt: str | None = None  # None: the default question (DEFAULT_PROMPT)
    history: list[dict[str, str]] = field(default_factory=list)  # [{"role", "content": str}] before the question
    max_new_tokens: int = 128
    media_turn: int | None = None  # index of the turn (history, then the question) that carried the media;
    # None: the question's turn


@dataclass
class Result:
    report: EmotionReport
    text: str  # the generated text, exactly as streamed
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    perception: Any = None  # affectllm.perception.pipeline.Perception (the web UI plots its evidence)


class Engine:
    """The served model's engine and a FIFO of jobs; ``run`` is thread-safe, ``stream`` is for asyncio."""

    def __init__(self, model, processor, experts=None, model_id: str | None = None, max_new_tokens: int = 512,
                 max_queue: int = 32) -> None:
        from affectllm.engine import Engine as ModelEngine

        self.model = model
        self.processor = processor
        self.engine = ModelEngine.for_model(model, processor, experts=experts)
        self.experts = self.engine.experts
        self.model_id = model_id or getattr(model, "source_name", None) or "affectllm"
        self.max_new_tokens = max_new_tokens
        self.max_queue = max_queue
        self._lock = threading.Lock()  # one generation at a time, whoever calls
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="affectllm-engine")
        self._pending = 0
        self._pending_lock = threading.Lock()

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

    def run(self, job: Job, on_text: Callable[[str], None] | None = None,
            cancelled: Callable[[], bool] | None = None,
            on_perceived: Callable[[Any], None] | None = None) -> Result:
        """Perceive and answer one job (blocking; serialised by a lock)."""
        with self._lock:
            perception = self.perceive(job.media)
            conversation = self.conversation(job, perception if job.media is not None else None)
            if on_perceived is not None:
                on_perceived(perception)
            limit = max(1, min(job.max_new_tokens, self.max_new_tokens))
            decoded = self.engine.reply(conversation, on_text=on_text, cancelled=cancelled, max_new_tokens=limit)
        report = self.engine.to_report(decoded, perception)
        return Result(report=report, text=decoded.text, prompt_tokens=decoded.prompt_tokens,
                      completion_tokens=len(decoded.token_ids),
                      finish_reason="length" if decoded.finish_reason == "length" else "stop",
                      perception=perception)

    # --- asyncio side -------------------------------------------------------------------------------------
    def _reserve(self) -> None:
        with self._pending_lock:
            if self._pending >= self.max_queue:
                raise QueueFull(f"{self._pending} requests are already queued (limit {self.max_queue}); retry later")
            self._pending += 1

    def _release(self) -> None:
        with self._pending_lock:
            self._pending -= 1

    async def stream(self, job: Job) -> AsyncIterator[tuple[str, Any]]:
        """Events for one job, in order: ("perceived", Perception), ("text", str)…, ("done", Result).

        Errors (RequestError, …) are raised from the iterator. Closing the iterator early cancels the
        generation at its next token.
        """
        try:
            self._reserve()
        except QueueFull:
            if job.media is not None:
                job.media.cleanup()
            raise
        loop = asyncio.get_running_loop()
        events: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()
        stop = threading.Event()

        def emit(kind: str) -> Callable[[Any], None]:
            return lambda value: loop.call_soon_threadsafe(events.put_nowait, (kind, value))

        def work() -> Result:
            try:
                if stop.is_set():  # the caller left while the job was queued
                    raise GenerationCancelled()
                return self.run(job, on_text=emit("text"), cancelled=stop.is_set, on_perceived=emit("perceived"))
            finally:
                if job.media is not None:
                    job.media.cleanup()
                self._release()

        try:
            future = loop.run_in_executor(self._executor, work)
        except BaseException:
            self._release()
            raise
        future.add_done_callback(lambda _: events.put_nowait(("end", None)))
        try:
            while True:
                kind, value = await events.get()
                if kind == "end":
                    break
                yield kind, value
            yield "done", future.result()
        finally:
            stop.set()
            if not future.done():
                future.add_done_callback(_consume_exception)

    async def complete(self, job: Job) -> Result:
        """Run one job to the end and return its result."""
        result = None
        async for kind, value in self.stream(job):
            if kind == "done":
                result = value
        assert result is not None
        return result

    def close(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)


def _consume_exception(future: asyncio.Future) -> None:
    if not future.cancelled():
        future.exception()  # GenerationCancelled from an abandoned stream: expected, not an error
