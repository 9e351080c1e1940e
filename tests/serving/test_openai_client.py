"""The official ``openai`` client against a real server (uvicorn on 127.0.0.1, in a thread) around the tiny model:
sampling with a seed, greedy by default, ``stop``, ``n``, ``response_format`` json_schema, concurrent requests
batched, a full queue's 429, and the ``/metrics`` counters those requests leave."""

from __future__ import annotations

import json
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import pytest

openai = pytest.importorskip("openai")
pytest.importorskip("prometheus_client")

QUESTION = "Which emotions does the speaker show, and why?"
MESSAGES = [{"role": "user", "content": QUESTION}]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def serve(tiny, experts):
    """serve(**ServeSettings fields) -> (openai.OpenAI client, base URL, app): a live server, stopped afterwards."""
    import uvicorn

    from affectllm.serving import ServeSettings, create_app

    running = []

    def start(**settings):
        settings.setdefault("max_new_tokens", 16)
        app = create_app(*tiny, ServeSettings(**settings), experts=experts)
        port = _free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning",
                                               lifespan="off"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        deadline = time.monotonic() + 30
        while not server.started:
            assert thread.is_alive() and time.monotonic() < deadline, "the server did not start"
            time.sleep(0.01)
        running.append((server, thread, app))
        url = f"http://127.0.0.1:{port}"
        client = openai.OpenAI(base_url=url + "/v1", api_key="unused", max_retries=0, timeout=60)
        return client, url, app

    yield start
    for server, thread, app in running:
        server.should_exit = True
        thread.join(10)
        app.state.engine.close()


def _ask(client, **kw):
    return client.chat.completions.create(model="tiny", messages=MESSAGES, **kw)


def _engine_text(tiny, experts, **settings) -> str:
    """What the model's engine answers the same question directly (the server must not decode differently)."""
    from affectllm.engine import Conversation, Engine

    engine = Engine.for_model(*tiny, experts=experts)
    return engine.reply(Conversation.from_messages(MESSAGES), **settings).text


def test_seeded_sampling_is_reproducible_and_greedy_is_the_default(serve, tiny, experts):
    client, _, _ = serve()
    sampled = dict(temperature=1.0, top_p=0.95, max_tokens=12)
    a = _ask(client, seed=7, **sampled).choices[0].message.content
    b = _ask(client, seed=7, **sampled).choices[0].message.content
    c = _ask(client, seed=8, **sampled).choices[0].message.content
    greedy_0 = _ask(client, temperature=0, max_tokens=12).choices[0].message.content
    greedy_default = _ask(client, max_tokens=12, top_p=0.5, seed=3).choices[0].message.content  # no temperature
    assert a == b and a != c  # same seed, same text; another seed, another text
    assert a == _engine_text(tiny, experts, do_sample=True, temperature=1.0, top_p=0.95, seed=7, max_new_tokens=12)
    assert greedy_0 == greedy_default == _engine_text(tiny, experts, max_new_tokens=12)
    assert greedy_0 != a


def test_stop_cuts_the_answer(serve, tiny, experts):
    client, _, _ = serve()
    full = _engine_text(tiny, experts, max_new_tokens=16)
    assert len(full) >= 8, full
    stop = full[len(full) // 2: len(full) // 2 + 3]
    expected = full[:full.find(stop)]
    one = _ask(client, max_tokens=16, stop=stop).choices[0]
    many = _ask(client, max_tokens=16, stop=["\u2603never", stop]).choices[0]
    assert one.message.content == expected == many.message.content
    assert one.finish_reason == "stop" and len(expected) < len(full)
    streamed = client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=16, stop=stop, stream=True)
    assert "".join(ch.choices[0].delta.content or "" for ch in streamed if ch.choices) == expected


def test_n_other_than_one_is_a_clear_400(serve):
    client, _, _ = serve()
    with pytest.raises(openai.BadRequestError) as err:
        _ask(client, n=2)
    assert err.value.status_code == 400
    assert "n=2" in err.value.message and "one choice" in err.value.message
    assert _ask(client, n=1, max_tokens=2).choices[0].finish_reason == "length"


def test_response_format_json_schema_answers_with_the_report(serve):
    import jsonschema

    client, _, _ = serve()
    schema = {"type": "object", "additionalProperties": False, "required": ["labels", "valence", "explanation"],
              "properties": {"labels": {"type": "array", "items": {"type": "string"}},
                             "valence": {"type": ["number", "null"]}, "explanation": {"type": "string"}}}
    fmt = {"type": "json_schema", "json_schema": {"name": "emotions", "schema": schema, "strict": True}}
    done = _ask(client, max_tokens=12, response_format=fmt)
    answer = json.loads(done.choices[0].message.content)
    jsonschema.validate(answer, schema)
    report = done.model_extra["report"]  # the full report beside it (an AffectLLM extension)
    assert answer == {k: report[k] for k in ("labels", "valence", "explanation")}
    whole = json.loads(_ask(client, max_tokens=12, response_format={"type": "json_object"}).choices[0].message.content)
    assert whole["raw"] == report["raw"] and set(answer) < set(whole)

    bad = {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"mood": {"type": "string"}}}}}
    with pytest.raises(openai.BadRequestError) as err:
        _ask(client, response_format=bad)
    assert "'mood'" in err.value.message and "labels" in err.value.message
    narrow = {"type": "json_schema", "json_schema": {"name": "x", "schema": {
        "type": "object", "properties": {"valence": {"type": "number"}}}}}
    with pytest.raises(openai.BadRequestError) as err:
        _ask(client, response_format=narrow)
    assert "null" in err.value.message and '["null", "number"]' in err.value.message


def test_four_concurrent_requests_are_batched_and_all_answered(serve, tiny, experts):
    client, url, app = serve(max_batch=4, batch_window_s=5.0)
    sizes: list[int] = []
    observe = app.state.engine.on_batch
    app.state.engine.on_batch = lambda stats: (sizes.append(stats.size), observe(stats))
    with ThreadPoolExecutor(4) as pool:
        done = list(pool.map(lambda _: _ask(client, max_tokens=8), range(4)))
    assert sizes == [4]
    assert [d.choices[0].message.content for d in done] == [_engine_text(tiny, experts, max_new_tokens=8)] * 4


def test_full_queue_gets_429_with_retry_after(serve):
    client, _, app = serve(max_queue=1)
    engine, release = app.state.engine, threading.Event()
    original = engine.perceive
    engine.perceive = lambda media: (release.wait(30), original(media))[1]
    with ThreadPoolExecutor(1) as pool:
        first = pool.submit(_ask, client, max_tokens=4)
        while engine.pending == 0:
            time.sleep(0.01)
        with pytest.raises(openai.RateLimitError) as err:
            _ask(client, max_tokens=4)
        release.set()
        assert first.result().choices[0].finish_reason == "length"
    assert err.value.status_code == 429 and err.value.response.headers["retry-after"] == "2"
    assert "limit 1" in err.value.message


def test_metrics_count_the_requests(serve):
    import httpx
    from prometheus_client.parser import text_string_to_metric_families

    client, url, _ = serve()
    answers = [_ask(client, max_tokens=n) for n in (3, 5)]
    with pytest.raises(openai.BadRequestError):
        _ask(client, n=3)
    streamed = list(client.chat.completions.create(model="tiny", messages=MESSAGES, max_tokens=4, stream=True,
                                                   stream_options={"include_usage": True}))
    r = httpx.get(url + "/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    samples = {(s.name, tuple(sorted(s.labels.items()))): s.value
               for family in text_string_to_metric_families(r.text) for s in family.samples}

    def value(name: str, **labels) -> float:
        return samples[(name, tuple(sorted(labels.items())))]

    generated = sum(a.usage.completion_tokens for a in answers) + streamed[-1].usage.completion_tokens
    prompt = sum(a.usage.prompt_tokens for a in answers) + streamed[-1].usage.prompt_tokens
    assert value("affectllm_requests_total", status="200") == 3
    assert value("affectllm_requests_total", status="400") == 1
    assert value("affectllm_request_duration_seconds_count") == 4
    assert value("affectllm_request_duration_seconds_sum") > 0
    assert value("affectllm_generation_tokens_total") == generated == 3 + 5 + 4
    assert value("affectllm_prompt_tokens_total") == prompt
    assert value("affectllm_batch_size_count") == 3
    assert value("affectllm_queue_depth") == 0 and value("affectllm_requests_running") == 0
    assert value("affectllm_generation_tokens_per_second") > 0
    assert value("affectllm_generation_seconds_total") > 0
