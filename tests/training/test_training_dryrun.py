"""--dry-run on every recipe: meta-device build from the embedded architectures, offline, with real sizes."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectllm.training.config import load_config

CONFIGS = sorted(Path("train/configs").glob("*.yaml"))
# parameter counts of the real models (config.json values embedded in the recipes)
LLM = {"starter-cpu": 268_098_176, "starter-cpu-smollm2": 134_515_008, "qwen2.5-7b-lora": 7_615_616_512, "qwen2.5-7b-qlora": 7_615_616_512,
       "qwen2.5-7b-align": 7_615_616_512, "llama3-8b-lora": 8_030_261_248}


@pytest.mark.parametrize("path", CONFIGS, ids=[p.stem for p in CONFIGS])
def test_dry_run_counts_and_memory(path):
    from affectllm.training.dryrun import dry_run_numbers

    cfg = load_config(path)
    n = dry_run_numbers(cfg)
    parts = n["parts"]
    assert parts["multi_modal_projector"]["trainable"] > 0
    if cfg.stage == "alignment":
        assert parts["lora"]["trainable"] == 0 and parts["lora"]["frozen"] > 0
    else:
        assert parts["lora"]["trainable"] > 0
    if path.stem in LLM:
        assert parts["language_model"]["frozen"] == LLM[path.stem]
    if "7b" in path.stem or "8b" in path.stem:
        assert parts["vision_tower"]["frozen"] == 303_966_208  # open_clip ViT-L/14 visual
        assert parts["audio_tower"]["frozen"] == 315_438_720  # HuBERT-large
        assert parts["whisper_tower"]["frozen"] == 635_048_960  # Whisper-large-v3 encoder
    mem = n["memory"]
    assert mem["total"] == pytest.approx(mem["weights"] + mem["trainable_states"] + mem["activations"])
    if path.stem == "qwen2.5-7b-qlora":  # 4-bit LLM: well under the bf16 recipe
        bf16 = dry_run_numbers(load_config("train/configs/qwen2.5-7b-lora.yaml"))["memory"]["weights"]
        assert mem["weights"] < 0.5 * bf16
        assert 14.0 < bf16 < 19.0  # ~8.9 B frozen parameters at 2 bytes


def test_cli_dry_run_prints_table():
    from typer.testing import CliRunner

    from affectllm.cli import _build

    res = CliRunner().invoke(_build(), ["train", "--config", "train/configs/starter-cpu.yaml", "--dry-run"])
    assert res.exit_code == 0, res.output
    assert "memory per device" in res.output and "268,098,176" in res.output and "trainable" in res.output
