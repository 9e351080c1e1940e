"""Fusion of face and voice: each modality missing, the face-class mapping, calibration measures."""

from __future__ import annotations

import numpy as np
import pytest

from affectllm.perception.fusion import (
    FACE_WEIGHT,
    expected_calibration_error,
    face_to_base,
    fuse,
    fused_line,
    reliability_bins,
)
from affectllm.perception.voice import BASE_CLASSES

VOICE = {c: 0.02 for c in BASE_CLASSES} | {"angry": 0.7, "fearful": 0.16}  # sums to 1
FACE = {"angry": 0.6, "disgust": 0.05, "fear": 0.05, "happy": 0.05, "sad": 0.1, "surprise": 0.05, "neutral": 0.1}


def _sum(f):
    return sum(f["probs"].values())


def test_face_classes_map_onto_base_classes():
    p = face_to_base(FACE)
    assert p.shape == (len(BASE_CLASSES),) and p.sum() == pytest.approx(1)
    i = BASE_CLASSES.index
    assert p[i("disgusted")] == pytest.approx(p[i("fearful")])  # disgust -> disgusted, fear -> fearful
    assert p[i("calm")] == p[i("neutral")] == p[i("bored")]  # the face cannot tell these apart
    assert p.argmax() == i("angry")


def test_both_experts():
    f = fuse(voice=VOICE, face=FACE)
    assert f["sources"] == ["face", "voice"] and f["weights"] == {"face": FACE_WEIGHT, "voice": 1.0}
    assert f["top"] == "angry" and _sum(f) == pytest.approx(1, abs=1e-3)
    assert f["confidence"] > VOICE["angry"]  # two agreeing experts are surer than one
    assert f["valence"] < 0 < f["arousal"]
    assert fused_line(f).startswith("Fused estimate (face + voice): angry ")


def test_no_face_uses_the_voice_alone():
    f = fuse(voice=VOICE, face=None)
    assert f["sources"] == ["voice"]
    for c in BASE_CLASSES:  # only the EPS floor separates it from the voice expert
        assert f["probs"][c] == pytest.approx(VOICE[c], abs=2e-3)


def test_no_speech_uses_the_face_alone():
    f = fuse(voice=None, face=FACE)
    assert f["sources"] == ["face"] and f["top"] == "angry" and _sum(f) == pytest.approx(1, abs=1e-3)
    # a weight of 0.5 flattens the face's distribution (its vote is a prior, not fitted)
    assert f["probs"]["angry"] < face_to_base(FACE)[BASE_CLASSES.index("angry")]


def test_nothing_measured_gives_no_distribution():
    for f in (fuse(), fuse(voice=None, face={}), fuse(voice={}, face=None)):
        assert f["probs"] is None and f["sources"] == [] and f["note"] == "no face seen and no voiced speech heard"
        assert fused_line(f).startswith("Fused estimate: none (")
    assert fused_line({}) is None


def test_disagreement_keeps_both_in_the_top3():
    sad_voice = {c: 0.02 for c in BASE_CLASSES} | {"sad": 0.7, "neutral": 0.14}
    f = fuse(voice=sad_voice, face=FACE)
    top3 = sorted(f["probs"], key=f["probs"].get, reverse=True)[:3]
    assert f["top"] == "sad" and "angry" in top3


def test_calibration_measures():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 3, 2000)
    conf = rng.uniform(0.55, 1.0, 2000)  # stays the argmax
    correct = rng.uniform(size=2000) < conf  # calibrated by construction
    pred = np.where(correct, y, (y + 1) % 3)
    probs = np.zeros((2000, 3))
    probs[np.arange(2000), pred] = conf
    probs[np.arange(2000), (pred + 1) % 3] = 1 - conf
    assert expected_calibration_error(probs, y) < 0.04
    over = probs.copy()
    over[np.arange(2000), pred] = 1.0  # claims certainty
    over[np.arange(2000), (pred + 1) % 3] = 0.0
    assert expected_calibration_error(over, y) > 0.2
    bins = reliability_bins(probs, y, 10)
    assert len(bins) == 10 and sum(b["n"] for b in bins) == 2000


def test_segments_pool_voice_probabilities_and_refuse():
    from affectllm.captioning.records import pool_evidence

    sad = {c: 0.0 for c in BASE_CLASSES} | {"sad": 1.0}
    seg = [{"voice": {"probs": VOICE, "valence": -0.5, "cues": ["loud"]}, "face": {}, "text": {}},
           {"voice": {"probs": sad, "valence": -0.7, "cues": []}, "face": {}, "text": {}},
           {"voice": {"probs": None, "note": "no voiced speech", "cues": []}, "face": {}, "text": {}}]
    ev = pool_evidence(seg, [3.0, 1.0, 2.0])  # seconds per segment
    assert ev["voice"]["probs"]["angry"] == pytest.approx(0.75 * 0.7, abs=1e-4)
    assert ev["voice"]["probs"]["sad"] == pytest.approx(0.75 * 0.02 + 0.25, abs=1e-4)
    assert ev["voice"]["top"] == "angry" and ev["fused"]["sources"] == ["voice"]
    assert ev["fused"]["top"] == "angry"
    assert pool_evidence([seg[2]], [1.0])["fused"]["probs"] is None


def test_text_words_refine_but_never_stand_alone():
    from affectllm.perception.fusion import text_to_base

    words = [{"word": "happy", "emotions": ["anticipation", "joy", "trust"]},
             {"word": "perfect", "emotions": ["joy"]}, {"word": "hmm", "emotions": ["anticipation"]}]
    text = text_to_base(words)
    assert abs(sum(text.values()) - 1) < 1e-9 and max(text, key=text.get) == "happy"
    assert text_to_base([]) is None and text_to_base([{"word": "x", "emotions": ["trust"]}]) is None
    assert fuse(text=text)["probs"] is None  # words alone are no estimate
    with_text, without = fuse(voice=VOICE, face=FACE, text=text), fuse(voice=VOICE, face=FACE)
    assert with_text["sources"] == ["face", "text", "voice"]
    assert with_text["probs"]["happy"] > without["probs"]["happy"]


def test_a_unanimous_face_and_words_outweigh_one_confident_voice():
    """The shipped example clip: espeak speech the voice head calls angry, a smiling face, the words happy/perfect."""
    from affectllm.perception.fusion import text_to_base

    voice = {"neutral": 0.0171, "calm": 0.1059, "happy": 0.0025, "sad": 0.0005, "angry": 0.8635, "fearful": 0.0021,
             "disgusted": 0.0027, "surprised": 0.0, "bored": 0.0057}
    face = {"angry": 0.0, "disgust": 0.0, "fear": 0.0, "happy": 1.0, "sad": 0.0, "surprise": 0.0, "neutral": 0.0}
    text = text_to_base([{"word": "happy", "emotions": ["joy"]}, {"word": "perfect", "emotions": ["joy"]}])
    assert fuse(voice=voice, face=face, text=text)["top"] == "happy"
