"""Perception for the engine: the model's cue experts (on the model's device) and a content-hash cache.

``PerceptionCache.perceive`` calls ``affectllm.perception.pipeline.perceive`` at most once per distinct input:
the key hashes the file's bytes (or the arrays given) together with the perception settings (frames, window,
subtitle, audio on/off, expert names), so a chat turn, a repeated server request or a second ``predict`` on
the same clip reuses the first perception. Cached ``Perception`` objects are shared: treat them as read-only.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from affectllm.perception.pipeline import Experts, Perception, _run_experts, perceive


def experts_for(model: Any) -> Experts:
    """Fresh cue experts matching ``model``: its Whisper size (none for a random test tower), its device."""
    spec = model.config.spec("whisper")
    # a converted checkpoint without a Whisper tower (AffectGPT) names its transcriber in ``asr_model``
    name = spec.model if spec is not None and spec.model else model.config.asr_model
    device = getattr(model, "device", None)
    return Experts(whisper=name, device=str(device.type) if device is not None else "cpu", faces=True)


def without_audio(p: Perception) -> Perception:
    """The same perception as if the input had no sound: no waveform, transcript, voice or words heard.

    Everything derived from the audio goes (the text cues are re-derived from the subtitle alone), so a
    prompt can never show a cue of a track the model does not get.
    """
    q = replace(p, audio=None, transcript=None, language=None, voice={}, text={}, face=dict(p.face))
    _run_experts(q, Experts(whisper=None, faces=False))  # only the text cues run: no frames work, no audio
    return q


def _update(h: Any, value: Any) -> None:
    if value is None:
        h.update(b"\0none")
    elif isinstance(value, (str, Path)) and Path(value).is_file():
        h.update(b"file:")
        with open(value, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    elif isinstance(value, dict):
        for k in sorted(value):
            h.update(f"{k}=".encode())
            _update(h, value[k])
    elif isinstance(value, (bytes, bytearray)):
        h.update(bytes(value))
    elif hasattr(value, "shape") or isinstance(value, (list, tuple)) and value and hasattr(value[0], "shape"):
        arr = np.ascontiguousarray(np.asarray(value))
        h.update(f"{arr.dtype}{arr.shape}".encode())
        h.update(arr.tobytes())
    else:
        h.update(repr(value).encode())


def content_key(settings: dict[str, Any], **inputs: Any) -> str:
    """sha256 of the inputs' content (file bytes, arrays, text) and the perception settings."""
    h = hashlib.sha256()
    for name in sorted(inputs):
        h.update(f"|{name}:".encode())
        value = inputs[name]
        if hasattr(value, "convert"):  # PIL image
            value = np.asarray(value.convert("RGB"))
        _update(h, value)
    _update(h, settings)
    return h.hexdigest()


class PerceptionCache:
    """Perceive inputs with one set of experts; remember the last ``size`` perceptions by content hash."""

    def __init__(self, experts: Experts, num_frames: int = 8, size: int = 8, frame_sampling: str = "uniform") -> None:
        self.experts = experts
        self.num_frames = int(num_frames)
        self.frame_sampling = frame_sampling  # the vision tower's rule (VisionTowerSpec.frame_sampling)
        self.size = int(size)
        self.calls = 0  # perceptions actually computed (cache misses)
        self._items: OrderedDict[str, Perception] = OrderedDict()
        self._lock = threading.Lock()

    def settings(self) -> dict[str, Any]:
        return {"num_frames": self.num_frames, "frame_sampling": self.frame_sampling,
                "whisper": self.experts.whisper_name, "faces": self.experts.faces}

    def perceive(self, source: str | Path | None = None, *, video: Any = None, audio: Any = None, image: Any = None,
                 subtitle: str | None = None, start: float | None = None, end: float | None = None,
                 use_audio: bool = True, cache: bool = True) -> Perception:
        """``pipeline.perceive`` with a content-hash cache; ``use_audio=False`` drops the sound and its cues.

        ``cache=False`` skips hashing and storing (one-pass work such as captioning a corpus)."""
        inputs = {"source": source, "video": video, "audio": audio, "image": image}
        use_cache = cache and self.size > 0
        key = content_key({**self.settings(), "subtitle": subtitle, "start": start, "end": end,
                           "use_audio": use_audio}, **inputs) if use_cache else ""
        with self._lock:
            if key and key in self._items:
                self._items.move_to_end(key)
                return self._items[key]
        p = perceive(source, video=video, audio=audio, image=image, subtitle=subtitle, experts=self.experts,
                     num_frames=self.num_frames, start=start, end=end, frame_sampling=self.frame_sampling)
        if not use_audio:
            p = without_audio(p)
        with self._lock:
            self.calls += 1
            if key:
                self._items[key] = p
                while len(self._items) > self.size:
                    self._items.popitem(last=False)
        return p

    def clear(self) -> None:
        with self._lock:
            self._items.clear()
