"""Each embedded backbone ships its own trained starter adapter, and ``affectllm.load`` picks it by name."""

from __future__ import annotations

import json

from affectllm.defaults import LLM_BACKBONES
from affectllm.loading import STARTER_DIR, STARTERS, is_checkpoint, shipped_starter, source_name


def test_every_backbone_has_a_trained_starter_for_its_own_backbone():
    assert set(STARTERS) == set(LLM_BACKBONES)
    for name, path in STARTERS.items():
        assert is_checkpoint(path), f"{path}: no starter for {name}; make it with BACKBONE={name} bash train/make_starter.sh"
        cfg = json.loads((path / "config.json").read_text())
        assert cfg["trained"] is True and cfg["text_model"] == LLM_BACKBONES[name]
        report = json.loads((path / "report.json").read_text())
        q = report["quality"]  # the held-out speakers' numbers the README quotes
        assert q["macro"]["final_anchored"] >= max(q["macro"]["voice"], 0.55)
        assert q["macro"]["final_anchored"] > q["macro"]["majority"] > 0


def test_the_default_is_smollm2_with_its_starter():
    from affectllm.defaults import DEFAULT_BACKBONE, DEFAULT_TEXT_MODEL, default_config

    assert DEFAULT_BACKBONE == "smollm2" and DEFAULT_TEXT_MODEL == "registry:smollm2-135m-instruct"
    assert STARTER_DIR == STARTERS["smollm2"] and STARTER_DIR.name == "starter-smollm2"
    assert default_config().text_model == DEFAULT_TEXT_MODEL
    assert json.loads((STARTER_DIR / "config.json").read_text())["text_model"] == DEFAULT_TEXT_MODEL
    assert STARTERS["gemma"].name == "starter" and is_checkpoint(STARTERS["gemma"])  # `--model gemma`


def test_shipped_starter_resolution(tmp_path, monkeypatch):
    assert shipped_starter(None) == STARTER_DIR == STARTERS["smollm2"]
    assert shipped_starter("gemma") == STARTERS["gemma"]
    assert shipped_starter("smollm2") == STARTERS["smollm2"] and shipped_starter("SmolLM2") == STARTERS["smollm2"]
    assert shipped_starter("registry:smollm2-135m-instruct") is None  # the bare backbone, untrained parts
    assert shipped_starter("Qwen/Qwen2.5-0.5B-Instruct") is None
    monkeypatch.chdir(tmp_path)
    (tmp_path / "gemma").mkdir()
    assert shipped_starter("gemma") is None  # a local folder of that name is what the user means


def test_a_shipped_starter_is_named_not_located():
    assert source_name(None, None, STARTER_DIR) == "embedded-default"
    assert source_name(None, "SmolLM2", STARTERS["smollm2"]) == "embedded-smollm2"
    assert source_name(None, "Gemma", STARTERS["gemma"]) == "embedded-gemma"
    assert source_name("runs/x/adapter", None, None) == "runs/x/adapter"
    assert source_name(None, None, None) == "embedded-default"
