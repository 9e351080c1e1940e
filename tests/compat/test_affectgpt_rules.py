"""AffectGPT's four media rules, each pinned with numbers from their code (ouyangjutian/AffectGPT, run under
their pinned environment: pytorchvideo 0.1.5's ConstantClipsPerVideoSampler, their ``transform_audio``,
transformers 4.49's HuBERT, their ``load_video``), and the options that switch them on."""

from __future__ import annotations

import numpy as np
import pytest
import torch

# pytorchvideo ConstantClipsPerVideoSampler(clip_duration=2, clips_per_video=8) through their load_audio:
# int(start * 16000), int(end * 16000) for each clip
THEIR_CLIPS_16S = [(28000 * i, 28000 * i + 32000) for i in range(8)]  # starts 0, 1.75, ... 12.25 s
THEIR_CLIPS_9_3S = [(0, 32000), (14600, 46600), (29200, 61200), (43800, 75800), (58400, 90400),
                    (73000, 105000), (87600, 119600), (102200, 134200)]


def test_clip_starts_follow_constant_clips_per_video_sampler():
    from affectllm.compat.affectgpt import clip_bounds

    assert clip_bounds(16 * 16000) == THEIR_CLIPS_16S
    assert clip_bounds(int(9.3 * 16000)) == THEIR_CLIPS_9_3S
    # the other declared rule ("ends", the default of non-AffectGPT towers): last clip ends at the end
    assert clip_bounds(16 * 16000, spacing="ends")[-1] == (14 * 16000, 16 * 16000)


def test_each_clip_loses_its_own_mean_before_the_joint_normalisation():
    """A ramp on a DC offset: their waveform2melspec subtracts each clip's mean in place, so every raw clip
    HuBERT sees is the same centred ramp (arange(32000) - 15999.5) / 16000, whatever its start."""
    from affectllm.compat.affectgpt import clip_waveform

    n = int(9.3 * 16000)
    wave = 0.7 + torch.arange(n, dtype=torch.float64) / 16000  # [S] seconds, offset 0.7
    clips = clip_waveform(wave)  # [8, 32000]
    centred = (torch.arange(32000, dtype=torch.float64) - 15999.5) / 16000
    assert torch.allclose(clips, centred.expand(8, -1), atol=1e-9)
    raw = clip_waveform(wave, clip_mean=False)  # today's rule for other towers: the clips as cut
    assert float(raw[1, 0]) == pytest.approx(0.7 + 14600 / 16000)


def _stable_layer_norm_hubert():
    from transformers import HubertConfig, HubertModel

    torch.manual_seed(0)
    model = HubertModel(HubertConfig(hidden_size=32, num_hidden_layers=4, num_attention_heads=2,
                                     intermediate_size=64, conv_dim=[16, 16], conv_kernel=[10, 8],
                                     conv_stride=[5, 8], num_conv_pos_embeddings=16, num_conv_pos_embedding_groups=2,
                                     feat_extract_norm="layer", do_stable_layer_norm=True)).eval()
    with torch.no_grad():  # a final norm that does something
        model.encoder.layer_norm.weight.uniform_(0.5, 2.0)
        model.encoder.layer_norm.bias.uniform_(-1.0, 1.0)
    return model


def test_last_layer_is_last_hidden_state_for_stable_layer_norm_hubert():
    """transformers 4.49 returned hidden_states[-1] = encoder.layer_norm(last layer) = last_hidden_state; 5.x
    returns the last layer before that norm. ``last_layer="last_hidden_state"`` restores what AffectGPT averaged."""
    from affectllm.configuration_affectllm import AudioTowerSpec
    from affectllm.towers.audio import average_layers

    model = _stable_layer_norm_hubert()
    x = torch.randn(2, 8000)
    with torch.no_grad():
        out = model(x, output_hidden_states=True)
        normed = model.encoder.layer_norm(out.hidden_states[-1])
    assert torch.allclose(out.last_hidden_state, normed, atol=1e-6)  # what 4.49 put at hidden_states[-1]
    assert float((out.hidden_states[-1] - out.last_hidden_state).abs().max()) > 0.1
    theirs = torch.stack([*out.hidden_states[-4:-1], out.last_hidden_state]).mean(0)  # their layer_ids [-4..-1]
    spec = AudioTowerSpec(layers=[-4, -3, -2, -1], last_layer="last_hidden_state")
    assert torch.allclose(average_layers(out, spec), theirs, atol=1e-6)
    plain = average_layers(out, AudioTowerSpec(layers=[-4, -3, -2, -1]))  # default: as transformers returns
    assert torch.allclose(plain, torch.stack(out.hidden_states[-4:]).mean(0), atol=1e-6)
    with pytest.raises(ValueError, match="last_layer"):
        AudioTowerSpec(last_layer="final")


def test_engine_path_picks_their_frame_indices(tmp_path):
    """A 9.3-s, 10-fps file (93 frames): their load_video keeps arange(0, 93, 93/8).astype(int)."""
    from affectllm.engine.perceiving import PerceptionCache
    from affectllm.perception.pipeline import Experts
    from affectllm.testing_inputs import write_offset_clip

    clip = write_offset_clip(tmp_path / "c.mov", seconds=9.3, fps=10, size=32)
    cache = PerceptionCache(Experts(whisper=None, faces=False, voice=False), frame_sampling="affectgpt")
    p = cache.perceive(str(clip))
    theirs = [0, 11, 23, 34, 46, 58, 69, 81]
    assert np.round(np.asarray(p.timestamps) * 10).astype(int).tolist() == theirs
    uniform = PerceptionCache(Experts(whisper=None, faces=False, voice=False)).perceive(str(clip))
    assert np.round(np.asarray(uniform.timestamps) * 10).astype(int).tolist() != theirs  # bin centres
    assert cache.settings()["frame_sampling"] == "affectgpt"  # part of the cache key


def test_converter_declares_their_rules():
    from affectllm.compat.affectgpt import affectgpt_config

    cfg = affectgpt_config(vision_model=None, audio_model=None, text_model=None)
    audio, vision = cfg.spec("audio"), cfg.spec("vision")
    assert (audio.clip_spacing, audio.clip_mean, audio.last_layer) == ("pytorchvideo", True, "last_hidden_state")
    assert vision.frame_sampling == "affectgpt"
    from affectllm.configuration_affectllm import AudioTowerSpec, VisionTowerSpec

    default_a, default_v = AudioTowerSpec(), VisionTowerSpec()  # other models keep today's behaviour
    assert (default_a.clip_spacing, default_a.clip_mean, default_a.last_layer) == ("ends", False, "hidden_states")
    assert default_v.frame_sampling == "uniform"


def test_old_conversion_gets_the_rules_written_in(tmp_path):
    import json

    from affectllm.compat.affectgpt_hub import refresh_media_rules

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"audio_config": {"clips": 8}, "vision_config": {"num_frames": 8}}))
    refresh_media_rules(cfg)
    got = json.loads(cfg.read_text())
    assert got["audio_config"] == {"clips": 8, "clip_spacing": "pytorchvideo", "clip_mean": True,
                                   "last_layer": "last_hidden_state"}
    assert got["vision_config"] == {"num_frames": 8, "frame_sampling": "affectgpt"}


def test_float16_stored_llm_loads_in_float32_unless_asked(tmp_path):
    from transformers import Qwen2Config, Qwen2ForCausalLM

    from affectllm.configuration_affectllm import AffectLLMConfig
    from affectllm.language_model import build_language_model

    Qwen2ForCausalLM(Qwen2Config(vocab_size=64, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, num_key_value_heads=1)).half().save_pretrained(tmp_path)
    cfg = AffectLLMConfig(text_model=str(tmp_path))
    llm, _ = build_language_model(cfg)
    assert llm.dtype == torch.float32  # their fp16 Qwen2.5 on CPU: slow and off the reference
    llm, _ = build_language_model(cfg, dtype=torch.bfloat16)
    assert llm.dtype == torch.bfloat16
