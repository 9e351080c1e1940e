"""Parity with AffectGPT's own code: a tiny checkpoint saved by their classes (scripts/make_affectgpt_fixture.py),
converted by ``affectllm convert affectgpt``, gives their next-token logits and greedy tokens.

Runs without their code: the fixture holds their checkpoint, the tiny towers/LLM, the inputs and their outputs.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch

FIX = Path(__file__).resolve().parents[1] / "fixtures" / "affectgpt"


@pytest.fixture(scope="module")
def converted(tmp_path_factory):
    from affectllm.checkpoint import load_checkpoint
    from affectllm.compat.affectgpt_convert import convert_checkpoint

    out = tmp_path_factory.mktemp("affectgpt")
    summary = convert_checkpoint(FIX / "affectgpt_tiny.pth", out, vision_model=str(FIX / "clip"),
                                 audio_model=str(FIX / "hubert"), text_model=str(FIX / "llm"))
    model, processor = load_checkpoint(out)
    return summary, model, processor


def _inputs(processor):
    from safetensors.numpy import load_file

    from affectllm.compat.affectgpt import user_text

    raw = load_file(str(FIX / "inputs.safetensors"))
    frames = np.repeat(np.repeat(raw["frames_small"], 8, axis=1), 8, axis=2)  # [8, 224, 224, 3] as the generator
    exp = json.loads((FIX / "expected.json").read_text())
    video = {"frames": frames, "timestamps": np.arange(8, dtype=np.float32), "audio": raw["waveform"]}
    messages = [{"role": "user", "content": [{"type": "video", "video": video},
                                             {"type": "text", "text": user_text(exp["question"], exp["subtitle"])}]}]
    return processor(messages), exp


def test_prompt_tokens_match_theirs(converted):
    _, model, processor = converted
    inputs, exp = _inputs(processor)
    from safetensors.numpy import load_file

    theirs = load_file(str(FIX / "expected.safetensors"))["prompt_ids"].tolist()
    ours = inputs["input_ids"][0].tolist()
    to_ours = {int(i): processor.placeholder_ids[{"<FrameHere>": "vision", "<AudioHere>": "audio",
                                                   "<MultiHere>": "multi"}[t]]
               for t, i in exp["placeholder_ids"].items()}
    assert ours == [to_ours.get(i, i) for i in theirs]


def test_next_token_logits_match_theirs(converted):
    _, model, processor = converted
    inputs, _ = _inputs(processor)
    from safetensors.torch import load_file

    theirs = load_file(str(FIX / "expected.safetensors"))["next_token_logits"]
    with torch.no_grad():
        ours = model(**inputs).logits[0, -1].float()
    scale = theirs.abs().max()
    assert scale > 0.1  # a real signal, not all zeros
    rel = float((ours - theirs).abs().max() / scale)
    assert rel < 1e-4, f"max |ours - theirs| / max |theirs| = {rel:.2e}"


def test_greedy_tokens_match_theirs(converted):
    _, model, processor = converted
    inputs, exp = _inputs(processor)
    with torch.no_grad():
        out = model.generate(**inputs, max_new_tokens=exp["max_new_tokens"], do_sample=False,
                             stop_strings=model.generation_config.stop_strings, tokenizer=processor.tokenizer)
    new = out[0, inputs["input_ids"].shape[1]:].tolist()
    assert new == exp["greedy_tokens"]


def test_converted_folder_is_a_normal_checkpoint(converted):
    summary, model, _ = converted
    out = Path(summary["out"])
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["projector_config"]["type"] == "affectgpt"
    assert cfg["vision_config"]["model"] == str(FIX / "clip") and cfg["text_model"] == str(FIX / "llm")
    gen = json.loads((out / "generation_config.json").read_text())
    assert gen["stop_strings"] == ["###"] and gen["do_sample"] is False and gen["repetition_penalty"] == 1.0
    assert model.generation_config.repetition_penalty == 1.0  # applied on load (bind), whatever the LLM says
    assert sorted(p.suffix for p in out.iterdir()) == [".json"] * (len(list(out.iterdir())) - 1) + [".safetensors"]
    assert summary["tensors"] == 48  # 20 projector tensors + 28 LoRA (2 layers x 7 modules x A/B)


def test_convert_refuses_pickles_needing_code(tmp_path):
    from affectllm.compat.affectgpt_convert import ConversionError, load_affectgpt_state

    bad = tmp_path / "evil.pth"  # an arbitrary class: unpickling it needs more than weights_only allows
    torch.save({"model": {}, "extra": argparse.Namespace(a=1)}, bad)
    with pytest.raises(ConversionError, match="weights_only=True"):
        load_affectgpt_state(bad)


def test_convert_names_missing_and_leftover_keys(tmp_path):
    from affectllm.compat.affectgpt_convert import ConversionError, convert_checkpoint

    ckpt = torch.load(FIX / "affectgpt_tiny.pth", weights_only=True)
    ckpt["model"].pop("fc_att.weight")
    ckpt["model"]["video_Qformer.query_tokens"] = torch.zeros(1)
    ckpt["model"]["visual_encoder.model.vision_model.embeddings.position_ids"] = torch.arange(3)  # tolerated
    torch.save(ckpt, tmp_path / "partial.pth")
    with pytest.raises(ConversionError) as err:
        convert_checkpoint(tmp_path / "partial.pth", tmp_path / "out", vision_model=str(FIX / "clip"),
                           audio_model=str(FIX / "hubert"), text_model=str(FIX / "llm"))
    msg = str(err.value)
    assert "1 missing: multi_modal_projector.fc_att.weight" in msg
    assert "1 left over: video_Qformer.query_tokens" in msg
    assert "position_ids" not in msg
    assert not (tmp_path / "out").exists()  # nothing half-written


def test_projector_tokens_match_theirs(converted):
    """Their frame_llms / audio_llms / multi_llms, group by group (locates a failure before the LLM)."""
    _, model, processor = converted
    inputs, _ = _inputs(processor)
    from safetensors.torch import load_file

    exp = load_file(str(FIX / "expected.safetensors"))
    media = {k: inputs[k] for k in ("pixel_values", "pixel_mask", "video_timestamps", "input_values",
                                    "input_values_mask")}
    with torch.no_grad():
        ours = model.multi_modal_projector.project_all(model.encode_media(**media))
    for key, group in (("vision_tokens", "vision"), ("audio_tokens", "audio"), ("multi_tokens", "multi")):
        theirs = exp[key]
        rel = float((ours[group][0] - theirs).abs().max() / theirs.abs().max())
        assert rel < 1e-5, f"{group}: {rel:.2e}"


def test_batched_with_a_silent_video_matches_single(converted):
    """Two videos in one left-padded batch (the second silent: 2 s of silence stands in for its audio, so each
    item keeps its fused token) give the same last-position logits as each run alone."""
    _, model, processor = converted
    from affectllm.compat.affectgpt import user_text

    single, exp = _inputs(processor)
    frames = np.repeat(np.repeat(np.full((8, 28, 28, 3), 90, np.uint8), 8, axis=1), 8, axis=2)
    silent = [{"role": "user", "content": [{"type": "video", "video": {"frames": frames, "audio": None}},
                                           {"type": "text", "text": user_text(exp["question"], "Hi.")}]}]
    from safetensors.numpy import load_file

    raw = load_file(str(FIX / "inputs.safetensors"))
    first = [{"role": "user", "content": [
        {"type": "video", "video": {"frames": np.repeat(np.repeat(raw["frames_small"], 8, axis=1), 8, axis=2),
                                    "audio": raw["waveform"]}},
        {"type": "text", "text": user_text(exp["question"], exp["subtitle"])}]}]
    batch = processor([first, silent])
    alone = processor(silent)
    with torch.no_grad():
        b = model(**batch).logits[:, -1]
        a0 = model(**single).logits[0, -1]
        a1 = model(**alone).logits[0, -1]
    assert float((b[0] - a0).abs().max() / a0.abs().max()) < 1e-4
    assert float((b[1] - a1).abs().max() / a1.abs().max()) < 1e-4
