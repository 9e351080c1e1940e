"""Fixtures for the captioning tests: the tiny model (built once), small generated media, the CLI app."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session")
def tiny(tiny_checkpoint):
    """(model, processor) of the random tiny model, shared by the tests of this folder."""
    from affectllm.loading import load

    return load(str(tiny_checkpoint))


@pytest.fixture(scope="session")
def cli_app():
    from affectllm.cli import _build

    return _build()

