"""EmotionReport format and its deterministic, never-raising parser."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from affectllm.report import EmotionReport, format_report, normalise_labels, parse_report


def test_roundtrip_well_formed_report():
    text = format_report(["Happy", "excited", "happy"], "She smiles and says 'we won'.", 0.6, 0.45)
    r = parse_report(text)
    assert r.labels == ["happy", "excited"]
    assert r.valence == 0.6 and r.arousal == 0.45
    assert r.explanation == "She smiles and says 'we won'."
    assert r.raw == text
    assert EmotionReport.from_dict(r.to_dict()) == r


def test_tolerates_markdown_order_and_multiline_explanation():
    text = "**Explanation:** He frowns.\nHis voice is loud.\n**Labels**: Angry; frustrated\nValence: -1.7"
    r = parse_report(text)
    assert r.labels == ["angry", "frustrated"]
    assert r.valence == -1.0  # clipped to [-1, 1]
    assert r.explanation == "He frowns. His voice is loud."
    assert r.arousal is None


def test_garbage_gives_empty_labels_and_keeps_raw():
    for garbage in ["", "\x00\x01", "labels", "Valence: high", "<pad><pad>", "Labels:"]:
        r = parse_report(garbage)
        assert r.labels == [] and r.raw == garbage
    assert parse_report("Valence: high").valence is None


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_parser_never_raises(text):
    r = parse_report(text)
    assert isinstance(r.labels, list) and r.raw == text


def test_normalise_labels_splits_and_dedupes():
    assert normalise_labels("Happy, sad and angry / happy") == ["happy", "sad", "angry"]


_QUOTEY = st.lists(st.sampled_from(list("ab cd'\"“”「」『』‘’«»,.!?\n:") + ["Labels:", "Explanation:", "words like ",
                                                                          "我", "经验"])).map("".join)


@settings(max_examples=300, deadline=None)
@given(_QUOTEY | st.text(), st.one_of(st.none(), st.text(max_size=40)))
def test_parser_never_raises_on_the_faithfulness_fields(text, transcript):
    from affectllm.perception.pipeline import Perception

    p = None
    if transcript is not None:
        p = Perception(source=None, kind="audio", transcript=transcript, translation=transcript[::-1] or None)
        p.text = {"emotion_words": [{"word": transcript[:3]}, "x", None]}
    r = parse_report(text, perception=p)
    assert r.raw == text and isinstance(r.labels, list)
    assert isinstance(r.faithful, bool) and all(isinstance(x, str) for x in r.faithfulness_problems)
    assert r.faithful == (r.faithfulness_problems == [])
    assert EmotionReport.from_dict(r.to_dict()) == r
