"""Hostile requests (issue 12): a 7.1 clip as a data: URL, a decoder crash, a 30 MB prompt, path leaks,
the docs behind the key, the allowlist's existence oracle, and the served model id (issue 13)."""

from __future__ import annotations

import asyncio
import base64
import json
import tempfile
import time
from pathlib import Path

import pytest

QUESTION = "Which emotions does the speaker show, and why?"


def chat(content, **extra) -> dict:
    return {"messages": [{"role": "user", "content": content}], **extra}


def video_part(url: str) -> list[dict]:
    return [{"type": "video_url", "video_url": {"url": url}}, {"type": "text", "text": QUESTION}]


def _temp_files() -> set[Path]:
    return set(Path(tempfile.gettempdir()).glob("affectllm-media-*"))


async def _timed_health(c) -> tuple[int, float]:
    t0 = time.perf_counter()
    r = await c.get("/health")
    return r.status_code, time.perf_counter() - t0


def test_surround_clip_as_data_url_then_health(make_client, tmp_path):
    """The 7.1 AAC clip once segfaulted the server; now it is answered and /health still answers within 1 s."""
    from affectllm.testing_inputs import write_surround_clip

    data = base64.b64encode(write_surround_clip(tmp_path / "surround.mp4").read_bytes()).decode()
    before = _temp_files()

    async def go():
        async with make_client(max_new_tokens=2) as c:
            r = await c.post("/v1/chat/completions", json=chat(video_part(f"data:video/mp4;base64,{data}")))
            return r, await _timed_health(c)

    r, (health, seconds) = asyncio.run(go())
    assert r.status_code == 200, r.text
    assert r.json()["report"]["evidence"]["voice"]["duration_s"] == pytest.approx(3.0, abs=0.1)
    assert health == 200 and seconds < 1.0
    assert _temp_files() <= before


def test_decoder_crash_fails_only_that_request(make_client, tmp_path, monkeypatch):
    """A native crash during the trial decode (simulated SIGSEGV in the child) is a 400 for that request only."""
    from serving_helpers import write_wav

    import affectllm.media.isolated as isolated

    monkeypatch.setattr(isolated, "_CHILD", "import os, signal; os.kill(os.getpid(), signal.SIGSEGV)")
    data = base64.b64encode(write_wav(tmp_path / "clip.wav").read_bytes()).decode()
    before = _temp_files()

    async def go():
        async with make_client(max_new_tokens=2) as c:
            bad = await c.post("/v1/chat/completions", json=chat(video_part(f"data:audio/wav;base64,{data}")))
            after = await c.post("/v1/chat/completions", json=chat(QUESTION))
            return bad, after, await _timed_health(c)

    bad, after, (health, seconds) = asyncio.run(go())
    assert bad.status_code == 400, bad.text
    msg = bad.json()["error"]["message"]
    assert msg.startswith("video_url data: URL: the media decoder crashed on this file (SIGSEGV)"), msg
    assert tempfile.gettempdir() not in msg  # the temporary file is named by what the client sent
    assert after.status_code == 200 and health == 200 and seconds < 1.0
    assert _temp_files() <= before


def test_30_mb_prompt_is_refused_while_health_answers(make_client):
    """/health is polled until the 30 MB request is refused; the longest wait between two answers (the longest
    the shared event loop was blocked, including the JSON parse of the body) stays under 1 s."""
    big = json.dumps(chat("x" * 30_000_000)).encode()  # encoded up front: the client's work is not measured

    async def go():
        async with make_client() as c:
            t0 = time.perf_counter()
            task = asyncio.create_task(c.post("/v1/chat/completions", content=big,
                                              headers={"content-type": "application/json"}))
            statuses, answered = [], [time.perf_counter()]
            while not task.done():
                statuses.append((await c.get("/health")).status_code)
                answered.append(time.perf_counter())
                await asyncio.sleep(0.01)
            answered.append(time.perf_counter())  # the poller got the loop back: a stall before this counts too
            r = await task
            return r, time.perf_counter() - t0, statuses, max(b - a for a, b in zip(answered, answered[1:]))

    r, refused_after, statuses, longest_wait = asyncio.run(go())
    assert r.status_code == 400 and "characters" in r.json()["error"]["message"], r.text[:300]
    assert statuses and set(statuses) == {200}
    assert longest_wait < 1.0, longest_wait
    assert refused_after < 10.0  # was 40 s when the text was tokenised on the event loop


def test_docs_and_openapi_follow_the_key(make_client):
    async def go():
        async with make_client(api_key="s3cret") as c:
            auth = {"Authorization": "Bearer s3cret"}
            return [await c.get(p) for p in ("/docs", "/openapi.json")], \
                [await c.get(p, headers=auth) for p in ("/docs", "/openapi.json")]

    without, with_key = asyncio.run(go())
    assert [r.status_code for r in without] == [401, 401]
    assert [r.status_code for r in with_key] == [200, 200]
    assert "/v1/chat/completions" in with_key[1].json()["paths"]


def test_outside_answers_the_same_whether_the_target_exists(make_client, media_dir):
    from affectllm.serving import MediaPolicy

    outside = media_dir.parent / "outside"
    (media_dir / "subdir").symlink_to(outside, target_is_directory=True)

    async def go():
        async with make_client(MediaPolicy(allowed_dir=media_dir), max_new_tokens=2) as c:
            return [await c.post("/v1/chat/completions", json=chat(video_part(f"subdir/{name}")))
                    for name in ("secret.wav", "no_such_file.wav")]

    exists, missing = asyncio.run(go())
    assert exists.status_code == missing.status_code == 403
    strip = [r.json()["error"]["message"].replace(name, "") for r, name in
             ((exists, "secret.wav"), (missing, "no_such_file.wav"))]
    assert strip[0] == strip[1]


def test_model_id_is_a_name_never_a_path(tiny, experts, tmp_path):
    """A model loaded from a folder is served under the folder's name; no response shows the path."""
    import httpx

    from affectllm.serving import ServeSettings, create_app
    from affectllm.serving.app import served_model_name

    model, processor = tiny
    folder = tmp_path / "ckpts" / "my-affect-model"
    folder.mkdir(parents=True)
    old = model.source_name
    model.source_name = str(folder)
    try:
        assert served_model_name(model) == "my-affect-model"
        assert served_model_name(model, "friendly") == "friendly"
        app = create_app(model, processor, ServeSettings(max_new_tokens=2), experts=experts)

        async def go():
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://testserver", timeout=60) as c:
                return [await c.get("/health"), await c.get("/v1/models"), await c.get("/openapi.json"),
                        await c.post("/v1/chat/completions", json=chat(QUESTION, model="my-affect-model")),
                        await c.post("/v1/chat/completions", json=chat(QUESTION, model="affectllm-default")),
                        await c.post("/v1/chat/completions", json=chat(QUESTION)),
                        await c.post("/v1/chat/completions", json=chat(QUESTION, model="gpt-4o"))]

        responses = asyncio.run(go())
        app.state.engine.close()
    finally:
        model.source_name = old
    health, models, _, named, default, unnamed, unknown = responses
    assert health.json()["model"] == "my-affect-model"
    assert [m["id"] for m in models.json()["data"]] == ["my-affect-model"]
    assert named.status_code == default.status_code == unnamed.status_code == 200
    assert named.json()["model"] == "my-affect-model"
    assert unknown.status_code == 404 and "'my-affect-model'" in unknown.json()["error"]["message"]
    for r in responses:
        assert str(tmp_path) not in r.text and str(tmp_path) not in str(r.headers)
