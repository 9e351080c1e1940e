"""``affectllm serve`` as users start it: a real uvicorn process on 127.0.0.1 answering a streamed
``video_url`` request for the RAVDESS clip (the issue's "done when"), then shut down cleanly."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

CLIP = "ravdess/01-01-01-01-01-01-01.mp4"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_healthy(url: str, proc: subprocess.Popen, log: Path, timeout: float = 240.0) -> dict:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            pytest.fail(f"affectllm serve exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        try:
            return httpx.get(url + "/health", timeout=2).json()
        except httpx.HTTPError:
            time.sleep(0.5)
    pytest.fail(f"affectllm serve did not answer /health within {timeout:.0f} s:\n{log.read_text()[-3000:]}")


@pytest.fixture()
def server(shared: Path, tmp_path: Path, tiny_checkpoint: Path):
    port = free_port()
    log = tmp_path / "serve.log"
    cmd = [sys.executable, "-m", "affectllm", "serve", "--model", str(tiny_checkpoint), "--port", str(port),
           "--allowed-media-dir", str(shared / "media"), "--api-key", "k", "--max-new-tokens", "24",
           "--log-level", "warning"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env)
    url = f"http://127.0.0.1:{port}"
    try:
        health = wait_healthy(url, proc, log)
        yield url, health, proc
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


@pytest.mark.fixtures
@pytest.mark.timeout(360)
def test_serve_streams_an_answer_for_the_ravdess_video(server):
    url, health, proc = server
    assert health["status"] == "ok"
    body = {"model": health["model"], "stream": True, "stream_options": {"include_usage": True},
            "messages": [{"role": "user", "content": [
                {"type": "video_url", "video_url": {"url": CLIP}},
                {"type": "text", "text": "How does this actor feel, and why?"}]}]}
    t0 = time.monotonic()
    arrivals, events = [], []
    with httpx.stream("POST", url + "/v1/chat/completions", json=body, headers={"Authorization": "Bearer k"},
                      timeout=150) as r:
        assert r.status_code == 200, r.read().decode()
        assert r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                events.append(line[6:])
                arrivals.append(time.monotonic() - t0)
    assert events[-1] == "[DONE]"
    chunks = [json.loads(e) for e in events[:-1]]
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    content_chunks = [c for c in chunks if c["choices"] and c["choices"][0]["delta"].get("content")]
    assert len(content_chunks) >= 2 and text
    final = next(c for c in chunks if c["choices"] and c["choices"][0].get("finish_reason"))
    report = final["report"]
    assert report["raw"] == text
    # the evidence is the clip's: 4 sampled frames with a face, and prosody of its 3.3 s audio track
    assert report["evidence"]["face"]["frames"] == 4 and report["evidence"]["face"]["frames_with_face"] >= 1
    assert report["evidence"]["voice"]["duration_s"] == pytest.approx(3.3, abs=0.15)
    usage = chunks[-1]["usage"]
    assert usage["completion_tokens"] == 24 and usage["prompt_tokens"] > 20
    print(f"first event {arrivals[0]:.2f} s, last {arrivals[-1]:.2f} s, {len(content_chunks)} content chunks")
    # auth and the allowlist hold on the real server too
    no_key = httpx.post(url + "/v1/chat/completions", json=body, timeout=30)
    escape = httpx.post(url + "/v1/chat/completions", headers={"Authorization": "Bearer k"}, timeout=30,
                        json={"messages": [{"role": "user", "content": [
                            {"type": "video_url", "video_url": {"url": "../README.md"}}]}]})
    assert no_key.status_code == 401 and escape.status_code == 403
