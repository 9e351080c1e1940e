"""The spine on tiny random models of the real architectures: forward/backward, loss masking, generate,
trainable parameters, persistence."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import torch

from affectllm.checkpoint import load_checkpoint, save_checkpoint
from affectllm.testing import tiny_model_and_processor

RNG = np.random.default_rng(0)
FRAMES = (RNG.random((4, 40, 52, 3)) * 255).astype(np.uint8)
AUDIO = (RNG.standard_normal(16000) * 0.1).astype(np.float32)


def video_msgs(answer: str | None = "Labels: happy\nExplanation: she smiles.", audio: bool = True):
    part = {"type": "video", "video": {"frames": FRAMES, "timestamps": np.arange(4) * 0.5,
                                        "audio": AUDIO if audio else None}}
    msgs = [{"role": "user", "content": [part, {"type": "text", "text": "How does she feel?"}]}]
    if answer is not None:
        msgs.append({"role": "assistant", "content": answer})
    return msgs


@pytest.fixture(scope="module", params=["qwen2", "llama", "gemma3"])
def tiny(request):
    return tiny_model_and_processor(text=request.param)


def test_forward_backward_reaches_only_projector_and_lora(tiny):
    model, proc = tiny
    model.train()
    batch = proc(video_msgs(), train=True)
    out = model(**batch)
    assert torch.isfinite(out.loss) and out.loss.item() > 0
    out.loss.backward()
    grads = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert grads, "no gradient reached any parameter"
    assert all(n.startswith("multi_modal_projector.") or "lora_" in n for n in grads)
    assert any("lora_" in n for n in grads) and any(n.startswith("multi_modal_projector.") for n in grads)
    model.zero_grad(set_to_none=True)
    model.eval()


def test_trainable_parameters_are_exactly_projector_and_lora(tiny):
    model, _ = tiny
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    expected = {n for n, _ in model.named_parameters() if n.startswith("multi_modal_projector.") or "lora_" in n}
    assert trainable == expected
    for tower in (model.vision_tower, model.audio_tower, model.whisper_tower):
        assert not tower.training and not any(p.requires_grad for p in tower.parameters())


def test_loss_only_on_answer_tokens(tiny):
    model, proc = tiny
    batch = proc(video_msgs(), train=True)
    labels, ids = batch["labels"][0], batch["input_ids"][0]
    answer_ids = proc.tokenizer("Labels: happy\nExplanation: she smiles.", add_special_tokens=False)["input_ids"]
    supervised = labels[labels != -100].tolist()
    assert supervised[: len(answer_ids)] == answer_ids  # the answer, then only the end-of-turn token(s)
    assert len(supervised) - len(answer_ids) <= 3
    ph = set(proc.placeholder_ids.values())
    assert not any(int(t) in ph for t in ids[labels != -100])
    with torch.no_grad():
        logits = model(**{k: v for k, v in batch.items() if k != "labels"}).logits[0]
        loss = model(**batch).loss
    shift = labels[1:]
    keep = shift != -100
    manual = torch.nn.functional.cross_entropy(logits[:-1][keep], shift[keep])
    assert torch.allclose(loss, manual, atol=1e-5)


def test_placeholders_equal_query_count_per_modality(tiny):
    model, proc = tiny
    ids = proc(video_msgs(answer=None))["input_ids"][0]
    for modality, tid in proc.placeholder_ids.items():
        assert int((ids == tid).sum()) == model.config.num_tokens(modality) == proc.num_tokens[modality]


@pytest.mark.parametrize("vision,audio,whisper", list(itertools.product([True, False], repeat=3)))
def test_generate_with_every_subset_of_modalities(vision, audio, whisper):
    model, proc = tiny_model_and_processor(text="qwen2", vision=vision, audio=audio, whisper=whisper)
    model.eval()
    batch = proc([video_msgs(answer=None), [{"role": "user", "content": "Text only: how does he feel?"}]])
    out = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert out.shape[0] == 2 and out.shape[1] <= batch["input_ids"].shape[1] + 4
    n_ph = sum(int((batch["input_ids"] == t).sum()) for t in proc.placeholder_ids.values())
    want = (model.config.num_tokens("vision") if vision else 0) + (
        model.config.num_tokens("audio") if audio else 0) + (model.config.num_tokens("whisper") if whisper else 0)
    assert n_ph == want
    again = model.generate(**batch, max_new_tokens=4, do_sample=False)
    assert torch.equal(out, again)  # greedy decoding is deterministic


def test_generation_uses_the_media():
    model, proc = tiny_model_and_processor(text="llama")
    model.eval()
    a = proc(video_msgs(answer=None))
    b = dict(a)
    b["pixel_values"] = torch.flip(a["pixel_values"], dims=[-1]) * 0.5
    with torch.no_grad():
        la, lb = model(**a).logits[0, -1], model(**b).logits[0, -1]
    assert not torch.allclose(la, lb)


@pytest.mark.parametrize("projector", ["qformer", "attention_pool", "mlp"])
def test_projector_types_give_the_configured_token_counts(projector):
    model, proc = tiny_model_and_processor(text="qwen2", projector=projector)
    batch = proc(video_msgs(answer=None))
    feats = model.get_video_features(batch["pixel_values"], batch["pixel_mask"], batch["video_timestamps"])
    assert feats.shape == (1, model.config.num_tokens("vision"), 64)
    assert model.get_whisper_features(batch["input_values"], batch["input_values_mask"]).shape == (
        1, model.config.num_tokens("whisper"), 64)
    with torch.no_grad():
        assert torch.isfinite(model(**batch).logits).all()


def test_image_and_audio_only_inputs():
    model, proc = tiny_model_and_processor(text="gemma3")
    image = [{"role": "user", "content": [{"type": "image", "image": FRAMES[0]}, {"type": "text", "text": "?"}]}]
    audio = [{"role": "user", "content": [{"type": "audio", "audio": AUDIO}, {"type": "text", "text": "?"}]}]
    bi, ba = proc(image), proc(audio)
    assert bi["pixel_values"].shape[:2] == (1, 1) and "input_values" not in bi
    assert "pixel_values" not in ba and ba["input_values"].shape == (1, 16000)
    for b in (bi, ba):
        assert model.generate(**b, max_new_tokens=3).shape[0] == 1


def test_checkpoint_of_sourced_parts_keeps_only_trainables(tmp_path):
    """When the LLM comes from a named source, the checkpoint holds projector + LoRA (+ unsourced towers) only."""
    from affectllm.builder import build_processor, model_from_config
    from affectllm.testing import tiny_config, tiny_tokenizer

    plain, _ = tiny_model_and_processor(text="qwen2", lora=False)
    plain.language_model.save_pretrained(tmp_path / "llm")  # stands in for a hub id or a local LLM folder
    config = tiny_config(text="qwen2")
    config.text_model, config.text_config = str(tmp_path / "llm"), None
    proc = build_processor(config, tiny_tokenizer())
    model = model_from_config(config, proc).eval()
    assert model.llm_from_source
    state = model.checkpoint_state_dict()
    assert not any(k.startswith("language_model.") and "lora_" not in k for k in state)
    assert any("lora_" in k for k in state)
    save_checkpoint(model, proc, tmp_path / "ckpt")
    model2, proc2 = load_checkpoint(tmp_path / "ckpt")
    with torch.no_grad():
        a = model(**proc(video_msgs(answer=None))).logits
        b = model2(**proc2(video_msgs(answer=None))).logits
    assert torch.equal(a, b)


def test_whisper_tower_windows_long_audio_and_trims_to_length():
    model, proc = tiny_model_and_processor(text="qwen2", vision=False, audio=False)
    wav = torch.randn(2, 16000 * 65) * 0.1
    mask = torch.zeros_like(wav, dtype=torch.bool)
    mask[0, :] = True  # 65 s: three windows
    mask[1, : 16000 * 5] = True  # 5 s
    out = model.whisper_tower(wav, mask)
    stride = model.config.spec("whisper").stride
    assert out.mask[0].sum() == int(np.ceil(65 * 50 / stride))
    assert out.mask[1].sum() == int(np.ceil(5 * 50 / stride))
    assert out.times[0, out.mask[0]].max() > 64.0


def test_gradient_checkpointing_trains():
    model, proc = tiny_model_and_processor(text="llama")
    model.gradient_checkpointing_enable()
    model.train()
    out = model(**proc(video_msgs(), train=True))
    out.loss.backward()
    assert any(p.grad is not None for n, p in model.named_parameters() if "lora_" in n)


def test_bf16_cast_keeps_whisper_layernorms_fp32_and_runs():
    model, proc = tiny_model_and_processor(text="qwen2", vision=False, audio=False)
    model.to(torch.bfloat16).eval()
    lns = [m for m in model.whisper_tower.modules() if isinstance(m, torch.nn.LayerNorm)]
    assert lns and all(m.weight.dtype == torch.float32 for m in lns)
    assert model.whisper_tower.encoder.conv1.weight.dtype == torch.bfloat16
    with torch.no_grad():
        out = model(**proc(video_msgs(answer=None)))
    assert torch.isfinite(out.logits.float()).all()


def test_left_padded_batch_row_equals_the_row_alone():
    """Positions come from the attention mask: padding never shifts a row's positions."""
    model, proc = tiny_model_and_processor(text="llama")
    with torch.no_grad():
        for p in model.language_model.parameters():  # a random tiny LM only emits newlines; spread its logits
            p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    short = video_msgs(answer=None)
    long = [{"role": "user", "content": "A much longer text-only question about how the speaker feels " * 3}]
    alone = proc([short])
    both = proc([short, long])
    assert both["input_ids"].shape[1] > alone["input_ids"].shape[1]  # the short row is left-padded
    with torch.no_grad():
        a = model(**alone).logits[0, -1]
        b = model(**both).logits[0, -1]
    assert torch.allclose(a, b, atol=1e-4)
    ga = model.generate(**alone, max_new_tokens=5)[0, alone["input_ids"].shape[1]:]
    gb = model.generate(**both, max_new_tokens=5)[0, both["input_ids"].shape[1]:]
    assert torch.equal(ga, gb)
