"""Talking to AffectLLM about a clip: a multi-turn session with media attached mid-conversation, streamed.

``ChatSession`` keeps an ``affectllm.engine.Conversation``: each attached clip is perceived once (the engine's
cache) and stays in the user turn it was asked about, with its expert cues, exactly as the engine's renderer
writes a captioning prompt; later turns are text. Answers come from the engine's decoder (greedy, streamed
piece by piece to a callback), plus a JSON-ready log for ``/save``.

``run_repl`` is the command loop of ``affectllm chat``: on a terminal it prompts and streams; otherwise each
input line is one user turn and each whole answer is written to stdout (then a newline), so it can be scripted;
notes and errors go to stderr. Commands: ``/attach PATH``,
``/reset``, ``/save FILE``, ``/help``, ``/quit``.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Callable
from pathlib import Path
from typing import Any, TextIO

from affectllm.model.limits import MAX_NEW_TOKENS

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

    def __init__(self, model: Any, processor: Any, experts: Any = None, max_new_tokens: int = MAX_NEW_TOKENS) -> None:
        from affectllm.engine import Conversation, Engine

        self.model, self.processor = model, processor
        self.engine = Engine.for_model(model, processor, experts=experts)
        self.experts = self.engine.experts
        self.max_new_tokens = int(max_new_tokens)
        self.conversation = Conversation()
        self.turns: list[dict[str, Any]] = []  # the JSON log: text, media paths, cues
        self.pending: list[Any] = []  # Perceptions attached since the last question

    def attach(self, path: str | Path) -> Any:
        """Decode and perceive ``path`` now (MediaError names the problem); it joins the next question."""
        perception = self.engine.perceive(str(path))
        self.pending.append(perception)
        return perception

    def reset(self) -> None:
        self.conversation.turns.clear()
        self.turns.clear()
        self.pending.clear()

    @property
    def messages(self) -> list[dict[str, Any]]:
        """What the processor renders for the conversation so far."""
        return self.engine.renderer.messages(self.conversation)

    def ask(self, text: str, on_token: Callable[[str], None] | None = None) -> str:
        """Add a user turn (with the pending media), generate the answer (streamed to ``on_token``), add it."""
        from affectllm.engine.rendering import perception_cues

        media = [{"path": p.source, "kind": p.kind, "duration": round(float(p.duration), 3)} for p in self.pending]
        cues = perception_cues(self.pending) if self.engine.renderer.use_cues else []
        turn = self.conversation.add("user", text.strip(), self.pending)
        try:
            decoded = self.engine.reply(self.conversation, on_text=on_token, max_new_tokens=self.max_new_tokens)
        except BaseException:
            self.conversation.turns.remove(turn)  # a failed turn leaves the conversation as it was
            raise
        answer = decoded.text.strip()
        self.conversation.add("assistant", answer)
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
