"""Faithfulness checker: fabricated quotes and cited words are caught, real ones pass, loops are flagged."""

from __future__ import annotations

from affectllm.faithful import Grounding, check_faithfulness, cited_words, find_loop, quoted_spans
from affectllm.perception.pipeline import Perception
from affectllm.report import format_report, parse_report

ZH = Grounding(["我哪知道啊 我也没有这方便的经验", "How would I know? I have no experience with this."], ["经验"])
EN = Grounding(["Kids are talking by the door."], [])


def test_the_fabricated_quote_of_the_issue_is_caught_and_real_quotes_pass():
    # the explanation from the issue, for Whisper's transcript "我哪知道啊 我也没有这方便的经验"
    bad = 'The speaker says "I didn\'t know that you wanted that much!", and words like "happy" carry the feeling.'
    problems = check_faithfulness(bad, ZH)
    assert problems[0] == 'quotes "I didn\'t know that you wanted that much!", which is not in the transcript or its translation'
    assert any('"happy"' in p for p in problems)
    good = 'The speaker says “我哪知道啊”, roughly "how would I KNOW", and words like 经验 are neutral.'
    assert check_faithfulness(good, ZH) == []
    assert check_faithfulness('She says 「我也没有」.', ZH) == []
    assert check_faithfulness('She says 「我没有经验啊」.', ZH) != []  # not contiguous in the transcript


def test_quotes_are_compared_without_case_space_or_punctuation_at_word_boundaries():
    assert check_faithfulness('He says "kids, are   TALKING by the door!"', EN) == []
    assert check_faithfulness("He says 'kids are talking'.", EN) == []
    assert check_faithfulness('He says "are tal".', EN) != []  # a fragment of a word is not a quote
    assert check_faithfulness("He doesn't say 'kids aren't talking'.", EN) != []
    assert check_faithfulness("The kids' voices are calm.", EN) == []  # apostrophes are not quotes


def test_quotes_need_a_transcript():
    assert check_faithfulness('He says "hello".', None) == [
        'quotes "hello", which is not in a transcript (none was recognised)']
    assert check_faithfulness("No speech was recognised; the face looks neutral.", None) == []


def test_quoted_spans_handle_all_quote_styles():
    text = 'A "one" B “two” C 「三」 D 『四』 E ‘five’ F \'six\' G don\'t H «sept» I "open'
    assert quoted_spans(text) == ["one", "two", "三", "四", "five", "six", "sept", "open"]


def test_cited_words_must_be_found_or_said():
    assert cited_words("Words like happy, glad and \"sad\" carry it; the word 高兴 too.") == ["happy", "glad", "sad", "高兴"]
    g = Grounding(["I am so happy"], ["happy"])
    assert check_faithfulness("Words like happy carry the feeling.", g) == []
    assert check_faithfulness("Words like furious carry the feeling.", g) == [
        'cites the word "furious", which the text cues did not find and nobody said']


def test_loops_are_flagged_unless_the_speaker_repeated_it():
    assert find_loop("I'm a聽聽I guess I'm a聽聽I guess I'm a聽聽I guess I'm a") is not None
    assert find_loop("She is very very happy and he is calm.") is None
    assert find_loop("no no no no no no") is not None
    assert find_loop("no no no no no no", ["no no no no no no"]) is None
    problems = check_faithfulness("He frowns. " * 4, EN)
    assert problems == ["the generation loops: 'he frowns' repeated 4 times"]


def test_parser_sets_faithful_from_the_perception():
    p = Perception(source="x.wav", kind="audio", transcript="我哪知道啊 我也没有这方便的经验", language="zh",
                   translation="How would I know? I have no experience with this.")
    p.text = {"emotion_words": [{"word": "经验", "emotions": ["like"], "source": "DUTIR"}], "translation": p.translation}
    good = parse_report(format_report(["neutral"], 'She says "I have no experience" flatly.'), perception=p)
    assert good.faithful and good.faithfulness_problems == []
    assert good.transcript == p.transcript and good.translation == p.translation and good.language == "zh"
    assert good.evidence["text"]["translation"] == p.translation
    bad = parse_report(format_report(["sad"], 'She says "I didn\'t know that you wanted that much!"'), perception=p)
    assert not bad.faithful and "not in the transcript" in bad.faithfulness_problems[0]
    assert bad.labels == ["sad"]  # the labels survive
    looping = parse_report("Labels: sad\nExplanation: I guess I'm a I guess I'm a I guess I'm a I guess", perception=p)
    assert not looping.faithful and "loops" in looping.faithfulness_problems[0]
    # without a perception nothing was heard: a quote is unsupported
    assert not parse_report('Labels: sad\nExplanation: She says "hi".').faithful
    assert parse_report("Labels: sad\nExplanation: She looks down.").faithful


def test_training_targets_are_faithful_by_construction():
    """The starter's target renderer quotes only the transcript, its translation and the lexicon hits."""
    from affectllm.instruct.reasoning import grounded_report

    p = Perception(source="x.wav", kind="audio", transcript="我哪知道啊 我也没有这方便的经验", language="zh",
                   translation="How would I know? I have no experience with this.")
    p.text = {"emotion_words": [{"word": "经验", "emotions": ["like"], "source": "DUTIR"}]}
    p.voice = {"cues": ["quiet"]}
    r = parse_report(grounded_report(p, "neutral"), perception=p)
    assert '"How would I know? I have no experience with this."' in r.explanation
    assert r.faithful, r.faithfulness_problems
