"""Normal CLI output holds no dependency chatter (library warnings, "Loading weights" bars); --verbose shows it.

A tiny AffectLLM checkpoint whose language model is loaded from a folder (so transformers draws its "Loading
weights" bar and raises its FutureWarning) captions the shipped example clip in a subprocess, once quiet and once
with ``--verbose``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CLIP = ROOT / "affectllm" / "assets" / "examples" / "astronaut.mp4"
NOISE = ("FutureWarning", "Loading weights", "WARNING:root", "it/s]")


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    from transformers import AutoModelForCausalLM

    from affectllm.builder import build_processor, model_from_config
    from affectllm.checkpoint import save_checkpoint
    from affectllm.testing import tiny_config, tiny_tokenizer

    root = tmp_path_factory.mktemp("quiet")
    config = tiny_config(audio=False)
    AutoModelForCausalLM.from_config(config.text_config).save_pretrained(root / "llm")
    tiny_tokenizer().save_pretrained(root / "llm")
    config.text_model = str(root / "llm")
    processor = build_processor(config, tiny_tokenizer())
    return save_checkpoint(model_from_config(config, processor), processor, root / "ckpt")


def _caption(ckpt: Path, *flags: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TQDM_", "TRANSFORMERS_", "HF_", "PYTHONWARN"))}
    env["PYTHONPATH"] = str(ROOT)
    code = "import sys; from affectllm.cli import main; sys.argv[0] = 'affectllm'; main()"
    return subprocess.run([sys.executable, "-c", code, *flags, "caption", "--model", str(ckpt), "--no-progress",
                           "--max-new-tokens", "4", str(CLIP)], capture_output=True, text=True, env=env, timeout=600)


@pytest.mark.slow
def test_normal_output_is_quiet_and_verbose_shows_the_noise(checkpoint):
    quiet = _caption(checkpoint)
    assert quiet.returncode == 0, quiet.stderr
    assert json.loads(quiet.stdout)["status"] == "ok"
    assert [n for n in NOISE if n in quiet.stderr] == [], quiet.stderr
    loud = _caption(checkpoint, "--verbose")
    assert loud.returncode == 0, loud.stderr
    assert "Loading weights" in loud.stderr and "FutureWarning" in loud.stderr  # the test does exercise both
