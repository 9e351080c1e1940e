"""Refuse model folders whose weights exist only as pickles (``pytorch_model.bin``, ``*.pt``, ``*.pth`` …).

Unpickling a file can run any code it carries, so AffectLLM loads safetensors only. ``refuse_pickled_weights``
runs before anything is loaded and raises ``PickledWeightsError`` (a ValueError: the CLI answers exit 2, no
traceback) naming the file and the safe alternative: convert the folder to safetensors once, where the file
is trusted. Hub ids and folders that hold any ``*.safetensors`` pass untouched.
"""

from __future__ import annotations

import os
from pathlib import Path

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")


class PickledWeightsError(ValueError):
    """A model folder with pickled weights and no safetensors."""


def pickled_only(folder: Path) -> list[Path]:
    """The pickled weight files of ``folder`` when it has no ``*.safetensors`` (else [])."""
    try:
        names = sorted(p for p in folder.iterdir() if p.is_file())
    except OSError:
        return []
    if any(p.suffix == ".safetensors" for p in names):
        return []
    return [p for p in names if p.suffix.lower() in PICKLE_SUFFIXES and not p.name.startswith("training_args")]


def refuse_pickled_weights(name: str | os.PathLike[str] | None, option: str = "--model") -> None:
    """Raise PickledWeightsError when ``name`` is a local folder whose weights are pickles only."""
    if name is None:
        return
    folder = Path(name).expanduser()
    if not folder.is_dir():
        return
    found = pickled_only(folder)
    if not found:
        return
    first = found[0]
    more = f" (and {len(found) - 1} more)" if len(found) > 1 else ""
    raise PickledWeightsError(
        f"{first}{more}: {option} {name} holds only pickled PyTorch weights, which AffectLLM does not load "
        "(unpickling can run code hidden in the file). Convert the folder to safetensors once, where you trust "
        "the file (e.g. load it with transformers and call save_pretrained(NEW_FOLDER), which writes "
        "model.safetensors), or use a release that ships *.safetensors; then pass that folder")
