"""Round trip: AffectGPT's tiny checkpoint -> ``affectllm convert affectgpt`` -> ``affectllm caption`` on a real clip.

The tiny towers/LLM are random, so the text is meaningless; the test checks the whole path works (CLI, folder,
load, AffectGPT prompt with the given subtitle, generation) and yields an ``ok`` record.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "affectgpt"
CLIP = Path(__file__).resolve().parents[2] / ".." / "shared" / "media" / "ravdess" / "01-01-01-01-01-01-01.mp4"


@pytest.mark.skipif(not CLIP.exists(), reason="needs ../shared/media/ravdess (real fixtures)")
def test_convert_then_caption_real_clip(tmp_path):
    from affectllm.cli import _build

    app = _build()
    runner = CliRunner()
    out = tmp_path / "affectgpt"
    res = runner.invoke(app, ["convert", "affectgpt", str(FIX / "affectgpt_tiny.pth"), "--out", str(out),
                              "--vision-model", str(FIX / "clip"), "--audio-model", str(FIX / "hubert"),
                              "--text-model", str(FIX / "llm")])
    assert res.exit_code == 0, res.output
    assert "converted 48 tensors" in res.output
    cfg = json.loads((out / "config.json").read_text())
    cfg["asr_model"] = None  # the subtitle is given below; keeps the test to seconds (no Whisper load)
    (out / "config.json").write_text(json.dumps(cfg))
    manifest = tmp_path / "clips.csv"
    manifest.write_text(f'id,path,subtitle\nclip1,{CLIP.resolve()},"Kids are talking by the door."\n')
    records = tmp_path / "out.jsonl"
    res = runner.invoke(app, ["caption", str(manifest), "--model", str(out), "--out", str(records),
                              "--max-new-tokens", "6", "--device", "cpu", "--no-progress"])
    assert res.exit_code == 0, res.output
    rec = json.loads(records.read_text().splitlines()[0])
    assert rec["status"] == "ok" and rec["error"] is None
    assert rec["subtitle"] == "Kids are talking by the door."
    assert rec["model"]["name"] == str(out)
    assert rec["raw"]  # generated text came back


def test_convert_cli_refuses_code_pickles(tmp_path):
    import argparse

    import torch

    from affectllm.cli import _build

    bad = tmp_path / "evil.pth"
    torch.save({"model": {}, "x": argparse.Namespace()}, bad)
    res = CliRunner().invoke(_build(), ["convert", "affectgpt", str(bad), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2
    assert "weights_only=True" in res.output and not (tmp_path / "o").exists()
