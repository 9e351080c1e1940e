"""The starter set: grounded targets cite the measured cues; the labelled faces are real training rows.

(The speaker split of the corpus rows is tested in test_labelled_corpora.py.)
"""

from __future__ import annotations

import numpy as np

from affectllm.instruct.grounded import canonical, grounded_explanation, grounded_report
from affectllm.instruct.starter import face_samples
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


def test_face_samples_are_real_labelled_training_images(shared, tmp_path):
    samples = list(face_samples(shared, tmp_path))
    assert {s.label for s in samples} == {"surprised", "happy", "sad", "angry"}
    assert all(s.kind == "image" and s.split == "train" and not s.synthetic and s.path.is_file() for s in samples)
