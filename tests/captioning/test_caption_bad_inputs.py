"""Bad input: every input gets one record, errors name the file and the problem, the run goes on, exit code 1."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
from caption_media import RAVDESS_MP4, write_video, write_wav
from typer.testing import CliRunner

# decoding bugs must fail the test, not hang CI
pytestmark = pytest.mark.timeout(900)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory, shared):
    """name -> path of generated bad/odd inputs, and the mixed folder."""
    from PIL import Image

    d = tmp_path_factory.mktemp("bad")
    rav = (shared / RAVDESS_MP4).read_bytes()
    files = {}
    (d / "empty.mp4").write_bytes(b"")
    files["empty"] = d / "empty.mp4"
    (d / "truncated.mp4").write_bytes(rav[: int(len(rav) * 0.3)])
    files["truncated"] = d / "truncated.mp4"
    (d / "random.mp4").write_bytes(np.random.default_rng(1).integers(0, 256, 50_000, dtype=np.uint8).tobytes())
    files["random"] = d / "random.mp4"
    files["wav_named_mp4"] = write_wav(d / "really_a_wav.mp4", 1.0)
    files["no_audio"] = write_video(d / "no_audio.mp4", 96, 64, 8)
    files["audio_only"] = shared / "media/ravdess/01-01-05-01-01-01-01_audio.wav"
    Image.fromarray(np.full((120, 160, 3), 200, np.uint8)).save(d / "no_face.png")
    files["no_face"] = d / "no_face.png"
    files["silence"] = write_wav(d / "silence.wav", 2.0, amp=0.0)
    files["short"] = write_video(d / "short.mp4", 64, 64, 2, fps=10, tone=True, seconds_audio=0.2)
    files["frame_8k"] = write_video(d / "frame_8k.mp4", 7680, 4320, 1)
    files["missing"] = d / "does_not_exist.mp4"
    mixed = d / "mixed"
    mixed.mkdir()
    shutil.copy(files["random"], mixed / "corrupt.mp4")
    shutil.copy(files["silence"], mixed / "quiet.wav")
    (mixed / "notes.txt").write_text("not media")
    return files, mixed


MUST_FAIL = {"empty", "random", "missing"}
MUST_SUCCEED = {"wav_named_mp4", "no_audio", "audio_only", "no_face", "silence", "short", "frame_8k"}


def test_each_bad_input_gets_one_record_and_the_run_exits_1(corpus, cli_app, tmp_path, tiny_checkpoint):
    files, mixed = corpus
    out = tmp_path / "caps.jsonl"
    args = ["caption", *[str(p) for p in files.values()], str(mixed), "--out", str(out), "--model", str(tiny_checkpoint),
            "--max-new-tokens", "2"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 1, result.output
    recs = {r["id"]: r for r in map(json.loads, out.read_text().splitlines())}
    assert len(recs) == len(files) + 2  # each file once + corrupt.mp4 and quiet.wav (notes.txt is not media)
    by_name = {name: recs[path.name] for name, path in files.items()}
    for name, rec in by_name.items():
        if rec["status"] == "error":
            assert rec["error"].startswith(str(files[name])), (name, rec["error"])  # names the file
            assert ";" in rec["error"]  # problem; fix
            assert rec["labels"] == [] and rec["model"]["name"] == str(tiny_checkpoint)
    assert {n for n, r in by_name.items() if r["status"] == "error"} >= MUST_FAIL
    assert {n for n, r in by_name.items() if r["status"] == "ok"} >= MUST_SUCCEED
    assert "empty (0 bytes)" in by_name["empty"]["error"]
    assert "no such file" in by_name["missing"]["error"]
    assert recs["corrupt.mp4"]["status"] == "error" and recs["quiet.wav"]["status"] == "ok"
    # "nothing found" is evidence, not an error
    assert by_name["no_face"]["evidence"]["face"]["frames_with_face"] == 0
    assert by_name["no_audio"]["evidence"]["voice"] == {}
    assert by_name["frame_8k"]["evidence"]["face"]["frames"] >= 1
    assert by_name["audio_only"]["evidence"]["face"] == {}
    assert "ok" in result.stderr and "failed" in result.stderr  # the summary line
