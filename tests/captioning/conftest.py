"""Fixtures for the captioning tests: the tiny model (built once), small generated media, the CLI app."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny():
    """(model, processor) of the random tiny model, shared by the tests of this folder."""
    from affectllm.captioning.run import load_model

    return load_model("tiny")


@pytest.fixture(scope="session")
def cli_app():
    from affectllm.cli import _build

    return _build()

