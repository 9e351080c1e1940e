"""Media parts as the processor sees them, and their batching into tower input tensors.

``to_media_item`` decodes one content part into a ``MediaItem`` (``affectllm.media.item``): frames (or main-face
crops) with timestamps for the vision tower, a 16 kHz mono waveform for the audio and Whisper towers.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from affectllm.media.item import SAMPLE_RATE, MediaItem, _load_audio, _load_image, _name, face_item  # noqa: F401
from affectllm.media.sampling import load_video_frames, select_frames  # noqa: F401


def to_media_item(part: dict[str, Any], processor) -> MediaItem:
    """One content part ({"type": "video"|"image"|"audio", ...}) -> a decoded MediaItem."""
    kind = part.get("type")
    if kind not in ("video", "image", "audio"):
        raise ValueError(f"content part type {kind!r} unknown; use text, video, image or audio")
    value = part.get(kind, part.get("path", part.get("url")))
    if isinstance(value, MediaItem):
        return value
    vision_cfg = processor.vision or {}
    if kind == "audio":
        audio = _load_audio(value)
        return MediaItem("audio", audio=audio, source=_name(value))
    if kind == "image":
        frames = _load_image(value)[None]  # [1, H, W, 3]
        item = MediaItem("image", vision=frames, timestamps=np.zeros(1, np.float32), source=_name(value))
    else:
        if isinstance(value, dict):
            frames, ts, audio = value["frames"], value.get("timestamps"), value.get("audio")
            ts = np.arange(len(frames), dtype=np.float32) if ts is None else np.asarray(ts, np.float32)
        else:
            from affectllm.media import MediaError, load_audio

            frames, ts = load_video_frames(value, vision_cfg)
            try:
                audio = load_audio(value)
            except MediaError:
                audio = None  # a silent video: the audio towers simply get no tokens
        frames, ts = select_frames(frames, ts, vision_cfg)
        item = MediaItem("video", vision=np.asarray(frames), timestamps=np.asarray(ts, np.float32),
                         audio=None if audio is None else np.asarray(audio, np.float32).reshape(-1),
                         source=_name(value))
    if vision_cfg.get("input") == "faces":
        _to_face_crops(item)
    return item


def _to_face_crops(item: MediaItem) -> None:
    """Replace frames by main-face crops (the expression net's own crop recipe); no face found -> no vision
    tokens (the caller records that as evidence, it is not an error)."""
    from affectllm.media import Frames
    from affectllm.perception.expression import ExpressionExpert
    from affectllm.perception.faces import track_main_face

    frames = Frames(images=item.vision, timestamps=item.timestamps)
    crops, kept = ExpressionExpert.crops(frames, track_main_face(frames))  # [T', 48, 48, 3]
    item.info["face_frames"] = int(len(crops))
    item.info["frames"] = int(len(item.vision))
    swapped = face_item(item, crops, np.asarray(item.timestamps)[np.asarray(kept, dtype=int)])
    item.vision, item.timestamps = swapped.vision, swapped.timestamps


def preprocess_frames(frames: np.ndarray, cfg: dict[str, Any]) -> torch.Tensor:
    """[T, H, W, 3] uint8 -> [T, C, S, S] float: resize shorter side, centre crop, (grey,) normalise."""
    import torchvision.transforms.v2.functional as F

    size = int(cfg.get("image_size", 224))
    x = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)  # [T, 3, H, W] uint8
    if cfg.get("resize") == "squash":  # both sides to `size`, aspect ratio not kept (AffectGPT)
        x = F.resize(x, [size, size], interpolation=F.InterpolationMode.BICUBIC, antialias=True)
    else:
        x = F.resize(x, size, antialias=True)
        x = F.center_crop(x, [size, size])
    x = x.float() / 255.0
    if cfg.get("grayscale"):
        x = (0.299 * x[:, 0] + 0.587 * x[:, 1] + 0.114 * x[:, 2]).unsqueeze(1)  # [T, 1, S, S]
    c = x.shape[1]
    mean = torch.tensor(cfg.get("mean", [0.5] * c), dtype=torch.float32)[:c].view(1, c, 1, 1)
    std = torch.tensor(cfg.get("std", [0.5] * c), dtype=torch.float32)[:c].view(1, c, 1, 1)
    return (x - mean) / std


def prepare_vision_batch(items: list[MediaItem], cfg: dict[str, Any]) -> dict[str, torch.Tensor]:
    """-> pixel_values [N, T, C, S, S], pixel_mask [N, T], video_timestamps [N, T] (padded to the longest T)."""
    if not items:
        return {}
    tensors = [preprocess_frames(it.vision, cfg) for it in items]
    t_max = max(t.shape[0] for t in tensors)
    pv = torch.zeros(len(items), t_max, *tensors[0].shape[1:])
    mask = torch.zeros(len(items), t_max, dtype=torch.bool)
    ts = torch.zeros(len(items), t_max)
    for i, (t, it) in enumerate(zip(tensors, items)):
        pv[i, : t.shape[0]] = t
        mask[i, : t.shape[0]] = True
        ts[i, : t.shape[0]] = torch.as_tensor(it.timestamps, dtype=torch.float32)
    return {"pixel_values": pv, "pixel_mask": mask, "video_timestamps": ts}


def prepare_audio_batch(items: list[MediaItem], max_samples: int) -> dict[str, torch.Tensor]:
    """-> input_values [N, S] float32 16 kHz (right-padded) and input_values_mask [N, S] bool."""
    if not items:
        return {}
    waves = [np.asarray(it.audio, np.float32)[:max_samples] for it in items]
    n = max(max(len(w) for w in waves), 1)
    iv = torch.zeros(len(waves), n)
    mask = torch.zeros(len(waves), n, dtype=torch.bool)
    for i, w in enumerate(waves):
        iv[i, : len(w)] = torch.from_numpy(w)
        mask[i, : len(w)] = True
    return {"input_values": iv, "input_values_mask": mask}
