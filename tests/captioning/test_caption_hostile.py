"""Issue 12: inputs that once ended a whole batch. Each becomes exactly one record, the run exits 1, --resume
recognises every record (the non-UTF-8 name included), and a pickled-only model folder is refused with exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from caption_media import write_wav
from typer.testing import CliRunner

pytestmark = pytest.mark.timeout(600)

LATIN1_NAME = b"b_caf\xe9.wav"  # not valid UTF-8: Python holds it as 'b_caf\udce9.wav'


@pytest.fixture()
def corpus(tmp_path: Path) -> dict[str, Path]:
    from affectllm.testing_inputs import write_surround_clip

    folder = tmp_path / "folder"
    folder.mkdir()
    write_wav(folder / "a.wav", 1.0)
    latin1 = Path(os.fsdecode(os.fsencode(folder) + b"/" + LATIN1_NAME))
    os.rename(write_wav(tmp_path / "latin1.wav", 1.0), latin1)
    (tmp_path / "some_dir.mp4").mkdir()  # a folder with a media extension and nothing inside
    (tmp_path / "loop.mp4").symlink_to("loop.mp4")
    return {"folder": folder, "latin1": latin1, "surround": write_surround_clip(tmp_path / "surround.mp4"),
            "some_dir": tmp_path / "some_dir.mp4", "loop": tmp_path / "loop.mp4"}


def _records(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_every_hostile_input_is_one_record_and_resume_skips_them_all(corpus, cli_app, tmp_path, tiny_checkpoint):
    from affectllm.captioning.records import ESCAPED_BYTES, unescape_name

    out = tmp_path / "caps.jsonl"
    args = ["caption", str(corpus["folder"]), str(corpus["some_dir"]), str(corpus["loop"]), str(corpus["surround"]),
            "--out", str(out), "--model", str(tiny_checkpoint), "--max-new-tokens", "2", "--no-progress"]
    result = CliRunner().invoke(cli_app, args)
    assert result.exit_code == 1, result.output
    recs = {r["id"]: r for r in _records(out)}
    assert sorted(recs) == ["a.wav", "b_caf\\xe9.wav", "loop.mp4", "some_dir.mp4", "surround.mp4"]

    latin1 = recs["b_caf\\xe9.wav"]
    assert latin1["status"] == "ok" and latin1["name_encoding"] == ESCAPED_BYTES, latin1.get("error")
    assert unescape_name(latin1["source"]) == str(corpus["latin1"])  # lossless: the original bytes come back
    assert recs["a.wav"]["name_encoding"] is None

    assert recs["surround.mp4"]["status"] == "ok"  # 7.1 AAC: decoded (it used to segfault the process)
    assert recs["surround.mp4"]["evidence"]["voice"]["duration_s"] == pytest.approx(3.0, abs=0.1)
    assert recs["some_dir.mp4"]["status"] == "error" and "is a directory" in recs["some_dir.mp4"]["error"]
    assert recs["loop.mp4"]["status"] == "error" and "symlink loop" in recs["loop.mp4"]["error"]
    for name in ("some_dir.mp4", "loop.mp4"):
        assert recs[name]["error"].startswith(str(corpus[name.split(".")[0]])) and ";" in recs[name]["error"]

    before = out.read_bytes()
    again = CliRunner().invoke(cli_app, [*args, "--resume"])
    assert again.exit_code == 1, again.output  # the two failed records still count
    assert out.read_bytes() == before  # every id recognised, the non-UTF-8 one included: nothing re-run


def test_pickled_only_model_folder_is_refused(cli_app, tmp_path):
    import torch

    folder = tmp_path / "pickled-model"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps({"model_type": "qwen2"}))
    torch.save({"w": torch.zeros(2)}, folder / "pytorch_model.bin")
    clip = write_wav(tmp_path / "clip.wav", 0.5)
    result = CliRunner().invoke(cli_app, ["caption", str(clip), "--model", str(folder), "--no-progress"])
    assert result.exit_code == 2, result.output
    assert "pytorch_model.bin" in result.stderr and "safetensors" in result.stderr
    assert "Traceback" not in result.output and "weights_only=False" not in result.output
