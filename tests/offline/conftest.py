"""The offline tests run ``affectllm models ... --cache-dir`` and ``prepare_all(cache_dir=...)``, which set
``AFFECTLLM_HOME`` for the whole process (what a command line wants). Each test here gets it restored afterwards,
so no later test finds the real cache replaced by a test's temporary folder (the default-chat test once
skipped in CI for that reason)."""

from __future__ import annotations

import os

import pytest


@pytest.fixture(autouse=True)
def _restore_affectllm_home(monkeypatch):
    home = os.environ.get("AFFECTLLM_HOME")
    if home is None:
        monkeypatch.delenv("AFFECTLLM_HOME", raising=False)
    else:
        monkeypatch.setenv("AFFECTLLM_HOME", home)  # recorded: put back after the test whatever it set
