"""The OpenAI-compatible HTTP server: ``create_app(model, processor, settings)`` -> a FastAPI app.

Routes: ``POST /v1/chat/completions`` (JSON or ``stream: true`` server-sent events ending ``data: [DONE]``),
``GET /v1/models``, ``GET /health``, ``GET /metrics`` (Prometheus text format; open like ``/health``, as in
vLLM), and ``/docs`` + ``/openapi.json`` (behind the API key when one is set). Every refusal is a 4xx in OpenAI's
error envelope naming the problem and the fix (validation errors are 400, not FastAPI's 422); the body size is
capped before parsing (413); a full queue is 429 with ``Retry-After``.

Concurrent requests wait in the engine's bounded queue (``--max-queue``) and decode in batches
(``--max-batch-size``) through the one engine (``affectllm.serving.job_queue``).

Nothing slow runs on the event loop: tokenising the conversation and resolving, probing and trial-decoding
media run in worker threads, each after a cheap size check (a prompt far over the token budget is refused from
its character count alone), so ``/health`` answers while a huge request is being refused.

The model id is a name, never a path: ``--served-model-name``, else the checkpoint folder's name, else
``affectllm-default`` (``served_model_name``). Requests may name the served id or one of its aliases (the name
derived from the checkpoint, ``affectllm-default``, ``affectllm``) or leave ``model`` out; other ids are 404,
so a client pointed at the wrong server finds out instead of getting another model's answer.
"""

from __future__ import annotations

import asyncio
import logging
import os
import time
from dataclasses import dataclass, field
from typing import Any

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response, StreamingResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from affectllm.serving.errors import RequestError
from affectllm.serving.job_queue import JobQueue, QueueFull
from affectllm.serving.media import MediaPolicy, check_duration, resolve_part
from affectllm.serving.metrics import CONTENT_TYPE, RequestMetrics, ServerMetrics
from affectllm.serving.protocol import ChunkWriter, completion, job_for, output_of
from affectllm.serving.schemas import (
    MEDIA_PART_TYPES,
    ChatCompletion,
    ChatCompletionRequest,
    ErrorResponse,
    Health,
    ModelCard,
    ModelList,
)
from affectllm.serving.structured import StructuredOutput

log = logging.getLogger("affectllm.serve")
_PART_TAGS = ("text", *MEDIA_PART_TYPES)
DEFAULT_MODEL_ID = "affectllm-default"
# No tokenizer in use packs more characters than this into one token on average; text longer than
# budget × this is refused without tokenising it (tokenising 30 MB took 37 s on the event loop, issue 12).
MAX_CHARS_PER_TOKEN = 32


@dataclass
class ServeSettings:
    """Everything ``affectllm serve`` configures besides the model."""

    api_key: str | None = None
    media: MediaPolicy = field(default_factory=MediaPolicy)
    max_body_bytes: int = 32 * 2**20
    max_new_tokens: int = 512  # cap on max_tokens, and the default when a request sets none
    max_queue: int = 32  # requests waiting for or using the model; one more is a 429
    max_batch: int = 8  # requests decoded together
    batch_window_s: float = 0.0  # how long the first request of a batch waits for company
    retry_after_s: int = 2  # the Retry-After of a 429
    model_id: str | None = None  # --served-model-name: the id /v1/models lists; default: served_model_name()


def served_model_name(model: Any, requested: str | None = None) -> str:
    """The id the server shows: ``requested``, else the checkpoint folder's name, else ``affectllm-default``.

    Never a path: a source given as a folder path becomes its last component; a hub id (``org/name``) that is not
    a local folder stays as it is.
    """
    if requested:
        return requested
    from affectllm.loading import STARTER_DIR

    source = str(getattr(model, "source_name", "") or "")
    if not source or source == "embedded-default" or os.path.realpath(source) == os.path.realpath(STARTER_DIR):
        return DEFAULT_MODEL_ID
    looks_local = os.path.isabs(source) or source.startswith((".", "~")) or os.path.exists(source) or "\\" in source
    if looks_local:
        name = os.path.basename(os.path.normpath(source.replace("\\", "/")))
        return name if name not in ("", ".", "..") else DEFAULT_MODEL_ID
    return source


def _model_aliases(model: Any, served: str) -> set[str]:
    return {served, served_model_name(model), DEFAULT_MODEL_ID, "affectllm"}


def _error(status: int, message: str, kind: str = "invalid_request_error", param: str | None = None,
           code: str | None = None, headers: dict[str, str] | None = None) -> JSONResponse:
    body = {"error": {"message": message, "type": kind, "param": param, "code": code}}
    return JSONResponse(body, status_code=status, headers=headers)


class BodyLimit:
    """ASGI middleware: read the request body up to ``max_bytes`` (else 413) and replay it to the app."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit_mb = f"{self.max_bytes / 2**20:g} MiB"
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None:
            try:
                declared = int(length)
            except ValueError:
                return await _error(400, "Content-Length is not a number")(scope, receive, send)
            if declared > self.max_bytes:
                return await _error(413, f"request body of {declared} bytes is over the server's limit of "
                                         f"{limit_mb} (--max-body-mb); send smaller media or a file path",
                                    "request_too_large")(scope, receive, send)
        chunks, size = [], 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                return await _error(413, f"request body is over the server's limit of {limit_mb} "
                                         "(--max-body-mb); send smaller media or a file path",
                                    "request_too_large")(scope, receive, send)
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body, replayed = b"".join(chunks), False

        async def replay() -> dict:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()  # later calls: wait for the disconnect, as the app expects

        await self.app(scope, replay, send)


def _loc(e: dict[str, Any]) -> str:
    """``messages.0.content.0.text`` from pydantic's loc, without the union branch and tag names it inserts."""
    keep: list[str] = []
    prev: Any = None
    for x in e.get("loc", ()):
        branch = isinstance(x, str) and ("[" in x or x in ("str", "list", "int"))
        tag = isinstance(x, str) and isinstance(prev, int) and x in _PART_TAGS
        if x != "body" and not branch and not tag:
            keep.append(str(x))
        prev = x
    return ".".join(keep)


def _validation_message(err: RequestValidationError) -> tuple[str, str | None]:
    """One readable message for pydantic's errors: the most specific first, at most three."""
    errors = sorted(err.errors(), key=lambda e: -len(e.get("loc", ())))
    if not errors:
        return "invalid request", None
    first = errors[0]
    if first.get("type") == "json_invalid":
        return f"the request body is not valid JSON ({first.get('ctx', {}).get('error', 'parse error')})", None
    if first.get("type") == "model_attributes_type" and tuple(first.get("loc", ())) == ("body",):
        return "the request body must be a JSON object (send Content-Type: application/json)", None
    parts, seen = [], set()
    for e in errors:
        loc = _loc(e)
        if e.get("type") == "union_tag_invalid":
            tag = e.get("ctx", {}).get("tag")
            msg = f"unknown content part type {tag!r}; use text, image_url, video_url, audio_url or input_audio"
        else:
            msg = e.get("msg", "invalid")
        if (loc, msg) not in seen:
            seen.add((loc, msg))
            parts.append(f"{loc or 'body'}: {msg}")
    more = f" (and {len(parts) - 3} more)" if len(parts) > 3 else ""
    return "invalid request: " + "; ".join(parts[:3]) + more, _loc(first) or None


_ERRORS = {s: {"model": ErrorResponse, "description": d} for s, d in [
    (400, "malformed request or undecodable media"), (401, "missing or wrong API key"),
    (403, "media path or URL not allowed"), (404, "unknown model"), (413, "body or media too large"),
    (422, "the report cannot satisfy response_format's schema"), (429, "too many queued requests; see Retry-After")]}
_CHAT_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "a chat.completion, or chat.completion.chunk events when stream is true",
          "content": {"text/event-stream": {"schema": {"type": "string"}}}},
    **_ERRORS,
}


def create_app(model, processor, settings: ServeSettings | None = None, experts=None) -> FastAPI:
    """The server app for one loaded model. ``experts``: the cue experts (default: ``experts_for(model)``)."""
    settings = settings or ServeSettings()
    served = served_model_name(model, settings.model_id)
    aliases = _model_aliases(model, served)
    engine = JobQueue(model, processor, experts=experts, model_id=served, max_new_tokens=settings.max_new_tokens,
                    max_queue=settings.max_queue, max_batch=settings.max_batch,
                    batch_window_s=settings.batch_window_s)
    metrics = ServerMetrics()
    metrics.bind(engine)
    created = int(time.time())
    keyed = bool(settings.api_key)
    app = FastAPI(title="AffectLLM", version="1", description="OpenAI-compatible chat completions that report "
                  "the emotions people show in a video, audio clip or image, and why.",
                  **({"docs_url": None, "redoc_url": None, "openapi_url": None} if keyed else {}))
    app.state.engine = engine
    app.state.settings = settings
    app.state.metrics = metrics
    app.add_middleware(BodyLimit, max_bytes=settings.max_body_bytes)
    app.add_middleware(RequestMetrics, metrics=metrics)  # outermost: 413s are counted too
    deps = []
    if keyed:
        from affectllm.serving.auth import require_api_key

        deps = [Depends(require_api_key(settings.api_key))]

        @app.get("/openapi.json", dependencies=deps, include_in_schema=False)
        async def openapi_json() -> JSONResponse:
            return JSONResponse(app.openapi())

        @app.get("/docs", dependencies=deps, include_in_schema=False)
        async def docs() -> HTMLResponse:
            return get_swagger_ui_html(openapi_url="/openapi.json", title="AffectLLM - API")

    @app.exception_handler(RequestError)
    async def _request_error(_: Request, err: RequestError) -> JSONResponse:
        headers = {"WWW-Authenticate": "Bearer"} if err.status == 401 else None
        return _error(err.status, err.message, err.type, err.param, err.code, headers)

    @app.exception_handler(RequestValidationError)
    async def _invalid(_: Request, err: RequestValidationError) -> JSONResponse:
        message, param = _validation_message(err)
        return _error(400, message, param=param)

    @app.exception_handler(StarletteHTTPException)
    async def _http(_: Request, err: StarletteHTTPException) -> JSONResponse:
        return _error(err.status_code, str(err.detail), headers=getattr(err, "headers", None))

    @app.exception_handler(QueueFull)
    async def _busy(_: Request, err: QueueFull) -> JSONResponse:
        return _error(429, str(err), "rate_limit_error", code="queue_full",
                      headers={"Retry-After": str(settings.retry_after_s)})

    @app.exception_handler(Exception)
    async def _bug(_: Request, err: Exception) -> JSONResponse:
        log.exception("internal error")
        return _error(500, f"internal server error ({type(err).__name__}); see the server log", "server_error")

    @app.get("/health", response_model=Health, tags=["server"])
    async def health() -> Health:
        return Health(model=engine.model_id, queued=engine.pending)

    @app.get("/metrics", tags=["server"], response_class=Response,
             responses={200: {"description": "Prometheus text exposition format",
                              "content": {"text/plain": {"schema": {"type": "string"}}}}})
    async def prometheus_metrics() -> Response:
        return Response(metrics.exposition(), media_type=CONTENT_TYPE)

    @app.get("/v1/models", response_model=ModelList, dependencies=deps, responses={401: _ERRORS[401]},
             tags=["openai"])
    async def models() -> ModelList:
        return ModelList(data=[ModelCard(id=engine.model_id, created=created)])

    @app.post("/v1/chat/completions", response_model=ChatCompletion, dependencies=deps,
              responses=_CHAT_RESPONSES, tags=["openai"])
    async def chat_completions(req: ChatCompletionRequest):
        if req.model is not None and req.model not in aliases:
            raise RequestError(404, f"model {req.model[:80]!r} is not served here; this server serves "
                                    f"{engine.model_id!r} (GET /v1/models)", "model", "model_not_found")
        job, media_part = job_for(req, settings.max_new_tokens)
        output = output_of(req)  # a bad response_format schema is refused before any model work
        _check_text_size(job, engine.prompt_budget)
        await asyncio.to_thread(engine.check_conversation, job)  # tokenising: off the event loop
        if media_part is not None:
            job.media = await _off_loop(_resolve, media_part[0], settings.media, media_part[1])
        if not req.stream:
            return completion(await engine.complete(job), engine.model_id, output)
        events = engine.stream(job)
        try:
            await anext(events)  # ("perceived", …): decode errors are still an HTTP error, not a broken stream
        except BaseException:
            await events.aclose()
            raise
        include_usage = bool(req.stream_options and req.stream_options.include_usage)
        return StreamingResponse(_sse(events, ChunkWriter(engine.model_id), output, include_usage),
                                 media_type="text/event-stream",
                                 headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})

    _drop_422(app)
    return app


def _check_text_size(job: Any, budget: int) -> None:
    """Refuse (400) text that cannot fit the token budget, from its length alone (no tokenising)."""
    chars = len(job.prompt or "") + sum(len(str(turn.get("content") or "")) for turn in job.history)
    if chars > budget * MAX_CHARS_PER_TOKEN:
        raise RequestError(400, f"the conversation is {chars} characters, far over this model's budget of "
                                f"{budget} tokens; shorten the messages", "messages")


async def _off_loop(resolve: Any, *args: Any):
    """``resolve(*args)`` in a worker thread; if the request is cancelled meanwhile, its temp file is removed."""
    future = asyncio.ensure_future(asyncio.to_thread(resolve, *args))
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        future.add_done_callback(lambda f: None if f.cancelled() or f.exception() else f.result().cleanup())
        raise


def _resolve(part: Any, policy: MediaPolicy, param: str):
    media = resolve_part(part, policy, param)
    try:
        check_duration(media, policy, param)
    except BaseException:
        media.cleanup()
        raise
    return media


async def _sse(events, writer: ChunkWriter, output: StructuredOutput | None, include_usage: bool):
    """The event stream of one answer: role chunk, content chunks (the report JSON in one chunk when
    ``output`` is set), finish chunk, (usage), [DONE]."""
    try:
        yield writer.role()
        async for kind, value in events:
            if kind == "text" and output is None:
                yield writer.content(value)
            elif kind == "done":
                if output is not None:
                    yield writer.content(output.render(value.report))
                yield writer.finish(value)
                if include_usage:
                    yield writer.usage(value)
        yield writer.done()
    except RequestError as err:
        yield writer.error(err.status, err.message, err.type)
        yield writer.done()
    except Exception as err:  # noqa: BLE001 - the status line is sent already; report in-band
        log.exception("error while streaming")
        yield writer.error(500, f"internal server error ({type(err).__name__}); see the server log", "server_error")
    finally:
        await events.aclose()


def _drop_422(app: FastAPI) -> None:
    """Validation errors answer 400 here, so remove FastAPI's default 422 entries from the OpenAPI schema."""
    original = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = original()
            for path in schema.get("paths", {}).values():
                for op in path.values():
                    op.get("responses", {}).pop("422", None)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
