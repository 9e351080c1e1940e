"""No fixture leaks its private ``AFFECTLLM_HOME`` into the tests after it.

A leaked home once made ``tests/test_default_chat.py`` skip in CI ("SmolLM2 weights not prepared") although CI had
prepared them. Files at the top of ``tests/`` run after the folders, so this runs after every folder's fixtures
were torn down."""

from __future__ import annotations

import os


def test_the_cache_home_is_the_one_the_session_started_with(pytestconfig):
    assert os.environ.get("AFFECTLLM_HOME") == pytestconfig.affectllm_session_home
