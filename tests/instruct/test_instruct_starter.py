"""The starter set: grounded targets cite the measured cues, and the split never trains on held-out takes."""

from __future__ import annotations

import numpy as np

from affectllm.instruct.grounded import canonical, grounded_explanation, grounded_report
from affectllm.instruct.starter import RAVDESS_CODES, real_samples
from affectllm.perception.pipeline import Perception
from affectllm.report import parse_report


def _perception(face: bool = True, words: bool = True) -> Perception:
    p = Perception(source="x.mp4", kind="video", frames=np.zeros((8, 4, 4, 3), np.uint8))
    if face:
        p.face = {"frames": 8, "frames_with_face": 6, "mean_probs": {"happy": 0.81, "neutral": 0.1}, "top": "happy"}
    else:
        p.face = {"frames": 8, "frames_with_face": 0}
    p.voice = {"cues": ["high, variable pitch", "loud"]}
    if words:
        p.transcript = "We won the game!"
        p.text = {"emotion_words": ["won"]}
    return p


def test_grounded_report_cites_face_voice_and_words_and_parses_back():
    text = grounded_report(_perception(), "joy")
    r = parse_report(text)
    assert r.labels == ["happy", "joyful"] and r.valence == 0.8 and r.arousal == 0.5
    assert "face looks happy (0.81) in 6 of 8 frames" in r.explanation
    assert "high, variable pitch and loud" in r.explanation
    assert '"We won the game!"' in r.explanation and "feels happy and joyful" in r.explanation


def test_grounded_explanation_says_when_no_face_is_visible():
    e = grounded_explanation(_perception(face=False, words=False), "sad")
    assert e.startswith("No face is visible; the voice shows") and e.endswith("feels sad.")


def test_canonical_aliases_and_unknown_labels():
    assert canonical("Anger") == "angry" and canonical("boredom") == "bored"
    try:
        canonical("schadenfreude")
    except ValueError as e:
        assert "unknown starter label" in str(e)
    else:  # pragma: no cover
        raise AssertionError("unknown label accepted")


def test_real_samples_hold_out_strong_takes_and_second_emodb_take(shared, tmp_path):
    samples = list(real_samples(shared, tmp_path))
    ravdess = [s for s in samples if s.source == "ravdess" and s.kind == "audio"]
    assert len(ravdess) == 15  # neutral has one intensity, the 7 other emotions two
    assert {s.label for s in ravdess} == set(RAVDESS_CODES.values())
    assert all((s.split == "heldout") == (s.path.name.split("-")[3] == "02") for s in ravdess)
    emodb = [s for s in samples if s.source == "emodb"]
    train_labels = [s.label for s in emodb if s.split == "train"]
    assert len(train_labels) == len(set(train_labels)) == 7  # one take of each EmoDB emotion is trained on
    assert any(s.id == "ravdess-video-01" and s.split == "heldout" for s in samples)
    assert {s.label for s in samples if s.kind == "image"} == {"surprised", "happy", "sad", "angry"}
