"""One loaded model serving many callers: requests queue up and run one at a time in a worker thread.

The engine knows nothing about HTTP. A ``Job`` (one media file or none, the question, earlier text turns) is
perceived and answered exactly as ``affectllm.predict`` does it (``perceive`` with the model's experts, then
``generate_reports``), so the server and the web UI report what the evaluated model reports. Text streams
out through a transformers ``TextStreamer`` subclass that also counts prompt and completion tokens and
aborts generation when the caller has gone away.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from transformers import TextStreamer

from affectllm.report import EmotionReport
from affectllm.serving.errors import RequestError
from affectllm.serving.media import ResolvedMedia, media_error_message

CUE_TOKEN_MARGIN = 256  # room for the expert cue lines build_messages adds


class QueueFull(Exception):
    """More requests are waiting than the server accepts (``max_queue``)."""


class GenerationCancelled(Exception):
    """The caller stopped listening; generation was aborted."""


@dataclass
class Job:
    """One request for the model: at most one media file, the question, and earlier text turns."""

    media: ResolvedMedia | None = None
    prompt: str | None = None  # None: the default question (DEFAULT_PROMPT)
    history: list[dict[str, str]] = field(default_factory=list)  # [{"role", "content": str}] before the question
    max_new_tokens: int = 128


@dataclass
class Result:
    report: EmotionReport
    text: str  # the generated text, exactly as streamed
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"
    perception: Any = None  # affectllm.perception.pipeline.Perception (the web UI plots its evidence)


class CountingStreamer(TextStreamer):
    """Passes finalized text to ``on_text``, counts tokens, raises GenerationCancelled when ``cancelled()``."""

    def __init__(self, tokenizer, on_text: Callable[[str], None] | None = None,
                 cancelled: Callable[[], bool] | None = None) -> None:
        super().__init__(tokenizer, skip_prompt=True, skip_special_tokens=True)
        self.on_text = on_text
        self.cancelled = cancelled
        self.prompt_tokens = 0
        self.completion_tokens = 0
        self.last_token: int | None = None
        self.parts: list[str] = []

    def put(self, value) -> None:  # value: [1, L] prompt ids first, then [1] or [] new token ids
        if self.cancelled is not None and self.cancelled():
            raise GenerationCancelled()
        if self.next_tokens_are_prompt:
            self.prompt_tokens = int(value.shape[-1])
        else:
            flat = value.reshape(-1)
            self.completion_tokens += int(flat.numel())
            if flat.numel():
                self.last_token = int(flat[-1])
        super().put(value)

    def on_finalized_text(self, text: str, stream_end: bool = False) -> None:
        if text:
            self.parts.append(text)
            if self.on_text is not None:
                self.on_text(text)


class Engine:
    """The served model, its experts and a FIFO of jobs; ``run`` is thread-safe, ``stream`` is for asyncio."""

    def __init__(self, model, processor, experts=None, model_id: str | None = None, max_new_tokens: int = 512,
                 max_queue: int = 32) -> None:
        from affectllm.api import experts_for

        self.model = model
        self.processor = processor
        self.experts = experts if experts is not None else experts_for(model)
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

        from affectllm.defaults import DEFAULT_PROMPT

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
        """Decode and run the cue experts, as ``predict`` does; decoder failures become 400 errors."""
        from affectllm.media import MediaError
        from affectllm.perception.pipeline import perceive

        num_frames = (self.processor.vision or {}).get("num_frames", 8)
        try:
            return perceive(media.path if media is not None else None, experts=self.experts, num_frames=num_frames)
        except MediaError as err:
            assert media is not None
            raise RequestError(400, media_error_message(err, media)) from None

    def run(self, job: Job, on_text: Callable[[str], None] | None = None,
            cancelled: Callable[[], bool] | None = None,
            on_perceived: Callable[[Any], None] | None = None) -> Result:
        """Perceive and answer one job (blocking; serialised by a lock)."""
        from affectllm.api import generate_reports

        with self._lock:
            perception = self.perceive(job.media)
            if on_perceived is not None:
                on_perceived(perception)
            streamer = CountingStreamer(self.processor.tokenizer, on_text, cancelled)
            limit = max(1, min(job.max_new_tokens, self.max_new_tokens))
            report = generate_reports(self.model, self.processor, [perception], prompt=job.prompt,
                                      max_new_tokens=limit, streamer=streamer, history=job.history)[0]
        eos = self.model.generation_config.eos_token_id
        eos_ids = set(eos if isinstance(eos, list) else [eos]) if eos is not None else set()
        hit_limit = streamer.completion_tokens >= limit and streamer.last_token not in eos_ids
        return Result(report=report, text="".join(streamer.parts), prompt_tokens=streamer.prompt_tokens,
                      completion_tokens=streamer.completion_tokens, finish_reason="length" if hit_limit else "stop",
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
