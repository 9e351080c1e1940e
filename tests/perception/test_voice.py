"""The voice-emotion expert: faithful encoder steps, head shape and determinism, shipped weights, a real clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from affectllm.perception.voice import (
    BASE_CLASSES,
    MIN_SAMPLES,
    VoiceExpert,
    VoiceHead,
    clip_mel,
    default_weights_path,
    encode_layers,
    valence_arousal,
    voice_line,
)


@pytest.fixture(scope="module")
def encoder():
    """A tiny random openai-whisper AudioEncoder whose 50-frame positional table is exactly 1 s of audio."""
    from whisper.model import AudioEncoder

    torch.manual_seed(0)
    return AudioEncoder(n_mels=80, n_ctx=50, n_state=32, n_head=2, n_layer=2).eval()


@pytest.fixture(scope="module")
def expert() -> VoiceExpert:
    torch.manual_seed(1)
    head = VoiceHead(64, len(BASE_CLASSES))
    torch.nn.init.normal_(head.linear.weight, std=0.5)
    return VoiceExpert(head, layers=1)


def _tone(seconds: float, hz: float = 220.0) -> np.ndarray:
    t = np.arange(int(seconds * 16000)) / 16000
    return (0.3 * np.sin(2 * np.pi * hz * t) * (1 + 0.5 * np.sin(2 * np.pi * 3 * t))).astype(np.float32)


def test_partial_pass_equals_whisper_forward_when_the_clip_fills_the_table(encoder):
    audio = _tone(1.0)  # 100 mel frames -> 50 encoder frames = the whole positional table
    mel = clip_mel(audio, 80)
    assert mel.shape == (80, 100)
    with torch.no_grad():
        full = encoder(mel.unsqueeze(0))[0]  # [50, 32]: openai-whisper's own forward, final output
    pooled = encode_layers(encoder, audio, [2])[2]  # layer 2 = after ln_post for a 2-block encoder
    want = torch.cat([full.mean(0), full.std(0, unbiased=False)]).numpy()
    np.testing.assert_allclose(pooled, want, rtol=1e-5, atol=1e-5)


def test_shorter_clip_uses_only_its_frames(encoder):
    feats = encode_layers(encoder, _tone(0.6), [0, 1])
    assert set(feats) == {0, 1} and all(v.shape == (64,) for v in feats.values())
    # appending silence changes the features: nothing is padded to a fixed window
    longer = encode_layers(encoder, np.concatenate([_tone(0.6), np.zeros(4000, np.float32)]), [1])[1]
    assert not np.allclose(feats[1], longer)


def test_head_output_shape_sum_and_determinism(encoder, expert):
    audio = _tone(0.8)
    a, b = expert.estimate(audio, encoder), expert.estimate(audio, encoder)
    assert a == b
    assert list(a["probs"]) == list(BASE_CLASSES)
    assert sum(a["probs"].values()) == pytest.approx(1.0, abs=1e-3)
    assert a["top"] == max(a["probs"], key=a["probs"].get)
    assert -1 <= a["valence"] <= 1 and -1 <= a["arousal"] <= 1
    probs = expert.predict(np.random.default_rng(0).normal(size=(5, 64)))
    assert probs.shape == (5, len(BASE_CLASSES))
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert voice_line(a).startswith(f"Voice expression: {a['top']} ")


def test_nothing_measured_is_said_plainly(encoder, expert):
    assert expert.estimate(_tone(0.2), encoder) == {"probs": None,
                                                    "note": f"audio shorter than {MIN_SAMPLES / 16000:.1f} s"}
    assert expert.estimate(_tone(0.8), encoder, voiced=False)["note"] == "no voiced speech"
    wide = VoiceExpert(VoiceHead(128), layers=1)
    assert "32-wide" in wide.estimate(_tone(0.8), encoder)["note"]
    assert voice_line({"probs": None}) is None


def test_valence_arousal_map():
    one_hot = np.eye(len(BASE_CLASSES))
    assert valence_arousal(one_hot[BASE_CLASSES.index("happy")]) == pytest.approx((0.8, 0.5))
    assert valence_arousal(one_hot[BASE_CLASSES.index("sad")]) == pytest.approx((-0.7, -0.4))


def test_save_load_roundtrip(tmp_path, expert):
    expert.info = {"note": "test"}
    expert.save(tmp_path / "h.safetensors")
    back = VoiceExpert.load(tmp_path / "h.safetensors")
    x = np.random.default_rng(1).normal(size=(3, 64))
    np.testing.assert_array_equal(back.predict(x), expert.predict(x))
    assert (back.layer, back.classes, back.info) == (1, BASE_CLASSES, {"note": "test"})
    with pytest.raises(FileNotFoundError, match="train_voice_expert.py"):
        VoiceExpert.load(tmp_path / "missing.safetensors")


def test_shipped_weights_are_small_and_documented():
    path = default_weights_path()
    assert path.stat().st_size < 200_000  # 3 blocks x 1024 inputs x 9 classes + standardisation, float32
    shipped = VoiceExpert.load()
    blocks = len(shipped.layers)  # Whisper-base blocks pooled side by side, each 2 x 512
    assert shipped.classes == BASE_CLASSES and shipped.head.mean.shape == (1024 * blocks,)
    assert list(shipped.layers) == shipped.info["layer"]
    assert shipped.info["whisper"] == "base" and 0 < shipped.info["cv_macro_top1"] <= 1
    assert (Path(path).parent / "REPORT.md").is_file() and (Path(path).parent / "reliability.png").is_file()


@pytest.mark.slow
def test_real_ravdess_angry_clip_has_angry_in_top3(shared):
    from affectllm.media import load_audio
    from affectllm.perception.asr import Transcriber

    audio = load_audio(shared / "media" / "ravdess" / "01-01-05-01-01-01-01_audio.wav")  # emotion 05 = angry
    est = VoiceExpert.load().estimate(audio, Transcriber("base").model.encoder)
    top3 = sorted(est["probs"], key=est["probs"].get, reverse=True)[:3]
    assert "angry" in top3, est["probs"]
    assert est["arousal"] > 0  # angry, fearful, happy and surprised are all high-arousal


@pytest.fixture(scope="module")
def experts():
    from affectllm.perception.pipeline import Experts

    return Experts(whisper="base", faces=False)


@pytest.mark.slow
def test_pipeline_reports_voice_and_fused_evidence(shared, experts):
    from affectllm.perception.pipeline import cue_lines, perceive

    p = perceive(shared / "media" / "ravdess" / "01-01-05-01-01-01-01_audio.wav", experts=experts)
    ev = p.evidence()
    assert ev["voice"]["probs"] and ev["voice"]["top"] in BASE_CLASSES and "f0_mean_hz" in ev["voice"]  # prosody kept
    # RAVDESS's sentence ("Kids are talking by the door") reads as neutral words: the text expert joins the
    # pool but neutral words are no evidence (fusion.words_as_evidence), so the angry voice still decides
    assert ev["fused"]["sources"] == ["text", "voice"] and ev["fused"]["top"] == ev["voice"]["top"]
    assert ev["text"]["expert"]["top"][0][0] == "neutral"
    lines = cue_lines(p)
    assert any(x.startswith("Voice expression: ") for x in lines)
    assert any(x.startswith("Words (text expert, transcript): ") for x in lines)
    assert any(x.startswith("Fused estimate (") for x in lines)


@pytest.mark.slow
def test_pipeline_on_silence_says_nothing_was_heard(experts):
    from affectllm.perception.pipeline import cue_lines, perceive

    p = perceive(audio=np.zeros(32000, np.float32), experts=experts)
    assert p.voice["probs"] is None and p.voice["note"] == "no voiced speech"
    assert p.fused["probs"] is None
    assert any(x.startswith("Fused estimate: none") for x in cue_lines(p))
    assert not any(x.startswith("Voice expression") for x in cue_lines(p))


def test_a_head_on_several_blocks_reads_them_side_by_side(tmp_path, encoder):
    torch.manual_seed(2)
    head = VoiceHead(128, len(BASE_CLASSES))  # blocks 0 and 1 of the tiny encoder: 2 x 64
    torch.nn.init.normal_(head.linear.weight, std=0.5)
    two = VoiceExpert(head, layers=(0, 1))
    audio = _tone(0.8)
    pooled = encode_layers(encoder, audio, [0, 1])
    x = two.features(pooled)
    np.testing.assert_array_equal(x, np.concatenate([pooled[0], pooled[1]]))
    est = two.estimate(audio, encoder)
    np.testing.assert_allclose([est["probs"][c] for c in BASE_CLASSES], two.predict(x)[0], atol=1e-4)
    cached = np.stack([pooled[0], pooled[1], pooled[1]])[None]  # [1, L=3, 64]: every block, as the cache holds
    np.testing.assert_array_equal(two.features_of_blocks(cached)[0], x)
    two.save(tmp_path / "two.safetensors")
    back = VoiceExpert.load(tmp_path / "two.safetensors")
    assert back.layers == (0, 1) and back.layer == (0, 1)
    assert back.estimate(audio, encoder) == est
    one_block = VoiceExpert(head, layers=1)  # 128 inputs, but one 64-wide block: said, not crashed
    assert one_block.estimate(audio, encoder)["probs"] is None
