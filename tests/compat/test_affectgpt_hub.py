"""``--model affectgpt``: choosing the published file, the offline error, and the meta-device dry run."""

from __future__ import annotations

import pytest


def test_pick_checkpoint_prefers_variant_and_epoch_30():
    from affectllm.compat.affectgpt_hub import pick_checkpoint

    files = ["README.md",
             "emercoarse_highlevelfilter4_outputhybird_bestsetup_bestfusion_lz/checkpoint_000030_loss_0.602.pth",
             "emercoarse_highlevelfilter4_outputhybird_bestsetup_bestfusion_lz/checkpoint_000060_loss_0.480.pth",
             "mercaptionplus_outputhybird_bestsetup_bestfusion_frame_lz/checkpoint_000020_loss_0.700.pth",
             "mercaptionplus_outputhybird_bestsetup_bestfusion_frame_lz/checkpoint_000030_loss_0.650.pth"]
    assert pick_checkpoint(files, "frame").endswith("frame_lz/checkpoint_000030_loss_0.650.pth")
    assert pick_checkpoint(files, "face").endswith("bestfusion_lz/checkpoint_000030_loss_0.602.pth")
    with pytest.raises(FileNotFoundError, match="affectllm convert affectgpt"):
        pick_checkpoint(files[:3], "frame")


def test_model_affectgpt_offline_error_names_the_fix(tmp_path, monkeypatch):
    import huggingface_hub

    from affectllm.compat.affectgpt_hub import ensure_affectgpt

    monkeypatch.setenv("AFFECTLLM_HOME", str(tmp_path))

    def offline(*a, **k):
        raise ConnectionError("no network")

    monkeypatch.setattr(huggingface_hub, "list_repo_files", offline)
    with pytest.raises(RuntimeError, match="MERChallenge/AffectGPT.*affectllm convert affectgpt"):
        ensure_affectgpt("affectgpt")
    assert not any(tmp_path.rglob("model.safetensors"))


@pytest.mark.slow
def test_dry_run_reports_published_sizes():
    from affectllm.compat.affectgpt_hub import dry_run

    r = dry_run("frame")
    p = r["parameters"]
    assert p["LLM (Qwen2.5-7B-Instruct) + LoRA"] - r["lora_parameters"] == 7_615_616_512  # Qwen2.5-7B
    assert r["lora_parameters"] == 40_370_176  # r=16 on q,k,v,o,gate,up,down x 28 layers
    assert p["vision tower (CLIP ViT-L/14)"] == 303_966_208
    assert p["audio tower (HuBERT-large)"] == 315_438_720
    assert p["projector"] == 16_798_468
    assert 15.0 < r["weights_bf16_gib"] < 16.0 and 6.0 < r["weights_4bit_gib"] < 7.0
