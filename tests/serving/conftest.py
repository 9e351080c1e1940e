"""Fixtures of the server tests: one tiny random model per session, apps around it, a generated WAV clip."""

from __future__ import annotations

from pathlib import Path

import pytest
from serving_helpers import write_wav


@pytest.fixture(scope="session")
def tiny():
    """(model, processor): the tiny random model of the real architecture, built once (~1 s + imports)."""
    from affectllm.testing import tiny_model_and_processor

    model, processor = tiny_model_and_processor()
    model.eval()
    model.source_name = "tiny"
    return model, processor


@pytest.fixture(scope="session")
def experts():
    """Cue experts without Whisper or the face expert (prosody and text cues still run)."""
    from affectllm.perception.pipeline import Experts

    return Experts(whisper=None, faces=False)


@pytest.fixture()
def media_dir(tmp_path: Path) -> Path:
    """tmp/media (the allowed folder) with clip.wav inside, and tmp/outside/secret.wav beside it."""
    inside = tmp_path / "media"
    outside = tmp_path / "outside"
    inside.mkdir()
    outside.mkdir()
    write_wav(inside / "clip.wav")
    write_wav(outside / "secret.wav")
    return inside


@pytest.fixture()
def make_client(tiny, experts):
    """make_client(**settings) -> an httpx.AsyncClient talking to a fresh app in-process (ASGI)."""
    import httpx

    from affectllm.serving import MediaPolicy, ServeSettings, create_app

    apps = []

    def make(media: MediaPolicy | None = None, **settings) -> httpx.AsyncClient:
        settings.setdefault("max_new_tokens", 12)
        app = create_app(*tiny, ServeSettings(media=media or MediaPolicy(), **settings), experts=experts)
        apps.append(app)
        return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://testserver", timeout=60)

    yield make
    for app in apps:
        app.state.engine.close()
