"""Prosody: YIN pitch, energy, rate and pauses on synthetic signals and real emotional speech."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy.signal import lfilter

from affectllm.media import load_audio
from affectllm.perception.prosody import Prosody, analyse_prosody, describe_prosody, yin

SR = 16000


def tone(freq: float, seconds: float = 1.0, amp: float = 0.3) -> np.ndarray:
    return (amp * np.sin(2 * np.pi * freq * np.arange(int(seconds * SR)) / SR)).astype(np.float32)


def vowel(f0: float, seconds: float = 1.0) -> np.ndarray:
    """A glottal pulse train through two formant resonators (700, 1200 Hz): strong harmonics, no sine."""
    x = np.zeros(int(seconds * SR))
    x[:: int(SR / f0)] = 1.0
    for formant, r in ((700, 0.97), (1200, 0.95)):
        x = lfilter([1.0], [1.0, -2 * r * np.cos(2 * np.pi * formant / SR), r * r], x)
    return (0.3 * x / np.abs(x).max()).astype(np.float32)


@pytest.mark.parametrize("freq", [80.0, 220.0, 440.0])
def test_pure_tone_pitch_within_2_percent(freq: float) -> None:
    p = analyse_prosody(tone(freq, 2.0))
    assert p.f0_mean_hz == pytest.approx(freq, rel=0.02)
    assert p.voiced_fraction > 0.95 and p.f0_std_hz < 1.0


@pytest.mark.parametrize("f0", [100.0, 160.0])
def test_harmonic_rich_voice_has_no_octave_errors(f0: float) -> None:
    period_f0 = SR / int(SR / f0)
    track, _ = yin(vowel(f0))
    assert np.isfinite(track).mean() > 0.9
    np.testing.assert_allclose(track[np.isfinite(track)], period_f0, rtol=0.01)


def test_silence_and_empty_audio() -> None:
    for audio in (np.zeros(2 * SR, np.float32), np.zeros(0, np.float32), np.zeros(100, np.float32)):
        p = analyse_prosody(audio)
        assert p.f0_mean_hz is None and p.voiced_fraction == 0.0 and p.speech_s == 0.0
        assert p.syllables_per_s == 0.0 and p.pause_count == 0
        assert describe_prosody(p) == ["no voiced speech"]


def test_pauses_rate_and_words() -> None:
    gap = np.zeros(int(0.8 * SR), np.float32)
    syllable = vowel(140.0, 0.18) * np.hanning(int(0.18 * SR)).astype(np.float32)
    short_gap = np.zeros(int(0.07 * SR), np.float32)
    word = np.concatenate([syllable, short_gap] * 4)  # 4 syllables in 1 s
    audio = np.concatenate([gap, word, gap, word, gap, word, gap])
    p = analyse_prosody(audio, words=6)
    # each pause = 0.8-s gap + the word's trailing 70-ms gap; the span ends at the last syllable
    assert p.pause_count == 2 and p.pause_total_s == pytest.approx(2 * 0.87, abs=0.06)
    assert p.longest_pause_s == pytest.approx(0.87, abs=0.03)
    assert p.speech_s == pytest.approx(3 * 1.0 + 1.6 - 0.07, abs=0.05)
    assert 12 * 0.8 <= p.syllables_per_s * p.speech_s <= 12 * 1.2  # 12 nuclei found
    assert p.words_per_s == pytest.approx(6 / p.speech_s)
    assert p.f0_mean_hz == pytest.approx(SR / int(SR / 140.0), rel=0.02)
    assert "long pauses" in describe_prosody(p)


def test_ravdess_angry_is_louder_and_higher_than_neutral(shared: Path) -> None:
    root = shared / "media/ravdess"
    neutral = analyse_prosody(load_audio(root / "01-01-01-01-01-01-01_audio.wav"))
    angry = analyse_prosody(load_audio(root / "01-01-05-02-01-01-01_audio.wav"))
    assert angry.energy_mean_db > neutral.energy_mean_db + 15  # measured -23.6 vs -48.4 dBFS
    assert angry.f0_mean_hz > 1.8 * neutral.f0_mean_hz  # measured 348 vs 118 Hz (male actor)
    assert 90 < neutral.f0_mean_hz < 160
    # "Kids are talking by the door": 7 syllables
    for p in (neutral, angry):
        assert 5 <= round(p.syllables_per_s * p.speech_s) <= 9
    assert "quiet" in describe_prosody(neutral) and "high pitch" in " ".join(describe_prosody(angry))


def test_all_ravdess_and_emodb_clips(shared: Path) -> None:
    clips = sorted((shared / "media/ravdess").glob("*.wav")) + sorted((shared / "media/emodb").glob("*.wav"))
    for clip in clips:
        p = analyse_prosody(load_audio(clip))
        assert isinstance(p, Prosody) and p.f0_mean_hz is not None, clip.name
        assert 60 <= p.f0_min_hz <= p.f0_mean_hz <= p.f0_max_hz <= 500
        assert 0.5 < p.speech_s <= p.duration_s and 0 < p.voiced_fraction <= 1
        assert 1.0 < p.syllables_per_s < 8.0, (clip.name, p.syllables_per_s)
        cues = describe_prosody(p)
        assert cues and all(isinstance(c, str) and c for c in cues)
        d = p.to_dict()
        assert set(d) >= {"f0_mean_hz", "energy_mean_db", "syllables_per_s", "pause_count"}


def test_jfk_speech_has_pauses(shared: Path) -> None:
    p = analyse_prosody(load_audio(shared / "media/speech/jfk.flac"), words=22)
    assert p.pause_count >= 3 and p.longest_pause_s > 0.5  # the famous deliberate delivery
    assert p.words_per_s == pytest.approx(22 / p.speech_s)
    assert "long pauses" in describe_prosody(p)
