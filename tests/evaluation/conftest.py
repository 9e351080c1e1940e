"""Fixtures for the evaluation tests: the shared OV-MERD files, and a private AFFECTLLM_HOME so no test writes
into the user's cache."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="module", autouse=True)
def _private_home(tmp_path_factory: pytest.TempPathFactory):
    # module scope: undone after each evaluation module. ("package" scope acts as session scope in a folder
    # without __init__.py: the home leaked into every later test, so tests/test_default_chat.py found no
    # prepared SmolLM2 and skipped; tests/test_home_is_restored.py guards against that)
    mp = pytest.MonkeyPatch()
    mp.setenv("AFFECTLLM_HOME", str(tmp_path_factory.mktemp("affectllm_home")))
    mp.delenv("AFFECTLLM_WHEEL_DIR", raising=False)
    yield
    mp.undo()


@pytest.fixture(scope="session")
def wheel_dir(shared: Path) -> Path:
    return shared / "data" / "emotion_wheel"


@pytest.fixture(scope="session")
def ov(shared: Path) -> dict[str, Path]:
    d = shared / "data" / "mer2024_ov"
    return {"gt": d / "check-openset.csv", "pred": d / "predict-openset.csv", "groups": d / "openset-synonym.zip"}


@pytest.fixture(scope="session")
def tables(wheel_dir: Path):
    from affectllm.evaluation.normalise import get_tables

    return get_tables(wheel_dir)
