"""``GET /metrics``: the server's counters in Prometheus' text exposition format (``prometheus_client``).

Each app has its own registry (several apps may live in one process, as in the tests). Series:

- ``affectllm_requests_total{status}``: chat-completion requests answered, by HTTP status (429s included);
- ``affectllm_request_duration_seconds``: their latency, arrival to last byte (a histogram);
- ``affectllm_queue_depth``: requests waiting for the model; ``affectllm_requests_running``: waiting + decoding;
- ``affectllm_prompt_tokens_total`` / ``affectllm_generation_tokens_total``: tokens read and generated;
- ``affectllm_generation_seconds_total``: decoder wall time (``rate(tokens) / rate(seconds)`` is throughput);
- ``affectllm_generation_tokens_per_second``: generated tokens per second of the latest batch;
- ``affectllm_batch_size``: requests per decoded batch (a histogram).
"""

from __future__ import annotations

import time
from typing import Any

from affectllm.serving.job_queue import BatchStats, JobQueue

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
TRACKED_PATHS = ("/v1/chat/completions",)
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)


def _prometheus():
    try:
        import prometheus_client
    except ImportError as err:
        raise ImportError("affectllm serve needs prometheus_client for /metrics: pip install 'affectllm[serve]'") \
            from err
    return prometheus_client


class ServerMetrics:
    """The metrics of one app around one ``JobQueue``; ``observe_batch`` is the engine's ``on_batch`` hook."""

    def __init__(self) -> None:
        pc = _prometheus()
        self._pc = pc
        self.registry = pc.CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = pc.Counter("affectllm_requests", "Chat-completion requests answered, by HTTP status.",
                                   ["status"], registry=r)
        self.latency = pc.Histogram("affectllm_request_duration_seconds", "Chat-completion latency, arrival to "
                                    "last byte.", buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = pc.Gauge("affectllm_queue_depth", "Requests waiting for the model.", registry=r)
        self.running = pc.Gauge("affectllm_requests_running", "Requests waiting for or using the model.", registry=r)
        self.prompt_tokens = pc.Counter("affectllm_prompt_tokens", "Prompt tokens read.", registry=r)
        self.generated = pc.Counter("affectllm_generation_tokens", "Tokens generated.", registry=r)
        self.decode_seconds = pc.Counter("affectllm_generation_seconds", "Decoder wall time, seconds.", registry=r)
        self.tokens_per_second = pc.Gauge("affectllm_generation_tokens_per_second",
                                          "Generated tokens per second of the latest batch.", registry=r)
        self.batch_size = pc.Histogram("affectllm_batch_size", "Requests decoded together in one batch.",
                                       buckets=(1, 2, 4, 8, 16, 32, 64), registry=r)

    def bind(self, engine: JobQueue) -> None:
        """Read the queue gauges from ``engine`` at scrape time and receive its batch statistics."""
        self.queue_depth.set_function(lambda: engine.queued)
        self.running.set_function(lambda: engine.pending)
        engine.on_batch = self.observe_batch

    def observe_batch(self, stats: BatchStats) -> None:
        self.batch_size.observe(stats.size)
        self.prompt_tokens.inc(stats.prompt_tokens)
        self.generated.inc(stats.completion_tokens)
        self.decode_seconds.inc(stats.seconds)
        if stats.seconds > 0:
            self.tokens_per_second.set(stats.completion_tokens / stats.seconds)

    def observe_request(self, status: int, seconds: float) -> None:
        self.requests.labels(status=str(status)).inc()
        self.latency.observe(seconds)

    def exposition(self) -> bytes:
        return self._pc.generate_latest(self.registry)


class RequestMetrics:
    """ASGI middleware: count each tracked request by its status and time it until its last body byte."""

    def __init__(self, app: Any, metrics: ServerMetrics) -> None:
        self.app, self.metrics = app, metrics

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope.get("path") not in TRACKED_PATHS:
            return await self.app(scope, receive, send)
        started, status, counted = time.perf_counter(), [500], [False]

        def count() -> None:
            if not counted[0]:
                counted[0] = True
                self.metrics.observe_request(status[0], time.perf_counter() - started)

        async def watch(message: dict) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
            await send(message)
            if message["type"] == "http.response.body" and not message.get("more_body", False):
                count()

        try:
            await self.app(scope, receive, watch)
        finally:
            count()  # a client that went away mid-stream is counted with the status it was sent
