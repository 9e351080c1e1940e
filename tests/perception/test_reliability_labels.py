"""Per-expert reliability in the fusion, text standing alone, and open-vocabulary label sets."""

from __future__ import annotations

import numpy as np
import pytest

from affectllm.perception.fusion import fuse, fuse_evidence
from affectllm.perception.label_sets import FINE_TO_BASE, LABEL_MASS, fine_distribution, select
from affectllm.perception.reliability import face_reliability, text_reliability, voice_reliability
from affectllm.perception.voice import BASE_CLASSES

ANGRY_VOICE = {c: 0.01 for c in BASE_CLASSES} | {"angry": 0.92}  # sums to 1
HAPPY_FACE = {"angry": 0.02, "disgust": 0.02, "fear": 0.02, "happy": 0.86, "sad": 0.02, "surprise": 0.02,
              "neutral": 0.04}
FINE = dict.fromkeys(FINE_TO_BASE, 0.01) | {"nervousness": 0.5, "fear": 0.23}  # 26 x 0.01 + 0.73 = 0.99
FINE = {k: v / sum(FINE.values()) for k, v in FINE.items()}
EXPERT = {"model": "fixture", "read": "transcript", "text": "I am so worried about tomorrow, what if it fails",
          "fine": FINE, "base": {c: 0.02 for c in BASE_CLASSES} | {"fearful": 0.84}, "valence": -0.5,
          "arousal": 0.5, "top": [["nervousness", 0.5], ["fear", 0.23], ["neutral", 0.01]], "words": 10}
VOICE_EV = {"probs": ANGRY_VOICE, "duration_s": 4.0, "speech_s": 3.5, "pause_total_s": 0.3, "domain_distance": 1.0}
FACE_EV = {"frames": 8, "frames_with_face": 8, "mean_probs": HAPPY_FACE, "detection_score": 0.9, "face_size": 0.3}


def test_unreliable_voice_is_down_weighted_by_its_numbers():
    r, reasons = voice_reliability(VOICE_EV | {"domain_distance": 2.6})  # twice the in-domain bound
    assert r == pytest.approx((1.3 / 2.6) ** 4)
    assert "audio distance from the acted corpora 2.60 (out of domain)" in reasons and "speech 3.2 s" in reasons
    trusted = fuse_evidence(FACE_EV, VOICE_EV, {})
    flagged = fuse_evidence(FACE_EV, VOICE_EV | {"domain_distance": 2.6}, {})
    assert trusted["reliability"]["voice"]["weight"] == 1.0
    assert flagged["reliability"]["voice"]["weight"] == pytest.approx(0.0625, abs=1e-4)
    assert flagged["reliability"]["face"]["weight"] == pytest.approx(0.9)
    assert flagged["probs"]["happy"] > trusted["probs"]["happy"] and flagged["top"] == "happy"


def test_face_and_short_speech_reasons():
    r, reasons = face_reliability({"frames": 8, "frames_with_face": 2, "mean_probs": HAPPY_FACE,
                                   "detection_score": 0.8, "face_size": 0.06})
    assert r == pytest.approx(0.25 * 0.8 * 0.5)
    # each factor is a reason; the ones that lower the weight carry a flag (explanations cite only those)
    assert reasons == ["face in 2/8 frames (partial)", "detection confidence 0.80",
                       "face 6 % of the frame height (small)"]
    assert face_reliability({"frames": 8, "frames_with_face": 0}) == (0.0, ["no face in any frame"])
    r, reasons = voice_reliability({"probs": ANGRY_VOICE, "duration_s": 1.0, "speech_s": 0.8})
    assert r == pytest.approx(0.8 / 1.5) and reasons[0] == "speech 0.8 s (short)"


def test_text_expert_weight_scales_with_words_and_language():
    r, source, reasons = text_reliability({"expert": EXPERT, "language": {"probability": 0.41}})
    assert source == "expert" and r == pytest.approx(0.41 / 0.8)
    assert "language probability 0.41 (low)" in reasons
    one_word = EXPERT | {"text": "好", "words": 1}
    r, _, reasons = text_reliability({"expert": one_word})
    assert r == pytest.approx(0.25) and "1 word (too few)" in reasons
    r, _, _ = text_reliability({"expert": EXPERT | {"text": "我真的很害怕明天会失败", "words": 1}})
    assert r == 1.0  # 11 CJK characters count as 5 words


def test_text_stands_alone_and_every_modality_has_a_reason():
    f = fuse_evidence({"frames": 8, "frames_with_face": 0}, {"probs": None, "note": "no voiced speech"},
                      {"expert": EXPERT})
    assert f["sources"] == ["text"] and f["top"] == "fearful"
    assert f["reliability"]["face"] == {"weight": 0.0, "reasons": ["no face in any frame"]}
    assert f["reliability"]["voice"] == {"weight": 0.0, "reasons": ["no voiced speech"]}
    assert f["reliability"]["text"]["weight"] == 1.0
    assert f["labels"][0][0] == "nervous" and f["labels"][0][1] >= 0.5  # fearful 0.84 x nervousness 0.5 / 0.73
    # the lexicon fallback still only refines
    lex = {"emotion_words": [{"word": "happy", "emotions": ["joy"]}]}
    g = fuse_evidence({}, {}, lex)
    assert g["probs"] is None and g["labels"] == [] and "lexicon words alone are no estimate" in \
        g["reliability"]["text"]["reasons"]


def test_text_expert_has_a_real_weight_against_the_voice():
    f = fuse_evidence({}, VOICE_EV, {"expert": EXPERT})
    assert f["weights"] == {"text": 1.0, "voice": 1.0}
    lexicon = fuse(voice=ANGRY_VOICE, text={c: 0.02 for c in BASE_CLASSES} | {"fearful": 0.84})
    assert f["probs"]["fearful"] > lexicon["probs"]["fearful"]  # the old lexicon rule weighed text 0.5


def test_label_set_mass_threshold_max_size_and_order():
    dist = {"nervousness": 0.4, "fear": 0.25, "sadness": 0.2, "neutral": 0.1, "joy": 0.05}
    assert select(dist, mass=0.5) == [["nervous", 0.4], ["afraid", 0.25]]  # 0.65 >= 0.5: stop
    assert select(dist, mass=0.3) == [["nervous", 0.4]]
    assert select(dist, mass=0.99, max_size=3) == [["nervous", 0.4], ["afraid", 0.25], ["sad", 0.2]]
    assert select({"joy": 0.3, "amusement": 0.3, "neutral": 0.4}, mass=1.0) == [
        ["neutral", 0.4], ["amused", 0.3], ["happy", 0.3]]  # ties by name
    assert LABEL_MASS == 0.7  # bench/label_sets.py: EW-L1 0.38 at 0.5, 0.40 at 0.7 (39 subtitled clips)


def test_fine_distribution_spreads_base_mass_by_the_text_expert():
    base = {c: 0.0 for c in BASE_CLASSES} | {"fearful": 0.6, "sad": 0.4}
    prior = fine_distribution(base)  # no text: the prior split
    assert prior["fear"] == pytest.approx(0.3) and prior["sadness"] == pytest.approx(0.2)
    full = fine_distribution(base, FINE, rho=1.0)
    # the words speak of fear (their mass on the class, zq, scales rho): they pick its shades that far
    zq = FINE["fear"] + FINE["nervousness"]
    assert full["nervousness"] == pytest.approx(0.6 * ((1 - zq) * 0.5 + zq * FINE["nervousness"] / zq), abs=1e-6)
    assert sum(full.values()) == pytest.approx(1.0)
    half = fine_distribution(base, FINE, rho=0.5)
    r = 0.5 * zq
    assert half["nervousness"] == pytest.approx(0.6 * ((1 - r) * 0.5 + r * FINE["nervousness"] / zq), abs=1e-6)
    # of sadness they say next to nothing (0.05 of their mass): its split stays near the prototype one
    assert full["sadness"] == pytest.approx(0.2, abs=0.01) and full["sadness"] > full["disappointment"]


def test_a_free_form_answer_gets_the_fused_labels():
    from types import SimpleNamespace

    from affectllm.engine.core import fused_prefix
    from affectllm.report import parse_report

    fused = fuse_evidence(FACE_EV, VOICE_EV, {"expert": EXPERT})
    p = SimpleNamespace(fused=fused, transcript=None, language=None, translation=None, subtitle=None,
                        evidence=lambda: {"fused": fused})
    free = parse_report("She seems a bit tense while she talks.", perception=p)
    assert free.labels == [lab for lab, _ in fused["labels"]] and free.labels_source == "fused"
    formatted = parse_report("Labels: calm\nExplanation: x", perception=p)
    assert formatted.labels == ["calm"] and formatted.labels_source == "answer"
    assert fused_prefix(p) == "Labels: " + ", ".join(lab for lab, _ in fused["labels"])


def test_a_raw_detector_score_above_one_is_full_trust_not_a_multiplier():
    """Haar's level weight (6.23 on the example clip) is no probability: the face's reliability stays <= 1."""
    r, reasons = face_reliability({"frames": 8, "frames_with_face": 8, "mean_probs": HAPPY_FACE,
                                   "detection_score": 6.231, "face_size": 0.41})
    assert r == pytest.approx(1.0) and "detection confidence 1.00" in reasons


def test_words_are_read_against_the_text_experts_own_prior():
    from affectllm.perception.fusion import words_as_evidence

    prior = {"neutral": 0.25, "calm": 0.003, "happy": 0.33, "sad": 0.15, "angry": 0.12, "fearful": 0.014,
             "disgusted": 0.054, "surprised": 0.079, "bored": 0.0}  # the shipped head's shape
    # a reading that merely mirrors the prior (neutral words, a corpus-sized share of "happy") votes for nobody
    mirror = {c: 0.6 * prior[c] / 0.75 for c in BASE_CLASSES} | {"neutral": 0.4}
    e = words_as_evidence(np.array([mirror[c] for c in BASE_CLASSES]), np.array([prior[c] for c in BASE_CLASSES]))
    said = [c for c in BASE_CLASSES if prior[c] >= 0.01 and c != "neutral"]
    assert np.ptp([e[BASE_CLASSES.index(c)] for c in said]) < 1e-9 and e.sum() == pytest.approx(1.0)
    # classes the expert cannot say (calm, bored) get the common level: no veto of a calm voice
    assert e[BASE_CLASSES.index("calm")] == pytest.approx(e[BASE_CLASSES.index("happy")])
    calm_voice = {c: 0.05 for c in BASE_CLASSES} | {"calm": 0.6}
    f = fuse_evidence({}, VOICE_EV | {"probs": calm_voice}, {"expert": EXPERT | {"base": mirror, "prior": prior}})
    assert f["top"] == "calm" and f["probs"]["calm"] == pytest.approx(0.6, abs=0.02)
    # without the prior the same reading pushes happy (the corpora's mix counted as evidence)
    g = fuse_evidence({}, VOICE_EV | {"probs": calm_voice}, {"expert": EXPERT | {"base": mirror}})
    assert g["probs"]["happy"] > f["probs"]["happy"]
    # a reading above the prior still moves the estimate: fearful words beside an angry voice
    h = fuse_evidence({}, VOICE_EV, {"expert": EXPERT | {"prior": prior}})
    assert h["probs"]["fearful"] > 0.3


def test_an_explanation_cites_only_the_factors_that_lowered_a_channel():
    from affectllm.instruct.reasoning import _lowering

    ev = {"fused": {"reliability": {"text": {"weight": 0.5, "reasons": [
        "text expert fixture read the transcript", "2 words (too few)", "language probability 0.98"]},
        "face": {"weight": 0.95, "reasons": ["face in 8/8 frames", "detection confidence 0.95"]}}}}
    assert _lowering(ev, "text") == ["2 words (too few)"]
    assert _lowering(ev, "face") == []


def test_the_label_set_leads_with_the_fused_top_class_even_when_its_mass_is_split():
    from affectllm.perception.label_sets import label_set

    base = dict.fromkeys(BASE_CLASSES, 0.0) | {"happy": 0.46, "neutral": 0.30, "surprised": 0.24}
    fine = dict.fromkeys(FINE_TO_BASE, 0.0) | {"joy": 0.2, "amusement": 0.2, "admiration": 0.2, "neutral": 0.3}
    labels = label_set(base, fine, rho=1.0)
    # a happy label first (on a tie the class's own name), though neutral's whole 0.30 beats each of them
    assert labels[0] == ["happy", 0.1789]
    names = [x[0] for x in labels]
    assert "neutral" not in names  # not the top class: the set names the emotions (neutral spends no slot)
    assert names[1:] == ["surprised", "amused", "admiring"]


def test_neutral_leads_only_as_the_top_class_and_spends_neither_mass_nor_size():
    from affectllm.perception.label_sets import EMOTION_FLOOR, LABEL_MAX, label_set

    # mostly neutral words with a lean towards joy: "neutral" first (the one-hot answer), then the joy, whose
    # p stay the fused ones; a set of neutral alone would tell the OV-MER metric (which drops neutral) nothing
    base = dict.fromkeys(BASE_CLASSES, 0.0) | {"neutral": 0.85, "happy": 0.1, "sad": 0.05}
    fine = dict.fromkeys(FINE_TO_BASE, 0.0) | {"neutral": 0.85, "joy": 0.08, "gratitude": 0.02, "sadness": 0.05}
    labels = label_set(base, fine, rho=1.0)
    assert labels[0] == ["neutral", 0.85]
    # the emotions cover 0.7 of the 0.15 left (0.053 + 0.026 + 0.014 + 0.014 >= 0.105)
    assert [x[0] for x in labels[1:]] == ["happy", "sad", "disappointed", "amused"]
    assert labels[1] == ["happy", 0.053]
    full = dict.fromkeys(BASE_CLASSES, 0.0) | {"neutral": 0.4, "happy": 0.15, "sad": 0.15, "angry": 0.15,
                                               "fearful": 0.15}
    assert len(label_set(full, mass=1.0)) == 1 + LABEL_MAX  # the emotions keep their full budget
    calm = dict.fromkeys(BASE_CLASSES, 0.0) | {"neutral": 1 - EMOTION_FLOOR / 2, "happy": EMOTION_FLOOR / 2}
    assert label_set(calm) == [["neutral", round(1 - EMOTION_FLOOR / 2, 4)]]  # the rest is noise
    assert labels == sorted(labels[:1]) + sorted(labels[1:], key=lambda x: (-x[1], x[0]))  # the rest by mass
