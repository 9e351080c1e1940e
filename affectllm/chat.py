"""Talking to AffectLLM about a clip: a multi-turn session with media attached mid-conversation, streamed.

``ChatSession`` keeps the conversation in the processor's message shape (media parts are decoded
``MediaItem``s, so the model sees every attached clip on every turn) plus a JSON-ready log for ``/save``.
The first user turn after an ``attach`` carries the media and the expert cues (transcript, face expression,
prosody) exactly as ``affectllm.api.build_messages`` writes them for captioning. Answers are greedy and
streamed token by token (``TextIteratorStreamer``, generation in a worker thread).

``run_repl`` is the command loop of ``affectllm chat``: on a terminal it prompts and streams; otherwise each
input line is one user turn and each whole answer is written to stdout (then a newline), so it can be scripted;
notes and errors go to stderr. Commands: ``/attach PATH``,
``/reset``, ``/save FILE``, ``/help``, ``/quit``.
"""

from __future__ import annotations

import json
import shlex
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

CHAT_FORMAT = "affectllm-chat/1"
COMMANDS_HELP = """Commands:
  /attach PATH   add a video, audio or image; the next question is about it (cues included)
  /reset         forget the conversation and the attachments
  /save FILE     write the conversation as JSON
  /help          this list
  /quit          leave (also Ctrl-D)
Anything else is a question to the model."""


class ChatSession:
    """One conversation with a loaded model (``model, processor`` from ``affectllm.load``)."""

    def __init__(self, model: Any, processor: Any, experts: Any = None, max_new_tokens: int = 256) -> None:
        from affectllm.api import experts_for

        self.model, self.processor = model, processor
        self.experts = experts if experts is not None else experts_for(model)
        self.max_new_tokens = int(max_new_tokens)
        self.messages: list[dict[str, Any]] = []  # what the processor renders: user/assistant turns
        self.turns: list[dict[str, Any]] = []  # the JSON log: text, media paths, cues
        self.pending: list[Any] = []  # Perceptions attached since the last question

    def attach(self, path: str | Path) -> Any:
        """Decode and perceive ``path`` now (MediaError names the problem); it joins the next question."""
        from affectllm.perception.pipeline import perceive

        num_frames = int((self.processor.vision or {}).get("num_frames", 8))
        perception = perceive(str(path), experts=self.experts, num_frames=num_frames)
        self.pending.append(perception)
        return perception

    def reset(self) -> None:
        self.messages.clear()
        self.turns.clear()
        self.pending.clear()

    def user_content(self, text: str) -> tuple[list[dict[str, Any]], list[str]]:
        """The content parts of a user turn (pending media first, then cues + question) and its cue lines."""
        from affectllm.api import build_messages
        from affectllm.defaults import DEFAULT_PROMPT
        from affectllm.perception.pipeline import cue_lines

        face_input = (self.processor.vision or {}).get("input") == "faces"
        content: list[dict[str, Any]] = []
        cues: list[str] = []
        for p in self.pending:
            parts = build_messages(p, prompt=None, use_cues=False, face_input=face_input)[0]["content"]
            content.extend(x for x in parts if x["type"] != "text")
            lines = cue_lines(p)
            if len(self.pending) > 1:
                lines = [f"{Path(p.source or 'media').name}: {x}" for x in lines]
            cues.extend(lines)
        question = text.strip() or DEFAULT_PROMPT
        if cues and self.model.config.use_cues:
            question = "Observed cues:\n" + "\n".join(f"- {x}" for x in cues) + "\n\n" + question
        content.append({"type": "text", "text": question})
        return content, cues

    def ask(self, text: str, on_token: Callable[[str], None] | None = None) -> str:
        """Add a user turn, generate the answer (streamed to ``on_token``), add it, and return it."""
        content, cues = self.user_content(text)
        media = [{"path": p.source, "kind": p.kind, "duration": round(float(p.duration), 3)} for p in self.pending]
        messages = [*self.messages, {"role": "user", "content": content}]
        answer = generate_streamed(self.model, self.processor, messages, self.max_new_tokens, on_token)
        self.messages = [*messages, {"role": "assistant", "content": answer}]
        self.turns.append({"role": "user", "text": text, "media": media, "cues": cues})
        self.turns.append({"role": "assistant", "text": answer})
        self.pending = []
        return answer

    def to_dict(self) -> dict[str, Any]:
        from affectllm.captioning.records import model_info

        pending = [{"path": p.source, "kind": p.kind} for p in self.pending]
        return {"format": CHAT_FORMAT, "model": model_info(self.model), "turns": list(self.turns),
                "pending_media": pending}

    def save(self, path: str | Path) -> Path:
        out = Path(path).expanduser()
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(self.to_dict(), ensure_ascii=False, indent=2) + "\n", encoding="utf-8")
        return out


def generate_streamed(model: Any, processor: Any, messages: list[dict[str, Any]], max_new_tokens: int,
                      on_token: Callable[[str], None] | None = None) -> str:
    """Greedy answer to ``messages`` with text pieces passed to ``on_token`` as they are decoded."""
    import torch
    from transformers import TextIteratorStreamer

    batch = processor([messages], add_generation_prompt=True)
    batch = {k: v.to(model.device) if hasattr(v, "to") else v for k, v in batch.items()}
    if "pixel_values" in batch:
        batch["pixel_values"] = batch["pixel_values"].to(model.dtype)
    streamer = TextIteratorStreamer(processor.tokenizer, skip_prompt=True, skip_special_tokens=True)
    failure: list[BaseException] = []

    def work() -> None:
        try:
            with torch.no_grad():
                model.generate(**batch, max_new_tokens=max_new_tokens, do_sample=False, streamer=streamer)
        except BaseException as e:  # noqa: BLE001 - re-raised in the caller's thread
            failure.append(e)
            streamer.end()  # unblock the reader

    thread = threading.Thread(target=work, daemon=True)
    thread.start()
    pieces = []
    for piece in streamer:
        pieces.append(piece)
        if on_token is not None and piece:
            on_token(piece)
    thread.join()
    if failure:
        raise failure[0]
    return "".join(pieces).strip()


def run_repl(session: ChatSession, stdin: TextIO, stdout: TextIO, stderr: TextIO, interactive: bool,
             media: list[str] | None = None) -> int:
    """The ``affectllm chat`` loop; returns the number of failed commands (the exit status uses it)."""
    failures = 0

    def note(msg: str) -> None:
        stderr.write(msg + "\n")
        stderr.flush()

    def attach(path: str) -> bool:
        from affectllm.captioning.captioner import describe_failure

        try:
            p = session.attach(path)
        except Exception as e:  # noqa: BLE001 - a bad file is reported; the conversation goes on
            note(f"error: {describe_failure(path, e)}")
            return False
        face = p.face.get("frames_with_face")
        note(f"attached {path} ({p.kind}, {p.duration:.1f} s"
             + (f", face in {face}/{p.face.get('frames')} frames" if face is not None else "")
             + (f', heard "{p.transcript}"' if p.transcript else "") + ")")
        return True

    for path in media or []:
        failures += not attach(path)
    if interactive:
        note("AffectLLM chat. Ask about the attached media; /help lists commands.")
    while True:
        if interactive:
            stdout.write("you> ")
            stdout.flush()
        line = stdin.readline()
        if not line:
            break
        line = line.strip()
        if not line:
            continue
        if line.startswith("/"):
            cmd, _, arg = line.partition(" ")
            arg = _unquote(arg.strip())
            if cmd in ("/quit", "/exit", "/q"):
                break
            if cmd == "/help":
                note(COMMANDS_HELP)
            elif cmd == "/reset":
                session.reset()
                note("conversation reset")
            elif cmd == "/attach" and arg:
                failures += not attach(arg)
            elif cmd == "/save" and arg:
                try:
                    note(f"saved {session.save(arg)}")
                except OSError as e:
                    note(f"error: {arg}: cannot write the conversation ({e.strerror or e}); choose another path")
                    failures += 1
            else:
                note(f"unknown or incomplete command {line!r}\n{COMMANDS_HELP}")
                failures += 1
            continue
        if interactive:
            stdout.write("affectllm> ")

        def emit(piece: str) -> None:
            stdout.write(piece)
            stdout.flush()

        try:  # a terminal sees tokens as they come; a pipe gets each whole answer, stripped, once
            answer = session.ask(line, on_token=emit if interactive else None)
        except Exception as e:  # noqa: BLE001 - the session survives a failed generation
            note(f"error: generation failed ({type(e).__name__}: {e}); /reset and try a shorter question")
            failures += 1
            answer = ""
        stdout.write("\n" if interactive else answer + "\n")
        stdout.flush()
    return failures


def _unquote(arg: str) -> str:
    """``/attach "my clip.mp4"`` and ``/attach my clip.mp4`` both name ``my clip.mp4``."""
    if arg[:1] in ("'", '"'):
        try:
            parts = shlex.split(arg)
        except ValueError:
            return arg
        return parts[0] if len(parts) == 1 else arg
    return arg
