"""Recipes: typed loading, dotted overrides, and unknown keys rejected before anything heavy loads."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from affectllm.training.config import ConfigError, load_config

CONFIGS = sorted(Path("train/configs").glob("*.yaml"))


def test_every_shipped_recipe_loads():
    names = {p.stem for p in CONFIGS}
    assert {"starter-cpu", "qwen2.5-7b-lora", "qwen2.5-7b-qlora", "llama3-8b-lora", "tiny-test"} <= names
    for path in CONFIGS:
        cfg = load_config(path)
        assert cfg.name == path.stem and cfg.stage in ("alignment", "instruct")


def test_overrides_are_typed():
    cfg = load_config("train/configs/tiny-test.yaml", ["train.max_steps=7", "optim.lr=1e-4", "data.tasks=[ov_labels]",
                                                       "model.options.text=llama", "data.cues=on", "seed=3"])
    assert cfg.train.max_steps == 7 and cfg.optim.lr == pytest.approx(1e-4) and isinstance(cfg.optim.lr, float)
    assert cfg.data.tasks == ["ov_labels"] and cfg.model.options["text"] == "llama" and cfg.data.cues == "on"
    assert cfg.seed == 3
    starter = load_config("train/configs/starter-cpu.yaml")
    assert starter.model.source == "default" and starter.optim.lr == pytest.approx(5e-4)
    smol = load_config("train/configs/starter-cpu-smollm2.yaml")  # the same recipe but the backbone
    assert (starter.model.text_model, smol.model.text_model) == ("gemma", "smollm2")
    assert (smol.data, smol.optim, smol.train, smol.cache) == (starter.data, starter.optim, starter.train, starter.cache)
    assert starter.optim.projector_lr == pytest.approx(1e-3) and starter.cache.enabled


@pytest.mark.parametrize("override, message", [
    ("train.max_step=3", "did you mean 'max_steps'"),
    ("optim.lrr=0.1", "did you mean 'lr'"),
    ("trian.batch_size=2", "did you mean 'train'"),
    ("train=3", "is a section"),
    ("stage=pretrain", "stage 'pretrain' unknown"),
    ("train.batch_size=0", "train.batch_size must be >= 1"),
    ("optim.lr=fast", "not a number"),
])
def test_bad_overrides_name_the_key(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load_config("train/configs/tiny-test.yaml", [override])


def test_unknown_yaml_key_names_file_and_fix(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: x\ntrain:\n  batchsize: 4\n")
    with pytest.raises(ConfigError) as e:
        load_config(bad)
    assert str(bad) in str(e.value) and "batchsize" in str(e.value) and "did you mean 'batch_size'" in str(e.value)


def test_cli_rejects_unknown_key_before_importing_torch(tmp_path):
    code = ("import sys\nfrom affectllm.training.config import load_config, ConfigError\n"
            "try:\n    load_config('train/configs/tiny-test.yaml', ['train.bacth_size=2'])\n"
            "except ConfigError as e:\n    print('ERR', e)\nprint('torch loaded:', 'torch' in sys.modules)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout
    assert "did you mean 'batch_size'" in out and "torch loaded: False" in out
    cli = subprocess.run([sys.executable, "-m", "affectllm", "train", "--config", "train/configs/tiny-test.yaml",
                          "train.bacth_size=2"], capture_output=True, text=True, timeout=120)
    assert cli.returncode == 2 and "did you mean 'batch_size'" in cli.stderr


def test_cache_prefixed_paths_resolve_under_the_affectllm_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("AFFECTLLM_HOME", str(tmp_path))
    starter = load_config("train/configs/starter-cpu.yaml")
    assert starter.data.train == "cache:instruct/starter/train.jsonl"
    assert starter.resolve(starter.data.train) == tmp_path / "instruct" / "starter" / "train.jsonl"
