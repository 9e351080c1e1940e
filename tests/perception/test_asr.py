"""Whisper transcription on real speech: exact jfk transcript, RAVDESS phrase, German detected on EmoDB."""

from __future__ import annotations

from math import gcd
from pathlib import Path

import numpy as np
import pytest
import torch

from affectllm.perception.asr import SAMPLE_RATE, Segment, Transcriber, Transcript, normalise_text

JFK = "and so my fellow americans ask not what your country can do for you ask what you can do for your country"


def load_16k(path: Path) -> np.ndarray:
    """Test-side decoding: soundfile + polyphase resampling to 16 kHz mono (independent of affectllm.media)."""
    import soundfile as sf
    from scipy.signal import resample_poly

    audio, sr = sf.read(str(path), dtype="float32", always_2d=True)
    mono = audio.mean(axis=1)
    g = gcd(sr, SAMPLE_RATE)
    return resample_poly(mono, SAMPLE_RATE // g, sr // g).astype(np.float32) if sr != SAMPLE_RATE else mono


@pytest.fixture(scope="module")
def tiny() -> Transcriber:
    return Transcriber("tiny.en")


@pytest.fixture(scope="module")
def base() -> Transcriber:
    return Transcriber("base")


@pytest.fixture(scope="module")
def jfk(shared) -> np.ndarray:
    return load_16k(shared / "media" / "speech" / "jfk.flac")


@pytest.fixture(scope="module")
def ravdess(shared) -> np.ndarray:
    return load_16k(shared / "media" / "ravdess" / "01-01-01-01-01-01-01_audio.wav")


def test_normalise_text():
    assert normalise_text("  Ask NOT, what   your country—can do!") == "ask not what your country can do"
    assert normalise_text("Don't stop.") == "don't stop"


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny", "base"])
def test_jfk_is_transcribed_exactly(which, request, jfk):
    tr: Transcriber = request.getfixturevalue(which)
    out = tr.transcribe(jfk)
    assert isinstance(out, Transcript)
    assert normalise_text(out.text) == JFK
    assert out.language == "en"
    if which == "base":
        assert out.language_probability > 0.8  # detected, not forced
    else:
        assert out.language_probability == 1.0  # English-only model: forced
    assert out.duration == pytest.approx(11.0, abs=0.01)
    # segment timestamps: ordered, inside the clip, covering the speech
    assert all(isinstance(s, Segment) for s in out.segments) and len(out.segments) >= 1
    starts = [s.start for s in out.segments]
    assert starts == sorted(starts) and out.segments[0].start < 0.5
    assert all(0 <= s.start < s.end <= 11.0 + 1e-6 for s in out.segments)
    assert 9.5 < out.segments[-1].end <= 11.0
    assert 1.5 < out.words_per_second < 3.0  # 22 words in about 10.7 s of speech


@pytest.mark.slow
def test_transcription_is_deterministic(tiny, jfk):
    a, b = tiny.transcribe(jfk), tiny.transcribe(jfk)
    assert a.text == b.text and a.segments == b.segments


@pytest.mark.slow
@pytest.mark.parametrize("which", ["tiny", "base"])
def test_ravdess_phrase(which, request, ravdess):
    tr: Transcriber = request.getfixturevalue(which)
    out = tr.transcribe(ravdess)  # 48 kHz stereo source, resampled
    assert "kids are talking by the door" in normalise_text(out.text)
    assert out.language == "en"


@pytest.mark.slow
def test_emodb_german_is_detected_by_base(base, shared):
    audio = load_16k(shared / "media" / "emodb" / "03a01Fa.wav")  # "Der Lappen liegt auf dem Eisschrank."
    code, prob, probs = base.detect_language(audio)
    assert code == "de" and prob > 0.9 and abs(sum(probs.values()) - 1) < 1e-3
    out = base.transcribe(audio, translate=False)  # the translation has its own test
    assert out.language == "de" and out.language_probability > 0.9
    assert "lappen" in normalise_text(out.text) and "eisschrank" in normalise_text(out.text)


@pytest.mark.slow
def test_forced_language_and_english_only_models(base, tiny, shared):
    audio = load_16k(shared / "media" / "emodb" / "03a01Fa.wav")
    forced = base.transcribe(audio, language="German", translate=False)
    assert forced.language == "de" and forced.language_probability == 1.0
    with pytest.raises(ValueError, match="English-only"):
        tiny.transcribe(audio, language="de")
    with pytest.raises(ValueError, match="unknown language"):
        base.transcribe(audio, language="klingon")


@pytest.mark.slow
def test_empty_silent_and_bad_inputs(tiny):
    empty = tiny.transcribe(np.zeros(0, np.float32))
    assert empty.text == "" and empty.segments == [] and empty.language is None
    silent = tiny.transcribe(np.zeros(3 * SAMPLE_RATE, np.float32))
    assert silent.text == "" and silent.words_per_second == 0.0
    with pytest.raises(ValueError, match="mono"):
        tiny.transcribe(np.zeros((2, 16000), np.float32))
    with pytest.raises(ValueError, match="NaN"):
        tiny.transcribe(np.full(16000, np.nan, np.float32))


@pytest.mark.slow
def test_encoder_features_are_shared_with_transcription(base, ravdess, monkeypatch):
    import whisper.model as wm

    calls = []
    original = wm.AudioEncoder.forward
    monkeypatch.setattr(wm.AudioEncoder, "forward", lambda self, x: calls.append(1) or original(self, x))
    base._memo = None
    feats = base.encoder_features(ravdess)
    assert feats.shape == (1, 1500, 512) and feats.dtype == torch.float32
    out = base.transcribe(ravdess)  # language detection + the first window reuse the features
    assert len(calls) == 1
    assert "kids are talking by the door" in normalise_text(out.text)


@pytest.mark.slow
def test_a_loaded_model_can_be_shared(tiny, ravdess):
    other = Transcriber(tiny.model)
    assert other.model is tiny.model
    assert normalise_text(other.transcribe(ravdess).text) == normalise_text(tiny.transcribe(ravdess).text)


@pytest.mark.slow
def test_ravdess_video_through_media_decoder(tiny, shared):
    """The real path of `affectllm caption`: PyAV decodes the mp4's audio track, Whisper transcribes it."""
    media = pytest.importorskip("affectllm.media.audio", reason="affectllm.media is not built yet")
    audio = media.load_audio(shared / "media" / "ravdess" / "01-01-01-01-01-01-01.mp4")
    assert audio.ndim == 1 and abs(len(audio) / SAMPLE_RATE - 3.3) < 0.2
    assert "kids are talking by the door" in normalise_text(tiny.transcribe(audio).text)


def _casia_clip(shared) -> Path:
    """One Mandarin clip of ../shared/corpora (labels.csv is the authority); skip when the corpora are absent."""
    import csv

    labels = shared / "corpora" / "labels.csv"
    if not labels.is_file():
        pytest.skip(f"{labels} is absent (the labelled corpora are not beside this checkout)")
    with labels.open(newline="", encoding="utf-8") as f:
        row = next((r for r in csv.DictReader(f) if r["corpus"] == "casia"), None)
    if row is None:
        pytest.skip(f"{labels} lists no CASIA clip")
    return shared / "corpora" / row["path"]


@pytest.mark.slow
def test_translation_keeps_the_original_transcript_in_one_encoder_pass(base, shared, monkeypatch):
    import whisper.model as wm

    audio = load_16k(shared / "media" / "emodb" / "03a01Fa.wav")  # "Der Lappen liegt auf dem Eisschrank."
    calls = []
    original = wm.AudioEncoder.forward
    monkeypatch.setattr(wm.AudioEncoder, "forward", lambda self, x: calls.append(1) or original(self, x))
    base._memo = None
    out = base.transcribe(audio)
    assert len(calls) == 1  # language detection, transcript and translation share the 2.6-s clip's window
    assert out.language == "de" and not out.language_uncertain
    assert "lappen" in normalise_text(out.text) and "eisschrank" in normalise_text(out.text)  # original kept
    assert out.translation and out.translation.isascii() and normalise_text(out.translation) != normalise_text(out.text)
    assert out.to_dict()["translation"] == out.translation
    # English speech is not translated; translate=False skips it
    assert base.transcribe(audio, translate=False).translation is None


@pytest.mark.slow
def test_mandarin_fixture_is_reported_as_mandarin(base, shared):
    audio = load_16k(_casia_clip(shared))
    out = base.transcribe(audio)
    assert out.language == "zh" and out.language_probability > 0.9 and not out.language_uncertain
    assert any("\u4e00" <= ch <= "\u9fff" for ch in out.text)  # the transcript stays in Chinese characters
    assert out.translation and out.translation.isascii()


def test_language_below_the_threshold_is_uncertain():
    from affectllm.perception.asr import LANGUAGE_UNCERTAIN_BELOW
    from affectllm.perception.pipeline import Perception, cue_lines

    assert not Transcript("x", "zh", 0.93).language_uncertain
    assert Transcript("x", "ko", LANGUAGE_UNCERTAIN_BELOW - 0.01).language_uncertain
    assert not Transcript("", None, 0.0).language_uncertain  # nothing detected: nothing to be unsure of
    p = Perception(source=None, kind="audio", transcript="我马上拿来", language="ko", translation="I'll get it now")
    p.text = {"language": {"code": "ko", "probability": 0.41, "uncertain": True}}
    lines = cue_lines(p)
    assert lines[0] == 'Speech (language uncertain: ko? p=0.41): "我马上拿来"'
    assert lines[1] == 'Translation (en): "I\'ll get it now"'
    p.language, p.text = "zh", {"language": {"code": "zh", "probability": 0.99, "uncertain": False}}
    assert cue_lines(p)[0] == 'Speech (zh, p=0.99): "我马上拿来"'
