"""QLoRA: a 4-bit NF4 language model (bitsandbytes) with LoRA trains on CPU; misuse gives clear errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from affectllm.builder import build_processor, model_from_config
from affectllm.testing import tiny_config, tiny_model_and_processor, tiny_tokenizer


@pytest.fixture(scope="module")
def llm_dir(tmp_path_factory):
    plain, _ = tiny_model_and_processor(text="llama", lora=False)
    folder = tmp_path_factory.mktemp("llm")
    plain.language_model.save_pretrained(folder)
    return folder


def test_qlora_4bit_forward_backward_on_cpu(llm_dir):
    pytest.importorskip("bitsandbytes")
    config = tiny_config(text="llama", vision=False, audio=False)
    config.text_model, config.text_config = str(llm_dir), None
    proc = build_processor(config, tiny_tokenizer())
    model = model_from_config(config, proc, quantization="4bit", dtype=torch.float32)
    assert model.quantized
    linear4 = [m for m in model.base_language_model().modules() if type(m).__name__ == "Linear4bit"]
    assert linear4, "no 4-bit linear layers were created"
    audio = (np.random.default_rng(0).standard_normal(8000) * 0.1).astype(np.float32)
    msgs = [{"role": "user", "content": [{"type": "audio", "audio": audio}, {"type": "text", "text": "?"}]},
            {"role": "assistant", "content": "Labels: calm\nExplanation: a steady voice."}]
    model.train()
    out = model(**proc(msgs, train=True))
    out.loss.backward()
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert all(n.startswith("multi_modal_projector.") or "lora_" in n for n in trainable)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for n, p in model.named_parameters() if "lora_" in n)


def test_4bit_needs_pretrained_weights():
    config = tiny_config(text="qwen2", vision=False, audio=False, whisper=False)
    proc = build_processor(config, tiny_tokenizer())
    with pytest.raises(ValueError, match="needs pretrained weights"):
        model_from_config(config, proc, quantization="4bit")


def test_unknown_quantization_is_rejected(llm_dir):
    config = tiny_config(text="llama", vision=False, audio=False, whisper=False)
    config.text_model, config.text_config = str(llm_dir), None
    proc = build_processor(config, tiny_tokenizer())
    with pytest.raises(ValueError, match="use one of auto, none, 8bit, 4bit"):
        model_from_config(config, proc, quantization="3bit")


@pytest.mark.parametrize("kind, flag", [("8bit", "load_in_8bit"), ("4bit", "load_in_4bit")])
def test_each_quantization_reaches_from_pretrained_as_its_bitsandbytes_config(kind, flag, llm_dir, monkeypatch):
    """bitsandbytes needs a GPU for 8-bit: the check and from_pretrained are recorded, not run."""
    import transformers

    import affectllm.model.language_model as lm

    seen = {}
    monkeypatch.setattr(lm, "check_quantization_supported", lambda q="4bit": seen.setdefault("checked", q))

    def from_pretrained(name, **kw):
        seen.update(kw)
        raise RuntimeError("recorded")

    monkeypatch.setattr(transformers.AutoModelForCausalLM, "from_pretrained", from_pretrained)
    config = tiny_config(text="llama", vision=False, audio=False, whisper=False)
    config.text_model, config.text_config = str(llm_dir), None
    with pytest.raises(RuntimeError, match="recorded"):
        lm.build_language_model(config, quantization=kind)
    q = seen["quantization_config"]
    assert seen["checked"] == kind and getattr(q, flag) is True and "dtype" not in seen
    assert (q.load_in_4bit, q.load_in_8bit) == (kind == "4bit", kind == "8bit")
