"""AffectLLMConfig declares every field the code reads: named defaults, a JSON round trip, and config.json files
saved before a field was declared stay as they were (same bytes, same fingerprint)."""

from __future__ import annotations

import json

from affectllm.model.configuration_affectllm import OMITTED_AT_DEFAULT, AffectLLMConfig
from affectllm.testing import tiny_config


def test_engine_fields_are_declared_with_their_defaults():
    config = AffectLLMConfig()
    assert (config.prompt_style, config.asr_model, config.generation_overrides, config.anchor_labels) == (
        None, None, None, True)
    assert OMITTED_AT_DEFAULT == {"prompt_style": None, "asr_model": None, "generation_overrides": None,
                                  "anchor_labels": True}


def test_set_fields_round_trip_through_config_json(tmp_path):
    config = tiny_config()
    config.prompt_style, config.asr_model, config.anchor_labels = "affectgpt", "base", False
    config.generation_overrides = {"repetition_penalty": 1.0, "stop_strings": ["###"]}
    config.save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert saved["prompt_style"] == "affectgpt" and saved["asr_model"] == "base" and saved["anchor_labels"] is False
    back = AffectLLMConfig.from_pretrained(tmp_path)
    assert (back.prompt_style, back.asr_model, back.anchor_labels) == ("affectgpt", "base", False)
    assert back.generation_overrides == {"repetition_penalty": 1.0, "stop_strings": ["###"]}


def test_fields_at_their_default_are_not_written(tmp_path):
    # a checkpoint that never set them writes the same config.json as before they were declared
    tiny_config().save_pretrained(tmp_path)
    saved = json.loads((tmp_path / "config.json").read_text())
    assert not set(OMITTED_AT_DEFAULT) & set(saved)
    assert AffectLLMConfig.from_pretrained(tmp_path).anchor_labels is True
