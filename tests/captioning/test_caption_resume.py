"""A caption run killed with SIGKILL and restarted with --resume ends with every id exactly once."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter

import pytest
from caption_media import small_audio_folder
from typer.testing import CliRunner


def _ids(path):
    lines = path.read_bytes().split(b"\n")
    return [json.loads(x)["id"] for x in lines if x.strip() and x.endswith(b"}")]


@pytest.mark.slow
def test_killed_run_resumes_to_every_id_exactly_once(tmp_path, cli_app, tiny_checkpoint):
    folder = tmp_path / "clips"
    small_audio_folder(folder, 10, seconds=0.4)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    out = tmp_path / "caps.jsonl"
    cmd = [sys.executable, "-m", "affectllm", "caption", str(folder), "--out", str(out), "--model",
           str(tiny_checkpoint), "--max-new-tokens", "2", "--no-progress"]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.time() + 240
    try:
        while time.time() < deadline and proc.poll() is None:
            if out.exists() and len(_ids(out)) >= 3:
                break
            time.sleep(0.05)
        assert proc.poll() is None, f"finished before it could be killed: {proc.stderr.read().decode()[-2000:]}"
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
    finally:
        if proc.poll() is None:
            proc.kill()
    done_before = _ids(out)
    assert 3 <= len(done_before) < 11
    with out.open("ab") as f:  # as if killed in the middle of a write
        f.write(b'{"id": "clip_09.wav", "status": "o')
    result = CliRunner().invoke(cli_app, ["caption", str(folder), "--out", str(out), "--model",
                                          str(tiny_checkpoint), "--max-new-tokens", "2", "--resume"])
    ids = _ids(out)
    counts = Counter(ids)
    assert sorted(counts) == sorted([f"clip_{i:02d}.wav" for i in range(10)] + ["corrupt.wav"])
    assert set(counts.values()) == {1}, counts
    assert ids[: len(done_before)] == done_before  # earlier records untouched
    assert f"{len(done_before)} skipped" in result.stderr
    assert result.exit_code == 1  # corrupt.wav failed (in the first run or this one)
    assert all(line.endswith("}") for line in out.read_text().splitlines())
