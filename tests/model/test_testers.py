"""The ModelTester / ConfigTester pair (``affectllm.testing.testers``) over every tiny architecture and tower mix:
forward with loss only on the answer and gradients only in projector + LoRA, deterministic greedy generate, save /
load with identical logits, config round trips."""

from __future__ import annotations

import pytest

from affectllm.testing.testers import AffectLLMConfigTester, AffectLLMModelTester

MIXES = [("qwen2", True, True, True), ("llama", False, False, True), ("gemma3", True, False, False)]


@pytest.mark.parametrize("text, vision, audio, whisper", MIXES)
def test_model_tester(text, vision, audio, whisper, tmp_path):
    tester = AffectLLMModelTester(text=text, vision=vision, audio=audio, whisper=whisper)
    tester.create_and_check_model()
    tester.create_and_check_generate()
    tester.create_and_check_save_load(tmp_path / "ckpt")


@pytest.mark.parametrize("text", ["qwen2", "llama", "gemma3"])
def test_config_tester(text, tmp_path):
    AffectLLMConfigTester(text=text).run_common_tests(tmp_path / "cfg")


def test_a_tester_says_what_differed(tmp_path):
    tester = AffectLLMModelTester(text="llama", vision=False, audio=False, whisper=True)
    tester.model.multi_modal_projector.requires_grad_(False)  # nothing left to train but LoRA
    tester.create_and_check_model()  # still fine: LoRA gets gradients
    for p in tester.model.parameters():
        p.requires_grad_(False)
    with pytest.raises((AssertionError, RuntimeError)):
        tester.create_and_check_model()
