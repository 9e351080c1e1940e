"""The starter set: grounded targets cite the measured cues; the labelled faces are real training rows.

(The speaker split of the corpus rows is tested in test_labelled_corpora.py.)
"""

from __future__ import annotations

import numpy as np

from affectllm.instruct.grounded import canonical
from affectllm.instruct.reasoning import grounded_explanation, grounded_report
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
    p = _perception()
    r = parse_report(grounded_report(p, "joy"), perception=p)
    assert r.labels == ["happy", "joyful"] and r.valence == 0.8 and r.arousal == 0.5
    assert "smiles" in r.explanation and "6 of 8 frames" in r.explanation and "0.81" in r.explanation
    assert "high, variable pitch and a loud delivery" in r.explanation
    assert '"We won the game!"' in r.explanation and "happy and joyful" in r.explanation
    assert r.faithful, r.faithfulness_problems


def test_grounded_explanation_says_when_no_face_is_visible():
    e = grounded_explanation(_perception(face=False, words=False), "sad")
    assert "no face was found in any of the 8 frames" in e.lower() and "sad" in e
    assert "smiles" not in e and "face looks" not in e


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


def test_face_speech_rows_pair_a_face_with_same_class_training_speech_only(shared, tmp_path):
    import av

    from affectllm.instruct.starter import StarterSample, face_speech_samples

    wav = shared / "media" / "ravdess" / "01-01-03-01-01-01-01_audio.wav"  # RAVDESS code 03 = happy
    corpus = [StarterSample("r-happy", "audio", wav, "happy", "ravdess", "train", False, {"speaker": "s1"}),
              StarterSample("r-happy-held", "audio", wav, "happy", "ravdess", "heldout", False, {"speaker": "s9"}),
              StarterSample("r-calm", "audio", wav, "calm", "ravdess", "train", False, {"speaker": "s1"})]
    rows = face_speech_samples(shared, corpus, tmp_path, per_face=3)
    assert [r.id for r in rows] == ["face-happy-r-happy"]  # held-out speech and classes without a face: never
    r = rows[0]
    assert (r.kind, r.label, r.split, r.synthetic, r.source) == ("video", "happy", "train", True, "corpus+face")
    assert r.meta["speech"] == "r-happy" and r.meta["speaker"] == "s1"
    with av.open(str(r.path)) as c:
        assert c.streams.video and c.streams.audio
        assert abs(float(c.duration) / 1e6 - __import__("soundfile").info(str(wav)).duration) < 0.5
