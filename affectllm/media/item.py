"""One decoded media part as every path hands it on, and the loaders that turn a part's value into arrays.

A ``MediaItem`` is one video, image or audio part of a message after decoding: frames (or main-face crops)
with timestamps for the vision tower, a 16 kHz mono waveform for the audio and Whisper towers. It lives here,
below perception and the model, because both make and read it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

SAMPLE_RATE = 16000


@dataclass
class MediaItem:
    kind: str  # "video" | "image" | "audio"
    vision: np.ndarray | None = None  # [T, H, W, 3] uint8 RGB (frames or face crops)
    timestamps: np.ndarray | None = None  # [T] seconds
    audio: np.ndarray | None = None  # [S] float32, 16 kHz mono
    source: str | None = None
    info: dict[str, Any] = field(default_factory=dict)  # e.g. face frames found, duration


def _name(value: Any) -> str | None:
    return str(value) if isinstance(value, (str, Path)) else None


def _load_audio(value: Any) -> np.ndarray:
    if isinstance(value, (str, Path)):
        from affectllm.media import load_audio

        return load_audio(value, sr=SAMPLE_RATE)
    if isinstance(value, torch.Tensor):
        value = value.cpu().numpy()
    return np.asarray(value, dtype=np.float32).reshape(-1)


def _load_image(value: Any) -> np.ndarray:
    if isinstance(value, (str, Path)):
        from affectllm.media import load_image

        return load_image(value)
    if hasattr(value, "convert"):  # PIL
        return np.asarray(value.convert("RGB"))
    arr = np.asarray(value)
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=-1)
    return arr.astype(np.uint8)


def face_item(item: MediaItem, crops: Any, times: Any) -> MediaItem:
    """``item`` with its frames replaced by main-face crops ``[T', 48, 48, 3]`` (None: no face, no vision tokens)."""
    if crops is None or len(crops) == 0:
        return MediaItem(item.kind, vision=None, timestamps=None, audio=item.audio, source=item.source,
                         info=dict(item.info))
    return MediaItem(item.kind, vision=crops, timestamps=times, audio=item.audio, source=item.source,
                     info=dict(item.info))
