"""Which frames of a video the vision tower sees: the one frame rule for the processor, the engine and training.

``frame_sampling="affectgpt"`` is AffectGPT's ``load_video`` rule (decode every frame, keep
``arange(0, n, n/T)``); anything else samples ``num_frames`` evenly in the decoder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

NUM_FRAMES = 8


def frame_indices(n: int, num_frames: int = NUM_FRAMES) -> np.ndarray:
    """Their uniform sampling: ``arange(0, n, n / min(T, n)).astype(int)``, padded with the last index to T."""
    if n <= 0:
        raise ValueError("no frames decoded")
    idx = np.arange(0, n, n / min(num_frames, n)).astype(int).tolist()
    while len(idx) < num_frames:
        idx.append(idx[-1])
    return np.asarray(idx[:num_frames])


def load_video_frames(path: str | Path, vision_cfg: dict[str, Any] | None, start: float | None = None,
                      end: float | None = None, max_side: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """A video file's frames as the vision tower samples them (the processor's and the engine's one path).

    ``frame_sampling="uniform"``: ``num_frames`` bin-centre times, pictures capped at ``max_side``;
    ``"affectgpt"``: every frame decoded (capped at 448 px), to be picked by ``select_frames``' indices.
    -> frames [T, H, W, 3] uint8, timestamps [T] seconds."""
    from affectllm.media import load_frames

    cfg = vision_cfg or {}
    if cfg.get("frame_sampling") == "affectgpt":
        fr = load_frames(path, num_frames=None, start=start, end=end, max_side=448)
    else:
        fr = load_frames(path, num_frames=int(cfg.get("num_frames", 8)), start=start, end=end, max_side=max_side)
    return fr.images, fr.timestamps


def select_frames(frames: np.ndarray, ts: np.ndarray, vision_cfg: dict[str, Any] | None):
    """``frame_sampling="affectgpt"``: keep frames ``arange(0, n, n/T).astype(int)`` of the n given (their
    ``load_video``); otherwise the frames as given. -> frames [T, H, W, 3], timestamps [T]."""
    cfg = vision_cfg or {}
    if cfg.get("frame_sampling") != "affectgpt":
        return frames, ts
    idx = frame_indices(len(frames), int(cfg.get("num_frames", 8)))
    return np.asarray(frames)[idx], np.asarray(ts)[idx]
