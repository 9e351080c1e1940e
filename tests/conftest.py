"""Test session setup: offline, deterministic, and fixtures that skip cleanly without ../shared."""

from __future__ import annotations

import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from pathlib import Path  # noqa: E402

import pytest  # noqa: E402

from affectllm.paths import shared_dir  # noqa: E402


def pytest_configure(config):
    # the cache home the session started with: tests/test_home_is_restored.py checks that no fixture leaked its own
    config.affectllm_session_home = os.environ.get("AFFECTLLM_HOME")


@pytest.fixture(scope="session")
def shared() -> Path:
    """The ../shared fixtures folder; tests that need it skip with a reason when it is absent."""
    d = shared_dir()
    if d is None:
        pytest.skip("../shared (real fixtures) is not beside this checkout; set AFFECTLLM_SHARED to its path")
    return d


@pytest.fixture(autouse=True)
def _seed():
    import random

    import numpy as np

    random.seed(0)
    np.random.seed(0)
    try:
        import torch

        torch.manual_seed(0)
    except ImportError:  # pragma: no cover
        pass
    yield


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory) -> Path:
    """A checkpoint folder named ``tiny`` holding the random tiny model (``--model`` takes it like any other)."""
    from affectllm.testing import save_tiny_checkpoint

    return save_tiny_checkpoint(tmp_path_factory.mktemp("models") / "tiny")
