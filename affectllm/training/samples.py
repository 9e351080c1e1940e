"""One instruction row -> decoded media items + a chat conversation in the processor's multimodal shape.

A row's user turn holds ``<video>``/``<audio>``/``<image>`` placeholders (affectllm.instruct schema); each is
replaced by a media content part carrying an already-decoded ``MediaItem``. When ``video`` and ``audio`` name the
same file they become ONE item (frames + its audio track) at the ``<video>`` position, as at inference; a
``video`` without ``audio`` contributes frames only (and none of the cues heard in its sound). With expert cues
on, media go through ``affectllm.perception.pipeline.perceive`` and the engine's renderer
(``affectllm.engine.rendering``) makes the media items and the cue block of the first user turn, so a training
row and an inference call on the same media render the same prompt.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from affectllm.model.media_inputs import MediaItem

PLACEHOLDER_RE = re.compile(r"<(video|audio|image)>")
MEDIA_KEYS = ("video", "audio", "image")


class SampleError(ValueError):
    """A row that cannot become a training sample (bad structure, unreadable media); carries the row id."""

    def __init__(self, row_id: str, problem: str) -> None:
        self.row_id, self.problem = row_id, problem
        super().__init__(f"row {row_id}: {problem}")


@dataclass
class ItemSpec:
    """Which files one media item is made of: frames/image from ``visual``, waveform from ``audio``."""

    kind: str  # video | audio | image
    visual: str | None = None
    audio: str | None = None
    anchor: str = "video"  # the placeholder whose position the item takes


@dataclass
class DecodedItems:
    """The media of one row after decoding (or restored from the feature cache as shape-only stubs)."""

    items: list[MediaItem]
    cues: list[str] = field(default_factory=list)


def item_specs(row: dict[str, Any]) -> list[ItemSpec]:
    """The media items of a row, in the fixed order video, audio, image."""
    video, audio, image = (row.get(k) or None for k in MEDIA_KEYS)
    specs: list[ItemSpec] = []
    if video:
        same = audio is not None and Path(audio).resolve() == Path(video).resolve()
        specs.append(ItemSpec("video", visual=video, audio=audio if same else None, anchor="video"))
        if same:
            audio = None
    if audio:
        specs.append(ItemSpec("audio", audio=audio, anchor="audio"))
    if image:
        specs.append(ItemSpec("image", visual=image, anchor="image"))
    return specs


def decode_plain(spec: ItemSpec, processor) -> MediaItem:
    """Decode one item with the processor's own loaders (frames, face crops when the tower wants faces)."""
    from affectllm.model.media_inputs import to_media_item

    if spec.kind == "audio":
        return to_media_item({"type": "audio", "audio": spec.audio}, processor)
    if spec.kind == "image":
        return to_media_item({"type": "image", "image": spec.visual}, processor)
    item = to_media_item({"type": "video", "video": spec.visual}, processor)
    if spec.audio is None:
        item.audio = None  # schema: a video's sound is used only when the row names it under "audio"
    return item


def decode_with_cues(specs: list[ItemSpec], processor, experts) -> DecodedItems:
    """Decode through ``perceive`` (frames, audio, face crops); items and cue lines come from the renderer."""
    from affectllm.engine.perceiving import without_audio
    from affectllm.engine.rendering import media_item, perception_cues
    from affectllm.perception.pipeline import perceive

    vision = processor.vision or {}
    face_input = vision.get("input") == "faces"
    num_frames = int(vision.get("num_frames", 8))
    items, perceptions = [], []
    for spec in specs:
        path = spec.visual if spec.kind in ("video", "image") else spec.audio
        p = perceive(path, experts=experts, num_frames=num_frames,
                     frame_sampling=vision.get("frame_sampling", "uniform"))  # the model's frame rule
        if spec.kind == "video" and spec.audio is None:
            p = without_audio(p)  # no sound for the towers, so no transcript, voice or words heard in the cues
        item = media_item(p, face_input)  # main-face crops for a face tower (vision None: no face found)
        if item is None:
            raise ValueError(f"{path}: no decodable video, image or audio")
        items.append(item)
        perceptions.append(p)
    return DecodedItems(items, perception_cues(perceptions))


def stub_item(kind: str, has_vision: bool, has_audio: bool) -> MediaItem:
    """A shape-only MediaItem: enough for the processor to expand the right placeholders (features cached)."""
    return MediaItem(kind, vision=np.zeros((1, 2, 2, 3), np.uint8) if has_vision else None,
                     timestamps=np.zeros(1, np.float32) if has_vision else None,
                     audio=np.zeros(400, np.float32) if has_audio else None)


def build_messages(row: dict[str, Any], specs: list[ItemSpec], decoded: DecodedItems,
                   alignment: bool = False) -> list[dict[str, Any]]:
    """The row's conversation with placeholders replaced by media parts (and cues prefixed to the first user turn).

    ``alignment`` keeps only the first user turn and its answer (the description target of stage 1).
    """
    from affectllm.engine.rendering import with_cues

    rid = str(row.get("id"))
    turns = row.get("conversations") or []
    if not turns:
        raise SampleError(rid, "no conversations")
    by_anchor = {s.anchor: (s, it) for s, it in zip(specs, decoded.items)}
    merged = {"audio"} if any(s.kind == "video" and s.audio for s in specs) else set()
    messages: list[dict[str, Any]] = []
    first_user = True
    for turn in turns:
        role, text = turn.get("role"), turn.get("content")
        if role not in ("system", "user", "assistant") or not isinstance(text, str):
            raise SampleError(rid, f"malformed turn {turn!r}; a turn is {{'role': user|assistant|system, 'content': str}}")
        if role != "user":
            messages.append({"role": role, "content": text})
            continue
        parts: list[dict[str, Any]] = []
        pos = 0
        for m in PLACEHOLDER_RE.finditer(text):
            _add_text(parts, text[pos:m.start()])
            pos = m.end()
            key = m.group(1)
            if key in merged:
                continue  # the <audio> of a video+audio row: its sound already travels with the video item
            if key not in by_anchor:
                raise SampleError(rid, f"<{key}> placeholder but no '{key}' media path")
            _, item = by_anchor.pop(key)
            if item.vision is not None or item.audio is not None:  # e.g. no face found: no tokens at all
                parts.append({"type": item.kind, item.kind: item})
        _add_text(parts, text[pos:])
        if first_user and decoded.cues:
            idx = next((i for i, p in enumerate(parts) if p["type"] == "text"), None)
            if idx is None:
                parts.append({"type": "text", "text": with_cues("", decoded.cues).rstrip()})
            else:
                parts[idx] = {"type": "text", "text": with_cues(parts[idx]["text"], decoded.cues)}
        first_user = False
        messages.append({"role": "user", "content": parts})
    if by_anchor:
        raise SampleError(rid, f"media {sorted(by_anchor)} have no placeholder in a user turn")
    if alignment:
        idx = next(i for i, m in enumerate(messages) if m["role"] == "assistant") if any(
            m["role"] == "assistant" for m in messages) else None
        if idx is None:
            raise SampleError(rid, "no assistant turn to learn")
        messages = messages[: idx + 1]
    if not messages or messages[-1]["role"] != "assistant":
        raise SampleError(rid, "the conversation must end with an assistant turn (the target)")
    return messages


def _add_text(parts: list[dict[str, Any]], text: str) -> None:
    text = text.strip("\n")
    if text.strip():
        parts.append({"type": "text", "text": text})
