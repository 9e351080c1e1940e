"""OpenAI chat-completions <-> engine jobs: a request becomes a ``Job``; a ``Result`` becomes a response or SSE.

Mapping of a conversation onto AffectLLM: the one media part (in any user turn) is perceived (once per
content: the engine caches) and stays in the user turn that carried it, together with its expert cues, as the
engine's renderer writes every prompt; the latest user text is the question (``prompt``; empty -> the default
question); the other turns are kept as text. ``temperature`` / ``top_p`` / ``seed`` / ``stop`` become the job's
``Sampling`` (greedy when temperature is 0 or absent); ``response_format`` (``json_object``, ``json_schema``)
answers with the EmotionReport JSON (``structured``).
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

from affectllm.serving.errors import RequestError
from affectllm.serving.job_queue import Job, Result, Sampling
from affectllm.serving.schemas import (
    MEDIA_PART_TYPES,
    AssistantMessage,
    ChatCompletion,
    ChatCompletionChunk,
    ChatCompletionRequest,
    Choice,
    ChunkChoice,
    Delta,
    TextPart,
    Usage,
)
from affectllm.serving.structured import StructuredOutput, structured_output

MAX_STOP = 4  # OpenAI's limit on stop sequences
MAX_STOP_CHARS = 256


def text_of(content: Any) -> str:
    """The text of a message's content (string, or the text parts joined by newlines)."""
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    return "\n".join(p.text for p in content if isinstance(p, TextPart))


def split_request(req: ChatCompletionRequest) -> tuple[list[dict[str, str]], str | None, tuple[Any, str] | None]:
    """-> (history as text turns, the question or None, (media part, its param path) or None)."""
    if req.messages[-1].role != "user":
        raise RequestError(400, f"the last message has role {req.messages[-1].role!r}; the conversation must end "
                                "with a user message", "messages")
    media: list[tuple[Any, str]] = []
    for i, msg in enumerate(req.messages):
        if isinstance(msg.content, list):
            for j, part in enumerate(msg.content):
                if part.type in MEDIA_PART_TYPES:
                    if msg.role != "user":
                        raise RequestError(400, f"messages[{i}] ({msg.role}) has a {part.type} part; only user "
                                                "messages may carry media", f"messages.{i}.content.{j}")
                    media.append((part, f"messages.{i}.content.{j}"))
    if len(media) > 1:
        raise RequestError(400, f"{len(media)} media parts sent; this model reads one video, audio or image per "
                                "conversation: send one clip (a video carries its own audio)", media[1][1])
    history = []
    for msg in req.messages[:-1]:
        role = "system" if msg.role in ("system", "developer") else msg.role
        history.append({"role": role, "content": text_of(msg.content)})
    prompt = text_of(req.messages[-1].content).strip() or None
    return history, prompt, (media[0] if media else None)


def sampling_of(req: ChatCompletionRequest) -> Sampling:
    """The request's decoding: greedy unless temperature > 0; stop strings checked (400 naming the fix)."""
    if req.n not in (None, 1):
        raise RequestError(400, f"n={req.n}: this server generates one choice per request; send n=1 (or omit "
                                "it) and repeat the request with a different seed for more", "n")
    stop = [req.stop] if isinstance(req.stop, str) else list(req.stop or [])
    if len(stop) > MAX_STOP:
        raise RequestError(400, f"{len(stop)} stop sequences sent; at most {MAX_STOP} are allowed", "stop")
    for i, x in enumerate(stop):
        if not x or len(x) > MAX_STOP_CHARS:
            raise RequestError(400, f"stop[{i}] is {'empty' if not x else f'{len(x)} characters'}; each stop "
                                    f"sequence needs 1 to {MAX_STOP_CHARS} characters", "stop")
    return Sampling(temperature=req.temperature or None, top_p=req.top_p, seed=req.seed, stop=tuple(stop))


def job_for(req: ChatCompletionRequest, default_max_tokens: int) -> tuple[Job, tuple[Any, str] | None]:
    """The engine job of a request (media not yet resolved) and its media part with its param path."""
    sampling = sampling_of(req)
    history, prompt, media = split_request(req)
    max_new = req.max_completion_tokens or req.max_tokens or default_max_tokens
    turn = int(media[1].split(".")[1]) if media is not None else None  # "messages.{i}.content.{j}"
    return Job(media=None, prompt=prompt, history=history, max_new_tokens=max_new, media_turn=turn,
               sampling=sampling), media


def output_of(req: ChatCompletionRequest) -> StructuredOutput | None:
    """How the answer's content is written: None (the generated text) or the structured report."""
    fmt = req.response_format
    return None if fmt is None else structured_output(fmt.type, fmt.json_schema)


def answer_text(result: Result, output: StructuredOutput | None) -> str:
    return result.text if output is None else output.render(result.report)


def usage_of(result: Result) -> Usage:
    return Usage(prompt_tokens=result.prompt_tokens, completion_tokens=result.completion_tokens,
                 total_tokens=result.prompt_tokens + result.completion_tokens)


def new_id() -> str:
    return "chatcmpl-" + uuid.uuid4().hex[:24]


def completion(result: Result, model_id: str, output: StructuredOutput | None) -> ChatCompletion:
    """The non-streamed ``chat.completion`` object."""
    return ChatCompletion(
        id=new_id(), created=int(time.time()), model=model_id,
        choices=[Choice(message=AssistantMessage(content=answer_text(result, output)),
                        finish_reason=result.finish_reason)],  # type: ignore[arg-type]
        usage=usage_of(result), report=_report_dict(result),
    )


def _report_dict(result: Result) -> dict[str, Any]:
    return json.loads(result.report.to_json())  # JSON-safe (numpy scalars in evidence become numbers)


class ChunkWriter:
    """Formats the ``chat.completion.chunk`` server-sent events of one streamed answer."""

    def __init__(self, model_id: str) -> None:
        self.id, self.created, self.model = new_id(), int(time.time()), model_id

    def _event(self, chunk: ChatCompletionChunk) -> str:
        return f"data: {chunk.model_dump_json(exclude_none=True)}\n\n"

    def role(self) -> str:
        return self._event(ChatCompletionChunk(id=self.id, created=self.created, model=self.model,
                                               choices=[ChunkChoice(delta=Delta(role="assistant", content=""))]))

    def content(self, text: str) -> str:
        return self._event(ChatCompletionChunk(id=self.id, created=self.created, model=self.model,
                                               choices=[ChunkChoice(delta=Delta(content=text))]))

    def finish(self, result: Result) -> str:
        """The last choice chunk: finish_reason, and the parsed report (an AffectLLM extension)."""
        return self._event(ChatCompletionChunk(
            id=self.id, created=self.created, model=self.model, report=_report_dict(result),
            choices=[ChunkChoice(delta=Delta(), finish_reason=result.finish_reason)]))  # type: ignore[arg-type]

    def usage(self, result: Result) -> str:
        """OpenAI's ``stream_options.include_usage`` chunk: no choices, the token counts."""
        return self._event(ChatCompletionChunk(id=self.id, created=self.created, model=self.model, choices=[],
                                               usage=usage_of(result)))

    @staticmethod
    def error(status: int, message: str, kind: str) -> str:
        return "data: " + json.dumps({"error": {"message": message, "type": kind, "code": status}}) + "\n\n"

    @staticmethod
    def done() -> str:
        return "data: [DONE]\n\n"
