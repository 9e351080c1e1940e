"""Fixtures of the web tests: a tiny model taught one answer about the RAVDESS clip, the page served
on 127.0.0.1, and headless Chromium (installed with apt-get when missing and possible)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from web_helpers import CLIP, QUESTION, find_or_install_chromium, free_port


@pytest.fixture(scope="session")
def chromium() -> str:
    return find_or_install_chromium()


@pytest.fixture(scope="module")
def taught_tiny(shared: Path):
    """The tiny model taught to answer QUESTION about the clip with web_helpers.ANSWER (real pipeline)."""
    from web_helpers import teach

    from affectllm.engine import experts_for
    from affectllm.perception.pipeline import perceive
    from affectllm.testing import tiny_model_and_processor

    model, processor = tiny_model_and_processor()
    model.source_name = "tiny (taught one answer)"
    perception = perceive(shared / CLIP, experts=experts_for(model), num_frames=processor.vision["num_frames"])
    loss = teach(model, processor, perception, QUESTION)
    assert loss < 0.2, f"teaching the tiny model did not converge (loss {loss:.3f})"
    return model, processor


@pytest.fixture(scope="module")
def web_url(taught_tiny):
    """The page, served by Gradio in this process on a free 127.0.0.1 port."""
    os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
    from affectllm.web import build_demo, launch

    demo = build_demo(*taught_tiny, max_new_tokens=48)
    port = free_port()
    launch(demo, host="127.0.0.1", port=port, prevent_thread_lock=True)
    yield f"http://127.0.0.1:{port}/"
    demo.close()
    demo.affectllm_engine.close()
