"""Parity with AffectGPT's own code: a tiny checkpoint saved by their classes (scripts/make_affectgpt_fixture.py,
run under their pinned transformers 4.49 / peft 0.13.2, decord, pytorchvideo), converted by ``affectllm convert
affectgpt``, gives their next-token logits and greedy tokens for the same clip file, read by their load_video /
load_audio / transform_audio there and by this project's processor, ``affectllm.predict`` and ``affectllm
caption`` here.

Runs without their code: the fixture holds their checkpoint, the tiny towers/LLM and their outputs; the clip is
re-written losslessly by ``affectllm.testing_inputs.write_offset_clip`` (9.3 s, DC offset, drift).
"""

from __future__ import annotations

import argparse
import json
import shutil
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


@pytest.fixture(scope="module")
def clip(tmp_path_factory):
    """The clip their load_video / load_audio read (re-written: lossless, so the same pixels and samples)."""
    from affectllm.testing_inputs import write_offset_clip

    exp = json.loads((FIX / "expected.json").read_text())
    c = exp["clip"]
    return write_offset_clip(tmp_path_factory.mktemp("clip") / c["name"], **c["write_offset_clip"])


def _messages(path, exp):
    from affectllm.compat.affectgpt import user_text

    return [{"role": "user", "content": [{"type": "video", "video": str(path)},
                                         {"type": "text", "text": user_text(exp["question"], exp["subtitle"])}]}]


def _inputs(processor, path):
    exp = json.loads((FIX / "expected.json").read_text())
    return processor(_messages(path, exp)), exp


def _rel(ours, theirs) -> float:
    return float((ours - theirs).abs().max() / theirs.abs().max())


def test_prompt_tokens_match_theirs(converted, clip):
    _, model, processor = converted
    inputs, exp = _inputs(processor, clip)
    from safetensors.numpy import load_file

    theirs = load_file(str(FIX / "expected.safetensors"))["prompt_ids"].tolist()
    ours = inputs["input_ids"][0].tolist()
    to_ours = {int(i): processor.placeholder_ids[{"<FrameHere>": "vision", "<AudioHere>": "audio",
                                                   "<MultiHere>": "multi"}[t]]
               for t, i in exp["placeholder_ids"].items()}
    assert ours == [to_ours.get(i, i) for i in theirs]


def test_next_token_logits_match_theirs(converted, clip):
    _, model, processor = converted
    inputs, _ = _inputs(processor, clip)
    from safetensors.torch import load_file

    theirs = load_file(str(FIX / "expected.safetensors"))["next_token_logits"]
    with torch.no_grad():
        ours = model(**inputs).logits[0, -1].float()
    scale = theirs.abs().max()
    assert scale > 1.0  # a real signal, not all zeros
    diff = float((ours - theirs).abs().max())
    assert diff < 1e-4, f"max |ours - theirs| = {diff:.2e} (max |theirs| {float(scale):.2f})"


def test_greedy_tokens_match_theirs(converted, clip):
    _, model, processor = converted
    inputs, exp = _inputs(processor, clip)
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


def test_projector_tokens_match_theirs(converted, clip):
    """Their frame_llms / audio_llms / multi_llms, group by group (locates a failure before the LLM)."""
    _, model, processor = converted
    inputs, _ = _inputs(processor, clip)
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


def test_batched_with_a_silent_video_matches_single(converted, clip):
    """Two videos in one left-padded batch (the second silent: 2 s of silence stands in for its audio, so each
    item keeps its fused token) give the same last-position logits as each run alone."""
    _, model, processor = converted
    from affectllm.compat.affectgpt import user_text

    single, exp = _inputs(processor, clip)
    frames = np.full((8, 224, 224, 3), 90, np.uint8)
    silent = [{"role": "user", "content": [{"type": "video", "video": {"frames": frames, "audio": None}},
                                           {"type": "text", "text": user_text(exp["question"], "Hi.")}]}]
    batch = processor([_messages(clip, exp), silent])
    alone = processor(silent)
    with torch.no_grad():
        b = model(**batch).logits[:, -1]
        a0 = model(**single).logits[0, -1]
        a1 = model(**alone).logits[0, -1]
    assert _rel(b[0], a0) < 1e-4 and _rel(b[1], a1) < 1e-4


# --- the paths users call: affectllm.predict and `affectllm caption` ------------------------------------------
class DecodeSpy:
    """Records what the engine's one decoder was given and what it produced."""

    def __init__(self, monkeypatch):
        import affectllm.engine.core as core

        self.calls, real = [], core.decode

        def spy(model, tokenizer, batch, settings, **kw):
            out = real(model, tokenizer, batch, settings, **kw)
            self.calls.append((model, batch, out))
            return out

        monkeypatch.setattr(core, "decode", spy)

    def logits_and_tokens(self):
        assert len(self.calls) == 1
        model, batch, out = self.calls[0]
        keys = ("input_ids", "attention_mask", "pixel_values", "pixel_mask", "video_timestamps", "input_values",
                "input_values_mask")
        with torch.no_grad():
            logits = model(**{k: batch[k] for k in keys if k in batch}).logits[0, -1].float()
        return logits, out[0].token_ids


def test_predict_from_a_file_path_matches_theirs(converted, clip, monkeypatch):
    """``affectllm.predict(video=path, text=subtitle, prompt=question)``: their logits and greedy tokens."""
    from safetensors.torch import load_file

    import affectllm

    _, model, processor = converted
    exp = json.loads((FIX / "expected.json").read_text())
    spy = DecodeSpy(monkeypatch)
    from affectllm.perception.pipeline import Experts

    affectllm.predict(model, processor, video=str(clip), text=exp["subtitle"], prompt=exp["question"],
                      max_new_tokens=exp["max_new_tokens"], experts=Experts(whisper=None, faces=False, voice=False))
    logits, tokens = spy.logits_and_tokens()
    theirs = load_file(str(FIX / "expected.safetensors"))["next_token_logits"]
    assert float((logits - theirs).abs().max()) < 1e-4  # absolute; their logits span a few units
    assert tokens == exp["greedy_tokens"][: len(tokens)] and len(tokens) == exp["max_new_tokens"]


def test_caption_manifest_subtitle_matches_theirs(converted, clip, monkeypatch, tmp_path):
    """``affectllm caption manifest.csv`` with a ``subtitle`` column: the same logits and greedy tokens."""
    from safetensors.torch import load_file
    from typer.testing import CliRunner

    from affectllm.cli import _build

    summary, _, _ = converted
    exp = json.loads((FIX / "expected.json").read_text())
    folder = tmp_path / "model"
    shutil.copytree(summary["out"], folder)
    cfg = json.loads((folder / "config.json").read_text())
    cfg["asr_model"] = None  # the manifest gives the subtitle (keeps the test offline: no Whisper load)
    (folder / "config.json").write_text(json.dumps(cfg))
    manifest = tmp_path / "m.csv"
    sub = exp["subtitle"].replace('"', '""')
    manifest.write_text(f'id,path,subtitle\nc1,{clip},"{sub}"\n')
    spy = DecodeSpy(monkeypatch)
    res = CliRunner().invoke(_build(), ["caption", str(manifest), "--model", str(folder), "--out",
                                   str(tmp_path / "c.jsonl"), "--prompt", exp["question"], "--max-new-tokens",
                                   str(exp["max_new_tokens"]), "--no-progress", "--device", "cpu"])
    assert res.exit_code == 0, res.output
    logits, tokens = spy.logits_and_tokens()
    theirs = load_file(str(FIX / "expected.safetensors"))["next_token_logits"]
    assert float((logits - theirs).abs().max()) < 1e-4  # absolute; their logits span a few units
    assert tokens == exp["greedy_tokens"][: len(tokens)] and len(tokens) == exp["max_new_tokens"]
