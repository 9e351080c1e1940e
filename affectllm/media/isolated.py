"""Trial-decode a media file in a child process, so a native crash or a stall cannot take the caller down.

``check_decodes(path, timeout_s)`` runs probe + the audio track + a few frames in a fresh Python process. A
clean MediaError in the child comes back as the same message; a child killed by a signal (a segfault inside
FFmpeg or PyAV) or one that runs past ``timeout_s`` becomes a MediaError naming the file, so the server answers
that one request with a 4xx and keeps serving. The parent then decodes the file for real, knowing it survives.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

from affectllm.media.errors import MediaError

_CHILD = "from affectllm.media.isolated import _trial; _trial()"


def check_decodes(path: str | os.PathLike[str], timeout_s: float = 30.0, num_frames: int = 8) -> None:
    """Raise MediaError when decoding ``path`` fails, crashes the decoder or takes longer than ``timeout_s``."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
    try:
        done = subprocess.run([sys.executable, "-c", _CHILD, os.fsdecode(path), str(num_frames)],
                              capture_output=True, timeout=timeout_s, env=env, stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired:
        raise MediaError(path, f"decoding took longer than {timeout_s:g} s",
                         "send a shorter or simpler file (e.g. an mp4 with H.264 video and AAC audio)") from None
    if done.returncode == 0:
        return
    if done.returncode == 3:  # the child's own MediaError, already worded
        reply = json.loads(done.stdout.decode("utf-8", "replace") or "{}")
        raise MediaError(path, reply.get("problem", "cannot be decoded"), reply.get("fix", ""))
    if done.returncode < 0:
        try:
            name = signal.Signals(-done.returncode).name
        except ValueError:
            name = f"signal {-done.returncode}"
        raise MediaError(path, f"the media decoder crashed on this file ({name})",
                         "re-export it (e.g. as mp4 with H.264 video and stereo AAC audio)")
    raise MediaError(path, f"cannot be decoded (the trial decode failed with exit status {done.returncode})",
                     "re-export it as mp4/wav")


def _trial() -> None:
    """Child process: exit 0 when the file decodes, 3 with a JSON MediaError on stdout when it does not."""
    from affectllm.media import MediaError, load_audio, load_frames, probe

    path, num_frames = Path(sys.argv[1]), int(sys.argv[2])
    try:
        info = probe(path)
        if info.has_audio:
            load_audio(path)
        if info.kind in ("video", "image"):
            load_frames(path, num_frames)
    except MediaError as err:
        sys.stdout.write(json.dumps({"problem": err.problem, "fix": err.fix}))
        sys.stdout.flush()
        os._exit(3)
