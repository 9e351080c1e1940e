"""The OpenAI-compatible server in-process (httpx over ASGI): answers, streaming, auth, limits, bad requests."""

from __future__ import annotations

import asyncio
import base64
import json
import threading
from pathlib import Path

import pytest
from serving_helpers import sse_events, write_wav

QUESTION = "Which emotions does the speaker show, and why?"


def run(coro):
    return asyncio.run(coro)


def chat(content, **extra) -> dict:
    return {"messages": [{"role": "user", "content": content}], **extra}


def audio_part(url: str) -> list[dict]:
    return [{"type": "audio_url", "audio_url": {"url": url}}, {"type": "text", "text": QUESTION}]


# --- answers ---------------------------------------------------------------------------------------------
def test_health_and_models(make_client):
    async def go():
        async with make_client(model_id="affect-tiny") as c:
            h = await c.get("/health")
            m = await c.get("/v1/models")
        return h, m

    h, m = run(go())
    assert h.status_code == 200 and h.json() == {"status": "ok", "model": "affect-tiny", "queued": 0}
    assert m.status_code == 200
    assert [d["id"] for d in m.json()["data"]] == ["affect-tiny"] and m.json()["object"] == "list"


def test_answer_is_exactly_predict(make_client, media_dir, tiny, experts):
    """Same model, same perception, same prompt, same greedy decode: the server's answer is predict's report."""
    from affectllm.api import predict
    from affectllm.engine import Renderer
    from affectllm.perception.pipeline import perceive
    from affectllm.serving import MediaPolicy

    async def go():
        async with make_client(MediaPolicy(allowed_dir=media_dir)) as c:
            plain = await c.post("/v1/chat/completions", json=chat(audio_part("clip.wav"), max_tokens=10))
            as_json = await c.post("/v1/chat/completions", json=chat(audio_part("clip.wav"), max_tokens=10,
                                                                     response_format={"type": "json_object"}))
        return plain, as_json

    plain, as_json = run(go())
    assert plain.status_code == 200, plain.text
    body = plain.json()
    expected = predict(*tiny, audio=str(media_dir / "clip.wav"), prompt=QUESTION, max_new_tokens=10, experts=experts)
    assert body["object"] == "chat.completion" and body["model"] == "tiny"
    assert body["choices"][0]["message"] == {"role": "assistant", "content": expected.raw}
    assert body["report"]["labels"] == expected.labels and body["report"]["evidence"]["voice"]
    # usage: the prompt is the processor's encoding of predict's single turn; 10 tokens generated (no EOS)
    model, processor = tiny
    p = perceive(str(media_dir / "clip.wav"), experts=experts, num_frames=processor.vision["num_frames"])
    conv = Renderer.for_model(model, processor).single_turn(p, QUESTION)
    n_prompt = int(processor([conv], add_generation_prompt=True)["input_ids"].shape[1])
    assert body["usage"] == {"prompt_tokens": n_prompt, "completion_tokens": 10, "total_tokens": n_prompt + 10}
    assert body["choices"][0]["finish_reason"] == "length"
    # response_format json_object: the content is the EmotionReport JSON of the same answer
    report = json.loads(as_json.json()["choices"][0]["message"]["content"])
    assert report["raw"] == expected.raw and report["labels"] == expected.labels
    assert set(report) == {"labels", "explanation", "valence", "arousal", "transcript", "language", "translation",
                           "faithful", "faithfulness_problems", "evidence", "raw", "labels_source",
                           "explanation_source", "explanation_replaced"}  # + where labels / explanation came from


def test_stream_chunks_then_done(make_client):
    async def go():
        async with make_client() as c:
            ref = await c.post("/v1/chat/completions", json=chat(QUESTION))
            async with c.stream("POST", "/v1/chat/completions",
                                json=chat(QUESTION, stream=True, stream_options={"include_usage": True})) as r:
                assert r.status_code == 200
                assert r.headers["content-type"].startswith("text/event-stream")
                events = await sse_events(r.aiter_lines())
        return ref.json(), events

    ref, events = run(go())
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1
    assert chunks[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    pieces = [c["choices"][0]["delta"].get("content", "") for c in chunks[1:] if c["choices"]]
    assert sum(1 for p in pieces if p) >= 2, "the answer must arrive in several chunks"
    assert "".join(pieces) == ref["choices"][0]["message"]["content"]
    finish = [c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason")]
    assert len(finish) == 1 and finish[0]["choices"][0]["finish_reason"] == ref["choices"][0]["finish_reason"]
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == ref["usage"]


def test_multi_turn_history_changes_the_prompt(make_client):
    turns = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hello"},
             {"role": "assistant", "content": "Hi."}, {"role": "user", "content": QUESTION}]

    async def go():
        async with make_client() as c:
            one = await c.post("/v1/chat/completions", json=chat(QUESTION))
            many = await c.post("/v1/chat/completions", json={"messages": turns})
        return one.json(), many.json()

    one, many = run(go())
    assert many["usage"]["prompt_tokens"] > one["usage"]["prompt_tokens"] + 4


# --- auth ------------------------------------------------------------------------------------------------
def test_api_key(make_client):
    async def go():
        async with make_client(api_key="s3cret") as c:
            none = await c.post("/v1/chat/completions", json=chat(QUESTION))
            wrong = await c.post("/v1/chat/completions", json=chat(QUESTION), headers={"Authorization": "Bearer x"})
            basic = await c.get("/v1/models", headers={"Authorization": "Basic czNjcmV0"})
            ok = await c.post("/v1/chat/completions", json=chat(QUESTION),
                              headers={"Authorization": "Bearer s3cret"})
            health = await c.get("/health")
        return none, wrong, basic, ok, health

    none, wrong, basic, ok, health = run(go())
    for r in (none, wrong, basic):
        assert r.status_code == 401 and r.headers["www-authenticate"] == "Bearer"
        assert r.json()["error"]["type"] == "authentication_error"
    assert "Authorization: Bearer" in none.json()["error"]["message"]
    assert ok.status_code == 200 and health.status_code == 200


# --- media policy ----------------------------------------------------------------------------------------
def _link(media_dir: Path) -> None:
    outside = media_dir.parent / "outside"
    (media_dir / "escape.wav").symlink_to(outside / "secret.wav")
    (media_dir / "subdir").symlink_to(outside, target_is_directory=True)
    (media_dir / "alias.wav").symlink_to(media_dir / "clip.wav")


@pytest.mark.parametrize("ref, status, words", [
    ("clip.wav", 200, None),
    ("{inside}/clip.wav", 200, None),
    ("file://{inside}/clip.wav", 200, None),
    ("alias.wav", 200, None),  # a symlink that stays inside is fine
    ("../outside/secret.wav", 403, "'..'"),
    ("{inside}/../outside/secret.wav", 403, "'..'"),
    ("{outside}/secret.wav", 403, "outside"),
    ("file://{outside}/secret.wav", 403, "outside"),
    ("escape.wav", 403, "symlink"),
    ("subdir/secret.wav", 403, "symlink"),
    ("missing.wav", 400, "no such file"),
    ("http://127.0.0.1:1/clip.wav", 403, "--allow-remote-media"),
    ("ftp://host/clip.wav", 400, "unsupported URL scheme"),
])
def test_allowed_media_dir(make_client, media_dir, ref, status, words):
    from affectllm.serving import MediaPolicy

    _link(media_dir)
    url = ref.format(inside=media_dir, outside=media_dir.parent / "outside")

    async def go():
        async with make_client(MediaPolicy(allowed_dir=media_dir), max_new_tokens=2) as c:
            return await c.post("/v1/chat/completions", json=chat(audio_part(url)))

    r = run(go())
    assert r.status_code == status, r.text
    if words:
        assert words in r.json()["error"]["message"]
        assert r.json()["error"]["param"] == "messages.0.content.0"


def test_paths_refused_without_allowed_dir(make_client, media_dir):
    async def go():
        async with make_client() as c:
            return await c.post("/v1/chat/completions", json=chat(audio_part(str(media_dir / "clip.wav"))))

    r = run(go())
    assert r.status_code == 403 and "--allowed-media-dir" in r.json()["error"]["message"]


def test_base64_media_and_duration_limit(make_client, media_dir, tmp_path):
    from affectllm.serving import MediaPolicy

    data = base64.b64encode((media_dir / "clip.wav").read_bytes()).decode()
    long = base64.b64encode(write_wav(tmp_path / "long.wav", seconds=3.0).read_bytes()).decode()
    parts = {
        "input_audio": [{"type": "input_audio", "input_audio": {"data": data, "format": "wav"}}],
        "data_url": [{"type": "audio_url", "audio_url": {"url": f"data:audio/wav;base64,{data}"}}],
        "too_long": [{"type": "input_audio", "input_audio": {"data": long, "format": "wav"}}],
    }

    async def go():
        async with make_client(MediaPolicy(max_media_seconds=2.0), max_new_tokens=3) as c:
            return {k: await c.post("/v1/chat/completions", json=chat(v)) for k, v in parts.items()}

    before = set(Path(__import__("tempfile").gettempdir()).glob("affectllm-media-*"))
    out = run(go())
    assert out["input_audio"].status_code == 200 and out["data_url"].status_code == 200
    assert out["input_audio"].json()["choices"] == out["data_url"].json()["choices"]
    assert out["input_audio"].json()["report"]["evidence"]["voice"]["duration_s"] == pytest.approx(1.0, abs=0.02)
    assert out["too_long"].status_code == 400
    msg = out["too_long"].json()["error"]["message"]
    assert "lasts 3.0 s" in msg and "--max-media-seconds" in msg and "input_audio" in msg
    after = set(Path(__import__("tempfile").gettempdir()).glob("affectllm-media-*"))
    assert after <= before, "temporary media files must be deleted"


def test_remote_media_when_enabled(make_client, media_dir, monkeypatch):
    import httpx

    from affectllm.serving import MediaPolicy

    wav = (media_dir / "clip.wav").read_bytes()
    transport = httpx.MockTransport(lambda req: httpx.Response(200, content=wav) if req.url.path == "/a.wav"
                                    else httpx.Response(404))
    monkeypatch.setattr(httpx, "stream", lambda method, url, **kw: httpx.Client(transport=transport).stream(
        method, url, **{k: v for k, v in kw.items() if k != "timeout"}))

    async def go():
        async with make_client(MediaPolicy(allow_remote=True, max_media_bytes=len(wav) + 10), max_new_tokens=2) as c:
            ok = await c.post("/v1/chat/completions", json=chat(audio_part("https://example.org/a.wav")))
            gone = await c.post("/v1/chat/completions", json=chat(audio_part("https://example.org/b.wav")))
        async with make_client(MediaPolicy(allow_remote=True, max_media_bytes=1000), max_new_tokens=2) as c:
            big = await c.post("/v1/chat/completions", json=chat(audio_part("https://example.org/a.wav")))
        return ok, gone, big

    ok, gone, big = run(go())
    assert ok.status_code == 200 and ok.json()["report"]["evidence"]["voice"]
    assert gone.status_code == 400 and "answered 404" in gone.json()["error"]["message"]
    assert big.status_code == 413


# --- limits and malformed requests -----------------------------------------------------------------------
def test_oversized_body_is_413(make_client):
    big = json.dumps(chat("x" * 200_000)).encode()

    async def chunks():
        for i in range(0, len(big), 16384):
            yield big[i:i + 16384]

    async def go():
        async with make_client(max_body_bytes=100_000) as c:
            declared = await c.post("/v1/chat/completions", content=big, headers={"content-type": "application/json"})
            chunked = await c.post("/v1/chat/completions", content=chunks(),
                                   headers={"content-type": "application/json"})
            small = await c.post("/v1/chat/completions", json=chat(QUESTION))
        return declared, chunked, small

    declared, chunked, small = run(go())
    assert declared.status_code == 413 and "--max-body-mb" in declared.json()["error"]["message"]
    assert chunked.status_code == 413
    assert small.status_code == 200


GARBAGE = base64.b64encode(b"this is not a media file at all" * 10).decode()


@pytest.mark.parametrize("body, status, words", [
    (b"{not json", 400, "not valid JSON"),
    (b"[1, 2]", 400, "JSON object"),
    (b'"text"', 400, "JSON object"),
    (json.dumps({"messages": []}).encode(), 400, "messages"),
    (json.dumps({"model": "x"}).encode(), 400, "messages: Field required"),
    (json.dumps(chat([{"type": "sticker", "sticker": {}}])).encode(), 400, "unknown content part type 'sticker'"),
    (json.dumps(chat([{"type": "text"}])).encode(), 400, "messages.0.content.0.text: Field required"),
    (json.dumps({"messages": [{"role": "robot", "content": "hi"}]}).encode(), 400, "messages.0.role"),
    (json.dumps({"messages": [{"role": "assistant", "content": "hi"}]}).encode(), 400, "end with a user message"),
    (json.dumps(chat(QUESTION, n=2)).encode(), 400, "n=2: this server generates one choice"),
    (json.dumps(chat(QUESTION, max_tokens=0)).encode(), 400, "max_tokens"),
    (json.dumps(chat(QUESTION, response_format={"type": "xml"})).encode(), 400, "response_format.type"),
    (json.dumps(chat(QUESTION, response_format={"type": "json_schema"})).encode(), 400, 'needs a "json_schema" object'),
    (json.dumps(chat(QUESTION, model="gpt-4o")).encode(), 404, "not served here"),
    (json.dumps(chat(audio_part("data:audio/wav;base64,@@@@"))).encode(), 400, "not valid base64"),
    (json.dumps(chat(audio_part("data:audio/wav,plain"))).encode(), 400, "only base64 data: URLs"),
    (json.dumps(chat(audio_part(f"data:audio/wav;base64,{GARBAGE}"))).encode(), 400,
     "audio_url data: URL: not a readable audio/video/image file"),
    (json.dumps(chat([{"type": "input_audio", "input_audio": {"data": GARBAGE, "format": "../x"}}])).encode(), 400,
     "input_audio.format"),
    (json.dumps(chat([*audio_part("data:audio/wav;base64,AAAA"), *audio_part("data:audio/wav;base64,AAAA")])).encode(),
     400, "one video, audio or image"),
])
def test_malformed_requests_are_4xx_with_a_message(make_client, body, status, words):
    async def go():
        async with make_client() as c:
            return await c.post("/v1/chat/completions", content=body, headers={"content-type": "application/json"})

    r = run(go())
    assert r.status_code == status, r.text
    err = r.json()["error"]
    assert words in err["message"], err
    assert err["type"] in ("invalid_request_error", "not_found_error")


def test_wrong_method_and_route(make_client):
    async def go():
        async with make_client() as c:
            return await c.get("/v1/chat/completions"), await c.get("/v1/nothing")

    method, route = run(go())
    assert method.status_code == 405 and route.status_code == 404
    assert "error" in method.json() and "error" in route.json()


# --- one model, many callers -----------------------------------------------------------------------------
def test_concurrent_requests_are_decoded_as_one_batch(make_client):
    """4 requests arriving together (within the batch window) are perceived one by one and decoded as one batch;
    greedy rows of one batch answer exactly what one request alone answers."""
    async def go():
        async with make_client(max_batch=4, batch_window_s=5.0) as c:
            engine = c._transport.app.state.engine
            active, peak, lock = [0], [0], threading.Lock()
            original = engine.perceive
            sizes: list[int] = []
            engine.on_batch = lambda stats: sizes.append(stats.size)

            def perceive(media):
                with lock:
                    active[0] += 1
                    peak[0] = max(peak[0], active[0])
                try:
                    return original(media)
                finally:
                    with lock:
                        active[0] -= 1

            engine.perceive = perceive
            rs = await asyncio.gather(*[c.post("/v1/chat/completions", json=chat(QUESTION)) for _ in range(4)])
            engine.batch_window_s = 0.0
            alone = await c.post("/v1/chat/completions", json=chat(QUESTION))
        return rs, alone, peak[0], sizes

    rs, alone, peak, sizes = run(go())
    assert [r.status_code for r in rs] == [200] * 4 and alone.status_code == 200
    assert sizes == [4, 1] and peak == 1  # one batch of 4, then the lone request; perception one at a time
    answers = {r.json()["choices"][0]["message"]["content"] for r in rs}
    assert answers == {alone.json()["choices"][0]["message"]["content"]}


def test_full_queue_is_429_with_retry_after(make_client):
    release = threading.Event()

    async def go():
        async with make_client(max_queue=1) as c:
            engine = c._transport.app.state.engine
            original = engine.perceive
            engine.perceive = lambda media: (release.wait(30), original(media))[1]
            first = asyncio.create_task(c.post("/v1/chat/completions", json=chat(QUESTION)))
            while engine.pending == 0:
                await asyncio.sleep(0.01)
            busy = await c.post("/v1/chat/completions", json=chat(QUESTION))
            health = await c.get("/health")
            release.set()
            return await first, busy, health

    first, busy, health = run(go())
    assert busy.status_code == 429 and busy.headers["retry-after"] == "2"
    assert busy.json()["error"]["type"] == "rate_limit_error" and "limit 1" in busy.json()["error"]["message"]
    assert health.json()["queued"] == 1 and first.status_code == 200


def test_abandoned_stream_stops_generation(tiny, experts):
    """A client that goes away mid-answer frees the model at the next token, not after max_tokens."""
    from affectllm.serving import Job, JobQueue

    engine = JobQueue(*tiny, experts=experts, max_new_tokens=400)
    outcome: list = []
    original = engine.engine.replies

    def recording_replies(conversations, settings, **kw):
        try:
            decoded = original(conversations, settings, **kw)
        except Exception as err:
            outcome.append(type(err).__name__)
            raise
        outcome.append(len(decoded[0].token_ids))
        return decoded

    engine.engine.replies = recording_replies

    async def go():
        events = engine.stream(Job(prompt=QUESTION, max_new_tokens=400))
        async for kind, _ in events:
            if kind == "text":
                break
        await events.aclose()
        while engine.pending:
            await asyncio.sleep(0.01)

    try:
        run(go())
    finally:
        engine.close()
        del engine.engine.replies  # the model's engine is shared by the tests: unpatch it
    assert outcome == ["GenerationCancelled"]
