"""Weights fingerprints: one sha256 over every byte a checkpoint's answers depend on, computed once at save time.

A checkpoint folder holds ``fingerprint.json`` (``{"sha256": ..., "files": [...]}``) written right after its
weights: the hash covers the JSON configs (model, generation, processor) and ALL bytes of ``model.safetensors``
(every tensor, not a prefix). Loading reads it back; a folder saved before fingerprints existed is hashed once on
load (a 17 MB adapter takes ~30 ms). Evaluation caches key on it, so changed weights never reuse old answers.
Towers and LLM loaded from a named source are covered by the config, which names them.

``sha256_file`` is the package's one content hash of a file (media, resource files, converted weights).
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FINGERPRINT_FILE = "fingerprint.json"
# what is hashed, in this order (those that exist); the weights file is hashed whole
HASHED_FILES = ("config.json", "generation_config.json", "processor_config.json", "model.safetensors")
BLOCK = 1 << 20  # files are read in 1 MiB blocks, never whole


def update_from_file(h, path: str | os.PathLike[str]) -> None:
    """Feed every byte of the file at ``path`` into the hash object ``h``."""
    with open(path, "rb") as f:
        while chunk := f.read(BLOCK):
            h.update(chunk)


def sha256_file(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's content."""
    h = hashlib.sha256()
    update_from_file(h, path)
    return h.hexdigest()


def compute_fingerprint(folder: str | os.PathLike[str]) -> dict[str, object]:
    """sha256 over the names and full contents of the checkpoint files that decide its outputs."""
    folder = Path(folder)
    h = hashlib.sha256()
    files = []
    for name in HASHED_FILES:
        p = folder / name
        if not p.is_file():
            continue
        files.append(name)
        h.update(name.encode() + b"\0")
        update_from_file(h, p)
        h.update(b"\0")
    return {"sha256": h.hexdigest(), "files": files}


def write_fingerprint(folder: str | os.PathLike[str]) -> str:
    """Hash a freshly saved checkpoint and store the result beside it; returns the hex digest."""
    fp = compute_fingerprint(folder)
    (Path(folder) / FINGERPRINT_FILE).write_text(json.dumps(fp, indent=2) + "\n", encoding="utf-8")
    return str(fp["sha256"])


def read_fingerprint(folder: str | os.PathLike[str]) -> str:
    """The stored fingerprint of a checkpoint folder, or (older folders, unreadable file) one computed now."""
    p = Path(folder) / FINGERPRINT_FILE
    try:
        value = json.loads(p.read_text(encoding="utf-8")).get("sha256")
        if isinstance(value, str) and len(value) == 64:
            return value
    except (OSError, ValueError, AttributeError):
        pass
    return str(compute_fingerprint(folder)["sha256"])


def tensors_fingerprint(named_tensors, extra: str = "") -> str:
    """sha256 over name, dtype, shape and all bytes of each tensor (sorted by name): for a model built in memory."""
    import torch

    h = hashlib.sha256(extra.encode())
    for name, t in sorted(named_tensors, key=lambda kv: kv[0]):
        t = t.detach().contiguous().cpu()
        h.update(f"{name}\0{t.dtype}\0{tuple(t.shape)}\0".encode())
        if t.numel():
            h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())  # every byte, any dtype
    return h.hexdigest()
