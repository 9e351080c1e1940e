"""Pairing a model with its processor: ``bind`` runs once per built or loaded model, and only it (through
``set_placeholder_ids``) writes the placeholder ids into the config."""

from __future__ import annotations

import pytest

import affectllm.model.builder as builder
from affectllm.testing import tiny_config, tiny_tokenizer


@pytest.fixture
def bind_calls(monkeypatch):
    calls: list[int] = []
    real = builder.bind

    def counting(model, processor):
        calls.append(id(model))
        real(model, processor)

    monkeypatch.setattr(builder, "bind", counting)
    return calls


def test_build_processor_leaves_the_config_alone():
    config = tiny_config()
    before = dict(config.placeholder_token_ids)
    processor = builder.build_processor(config, tiny_tokenizer())
    assert config.placeholder_token_ids == before  # the binding writes them, not the processor
    model = builder.model_from_config(config, processor)
    assert model.config.placeholder_token_ids == processor.placeholder_ids
    assert len(set(processor.placeholder_ids.values())) == len(config.modalities)
    suppressed = set(model.generation_config.suppress_tokens or [])
    vocab = model.get_input_embeddings().weight.shape[0]
    assert {i for i in processor.placeholder_ids.values() if i < vocab} <= suppressed


def test_load_binds_once(tiny_checkpoint, bind_calls):
    import affectllm

    model, processor = affectllm.load(str(tiny_checkpoint), device="cpu", merge_lora=False)
    assert bind_calls == [id(model)]
    assert model.config.placeholder_token_ids == processor.placeholder_ids


def test_training_build_binds_once(bind_calls):
    from affectllm.training import load_config
    from affectllm.training.build import build_model

    model, processor = build_model(load_config("train/configs/tiny-test.yaml", ["model.options.whisper=false"]))
    assert bind_calls == [id(model)]
    assert model.config.placeholder_token_ids == processor.placeholder_ids
