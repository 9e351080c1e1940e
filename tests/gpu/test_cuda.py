"""CUDA checks (skipped without a GPU; CI has none): the same tiny real-architecture model in bf16 on a GPU —
forward, backward, greedy generate, persistence, and a short training run through accelerate."""

from __future__ import annotations

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")

RNG = np.random.default_rng(0)
FRAMES = (RNG.random((4, 40, 52, 3)) * 255).astype(np.uint8)
AUDIO = (RNG.standard_normal(32000) * 0.1).astype(np.float32)


def _msgs(answer: str | None = None):
    part = {"type": "video", "video": {"frames": FRAMES, "timestamps": np.arange(4) * 0.5, "audio": AUDIO}}
    msgs = [{"role": "user", "content": [part, {"type": "text", "text": "How does she feel?"}]}]
    if answer:
        msgs.append({"role": "assistant", "content": answer})
    return msgs


def _to(batch, device, dtype):
    out = {}
    for k, v in batch.items():
        v = v.to(device)
        out[k] = v.to(dtype) if v.is_floating_point() and k in ("pixel_values",) else v
    return out


@pytest.mark.parametrize("text", ["qwen2", "llama", "gemma3"])
def test_bf16_cuda_forward_backward_generate(text):
    from affectllm.testing import tiny_model_and_processor

    model, proc = tiny_model_and_processor(text=text)
    model.to("cuda", torch.bfloat16)
    model.train()
    batch = _to(proc(_msgs("Labels: happy\nExplanation: smiles."), train=True), "cuda", torch.bfloat16)
    out = model(**batch)
    assert torch.isfinite(out.loss)
    out.loss.backward()
    assert any(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)
    model.eval()
    gen_in = _to(proc(_msgs()), "cuda", torch.bfloat16)
    a = model.generate(**gen_in, max_new_tokens=6, do_sample=False)
    b = model.generate(**gen_in, max_new_tokens=6, do_sample=False)
    assert a.device.type == "cuda" and torch.equal(a, b)


def test_cuda_checkpoint_roundtrip(tmp_path):
    from affectllm.checkpoint import load_checkpoint, save_checkpoint
    from affectllm.testing import tiny_model_and_processor

    model, proc = tiny_model_and_processor(text="qwen2")
    model.to("cuda").eval()
    batch = _to(proc(_msgs()), "cuda", torch.float32)
    with torch.no_grad():
        before = model(**batch).logits.cpu()
    save_checkpoint(model, proc, tmp_path)
    model2, proc2 = load_checkpoint(tmp_path)
    model2.to("cuda").eval()
    with torch.no_grad():
        after = model2(**_to(proc2(_msgs()), "cuda", torch.float32)).logits.cpu()
    assert torch.allclose(before, after, atol=1e-5)


def test_training_recipe_runs_on_gpu_with_bf16(tmp_path):
    from pathlib import Path

    from affectllm.training.config import load_config
    from affectllm.training.synthetic import write_synthetic_set
    from affectllm.training.trainer import train

    data = write_synthetic_set(tmp_path / "data", n=8)
    recipe = Path(__file__).resolve().parents[2] / "train" / "configs" / "tiny-test.yaml"
    cfg = load_config(recipe, [f"output_dir={tmp_path / 'run'}", f"data.train={data}", "train.max_steps=4",
                               "train.mixed_precision=bf16"])
    train(cfg)
    lines = (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()
    assert len([ln for ln in lines if '"loss"' in ln]) == 4
    assert (tmp_path / "run" / "adapter" / "model.safetensors").exists()
