"""The one prompt renderer: perceptions + question -> the user turn the model reads, for training and inference.

A user turn that carries media holds, in order: one media part per perception (the processor expands it into
placeholder tokens; a face-input tower gets the main-face crops instead of the frames), then one text part:
the ``CUE_HEADER`` block (the experts' ``cue_lines``, prefixed by the file name when a turn carries several
inputs) followed by the question. Everything is derived from the ``Perception``: a cue can only appear when
the perception holds the measurement, so a training row and an inference call on the same media render the
same text. ``Conversation`` is the one multi-turn layout (chat, serve, web): media stay in the user turn where
they were given.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from affectllm.media.item import MediaItem, face_item
from affectllm.model.defaults import CUE_HEADER
from affectllm.perception.pipeline import Perception, cue_lines


def with_cues(text: str, lines: list[str]) -> str:
    """``text`` preceded by the cue block (unchanged when there are no cue lines)."""
    if not lines:
        return text
    return CUE_HEADER + "\n" + "\n".join(f"- {x}" for x in lines) + "\n\n" + text


def media_item(p: Perception, face_input: bool) -> MediaItem | None:
    """The processor's MediaItem for a perception (face crops for a face-input tower); None for text only."""
    item = p.media_item()
    if item is None:
        return None
    if face_input and item.vision is not None:
        item = face_item(item, p.face_crops, p.face_times)
    return item


def media_part(p: Perception, face_input: bool) -> dict[str, Any] | None:
    """A content part for the perception's media; None when it gives the towers nothing (e.g. no face found)."""
    item = media_item(p, face_input)
    if item is None or (item.vision is None and item.audio is None):
        return None
    return {"type": item.kind, item.kind: item}


def perception_cues(perceptions: list[Perception]) -> list[str]:
    """The cue lines of the inputs of one turn (each line prefixed by its file name when there are several)."""
    lines: list[str] = []
    for p in perceptions:
        found = cue_lines(p)
        if len(perceptions) > 1:
            found = [f"{Path(p.source or 'media').name}: {x}" for x in found]
        lines.extend(found)
    return lines


@dataclass
class Renderer:
    """How one model reads its prompts: face crops or frames, cue lines or not, the default question."""

    face_input: bool = False
    use_cues: bool = True
    default_prompt: str | None = None
    style: str | None = None  # "affectgpt": a converted AffectGPT checkpoint's own user text (no cue block)

    @classmethod
    def for_model(cls, model: Any, processor: Any) -> Renderer:
        from affectllm.model.defaults import DEFAULT_PROMPT

        return cls(face_input=(processor.vision or {}).get("input") == "faces",
                   use_cues=bool(model.config.use_cues), default_prompt=DEFAULT_PROMPT,
                   style=model.config.prompt_style)

    def question(self, text: str | None) -> str:
        text = (text or "").strip()
        return text or self.default_prompt or ""

    def user_content(self, perceptions: list[Perception], text: str | None) -> list[dict[str, Any]]:
        """The content parts of one user turn: media parts, then cue block + question."""
        parts = [part for p in perceptions if (part := media_part(p, self.face_input)) is not None]
        if self.style == "affectgpt":  # its subtitle sentence (the given subtitle, else the ASR) + the question
            from affectllm.model.affectgpt import DESCRIBE, user_text

            said = next((p.subtitle or p.transcript for p in perceptions if p.subtitle or p.transcript), None)
            parts.append({"type": "text", "text": user_text((text or "").strip() or DESCRIBE, said)})
            return parts
        cues = perception_cues(perceptions) if self.use_cues else []
        parts.append({"type": "text", "text": with_cues(self.question(text), cues)})
        return parts

    def single_turn(self, perception: Perception, prompt: str | None) -> list[dict[str, Any]]:
        """The conversation ``predict`` and ``caption`` send: one user turn about one input."""
        return [{"role": "user", "content": self.user_content([perception], prompt)}]

    def messages(self, conversation: Conversation) -> list[dict[str, Any]]:
        """The processor's messages for a conversation; media stay in the user turn that carried them."""
        out: list[dict[str, Any]] = []
        for turn in conversation.turns:
            if turn.role == "user":
                out.append({"role": "user", "content": self.user_content(turn.media, turn.text)})
            else:
                out.append({"role": turn.role, "content": turn.text})
        return out


@dataclass
class Turn:
    role: str  # system | user | assistant
    text: str
    media: list[Perception] = field(default_factory=list)  # perceived once, when the turn was added


@dataclass
class Conversation:
    """A multi-turn conversation: text turns, and the perceptions of media in the user turn that carried them."""

    turns: list[Turn] = field(default_factory=list)

    def add(self, role: str, text: str, media: list[Perception] | None = None) -> Turn:
        if media and role != "user":
            raise ValueError(f"a {role} turn cannot carry media; attach media to a user turn")
        turn = Turn(role, text, list(media or []))
        self.turns.append(turn)
        return turn

    @property
    def last_user(self) -> Turn | None:
        """The latest user turn (the question being answered: the default question when its text is empty)."""
        return next((t for t in reversed(self.turns) if t.role == "user"), None)

    @classmethod
    def from_messages(cls, messages: list[dict[str, str]], media: dict[int, list[Perception]] | None = None
                      ) -> Conversation:
        """Text turns ``[{"role", "content": str}]`` with the perceptions of ``media[i]`` in turn ``i``."""
        conv = cls()
        for i, msg in enumerate(messages):
            conv.add(msg["role"], msg.get("content") or "", (media or {}).get(i))
        return conv
