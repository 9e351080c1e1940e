"""A tiny model (tiny_config) overfits 16 synthetic samples until greedy generation reproduces their labels."""

from __future__ import annotations

import time

import pytest

from affectllm.report import parse_report
from affectllm.training.synthetic import LABELS, write_synthetic_set

RECIPE = "train/configs/tiny-test.yaml"
TARGETS = "q_proj, k_proj, v_proj, o_proj, gate_proj, up_proj, down_proj, lm_head"


@pytest.mark.slow
def test_tiny_model_overfits_sixteen_samples(tmp_path):
    import torch

    from affectllm.checkpoint import load_checkpoint
    from affectllm.instruct import load_dataset
    from affectllm.training import load_config, train
    from affectllm.training.data import Collator
    from affectllm.training.evaluate import generate_rows

    data = write_synthetic_set(tmp_path / "data", n=16, seed=1)
    cfg = load_config(RECIPE, [f"data.train={data}", f"output_dir={tmp_path / 'run'}", f"cache.dir={tmp_path / 'cache'}",
                               "train.batch_size=16", "train.max_steps=300", "train.save_every=0",
                               "optim.lr=1.0e-2", "optim.projector_lr=1.0e-2", "optim.scheduler=cosine",
                               "optim.warmup_steps=10", "model.options.whisper=false", "model.options.text=llama",
                               # a random tiny LLM's frozen LM head caps its logits (loss floor ~5 nats): give
                               # the LoRA the head too, so the label token can become confident
                               f"model.lora={{target_modules: [{TARGETS}]}}"])
    t0 = time.time()
    summary = train(cfg, echo=lambda s: None)
    elapsed = time.time() - t0
    assert summary["steps"] == 300
    assert summary["cache"]["hits"] == 16 * 299  # epoch 1 decodes and encodes, every later epoch reads the cache

    from affectllm.model.model_card import read_front_matter

    card = read_front_matter(tmp_path / "run" / "adapter" / "README.md")  # the model card training writes
    assert card["library_name"] == "affectllm" and "lora" in card["tags"]
    assert "- steps: 300" in (tmp_path / "run" / "adapter" / "README.md").read_text()
    model, processor = load_checkpoint(tmp_path / "run" / "adapter")
    torch.set_num_threads(1)
    rows = load_dataset(data)
    gens = generate_rows(model, rows, Collator(processor, None, prompt_only=True), None, torch.device("cpu"),
                         batch_size=16, max_new_tokens=12)
    want = {g["id"]: parse_report(g["target"]).labels for g in gens}
    right = sum(parse_report(g["text"]).labels == want[g["id"]] for g in gens)
    assert len(gens) == 16 and len(set(LABELS)) == 16
    assert right >= 15, [(g["target"], g["text"]) for g in gens]
    print(f"overfit: {right}/16 labels right, training {elapsed:.1f} s")
