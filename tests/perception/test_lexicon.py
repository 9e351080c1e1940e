"""Text cues from real lexicons: NRC EmoLex (English), DUTIR + snownlp (Chinese), a translation for the rest."""

from __future__ import annotations

import pickle

import pytest

from affectllm.perception import lexicon
from affectllm.perception.lexicon import LexiconMissing, read_builtin_pickle, text_cue_lines, text_cues


@pytest.fixture(autouse=True)
def _own_cache(tmp_path, monkeypatch):
    """Each test converts DUTIR into its own $AFFECTLLM_HOME (and clears the in-process copies)."""
    monkeypatch.setenv("AFFECTLLM_HOME", str(tmp_path / "home"))
    lexicon.dutir_lexicon.cache_clear()
    lexicon.nrc_lexicon.cache_clear()
    yield
    lexicon.dutir_lexicon.cache_clear()


def test_english_words_come_from_nrc_with_emotions_and_polarity():
    cues = text_cues("I love you, but this is awful and I hate it. The hates cried.", "en")
    words = {w["word"]: w for w in cues["emotion_words"]}
    assert words["love"]["emotions"] == ["joy"] and words["love"]["polarity"] == "positive"
    assert set(words["hate"]["emotions"]) == {"anger", "disgust", "fear", "sadness"}
    assert words["cried"]["emotions"] == ["sadness"]  # inflection -> "cry"
    assert all(w["source"] == "NRC EmoLex" and w["text"] == "transcript" for w in words.values())
    assert "you" not in words and "this" not in words  # only lexicon words, never guessed
    # 1 positive (love) vs 3 negative (awful, hate, cried)
    assert cues["polarity"] == {"score": -0.5, "label": "negative", "source": "NRC EmoLex", "text": "transcript"}
    assert cues["missing"] == []
    assert text_cue_lines(cues)[0].startswith("Emotion words: love (joy), awful (")


def test_no_emotion_words_gives_no_cue_line():
    cues = text_cues("Kids are talking by the door.", "en")
    assert cues["emotion_words"] == [] and cues["polarity"] is None
    assert text_cue_lines(cues) == []


def test_chinese_words_come_from_dutir_and_polarity_from_snownlp():
    cues = text_cues("我今天非常高兴，也很开心", "zh")
    words = {w["word"]: w for w in cues["emotion_words"]}
    assert "高兴" in words and "joy" in words["高兴"]["emotions"] and words["高兴"]["source"] == "DUTIR"
    assert cues["polarity"]["source"] == "DUTIR" and cues["polarity"]["snownlp"] > 0.5
    sad = text_cues("我很伤心，真痛苦", "zh")  # snownlp alone calls this positive (0.84)
    assert any("sadness" in w["emotions"] for w in sad["emotion_words"])
    assert sad["polarity"]["score"] < 0 and sad["polarity"]["source"] == "DUTIR"
    plain = text_cues("就是下雨也去", "zh")  # a CASIA sentence with no DUTIR word: snownlp's valence
    assert plain["emotion_words"] == [] and plain["polarity"]["source"] == "snownlp"
    assert plain["polarity"]["score"] == pytest.approx(-0.43, abs=0.01)
    assert plain["polarity"]["label"] == "neutral" and text_cue_lines(plain) == []  # within snownlp's wide neutral band


def test_dutir_is_converted_once_to_json_under_the_cache(tmp_path):
    lexicon.text_cues("高兴", "zh")
    path = tmp_path / "home" / "lexicons" / "dutir.json"
    assert path.is_file()
    import json

    data = json.loads(path.read_text(encoding="utf-8"))
    assert set(data["classes"]) == {"like", "joy", "sadness", "anger", "fear", "disgust", "surprise"}
    assert sum(len(v) for v in data["classes"].values()) > 20_000


def test_other_languages_read_the_english_translation():
    cues = text_cues("Ich bin so glücklich", "de", translation="I am so happy")
    assert [w["word"] for w in cues["emotion_words"]] == ["happy"]
    assert cues["emotion_words"][0]["text"] == "translation"
    none = text_cues("Ich bin so glücklich", "de")
    assert none["emotion_words"] == [] and "no emotion lexicon for language 'de'" in none["missing"][0]


def test_restricted_unpickler_refuses_code(tmp_path):
    ok = tmp_path / "ok.pkl"
    ok.write_bytes(pickle.dumps({"高兴", "开心"}))
    assert read_builtin_pickle(ok) == {"高兴", "开心"}

    class Evil:
        def __reduce__(self):
            import os

            return (os.system, ("echo pwned",))

    bad = tmp_path / "bad.pkl"
    bad.write_bytes(pickle.dumps(Evil()))
    with pytest.raises(LexiconMissing, match="not allowed"):
        read_builtin_pickle(bad)


def test_a_missing_lexicon_degrades_with_a_clear_message(monkeypatch):
    real = lexicon.importlib.util.find_spec
    monkeypatch.setattr(lexicon.importlib.util, "find_spec", lambda n: None if n == "nrclex" else real(n))
    cues = text_cues("I love it", "en")
    assert cues["emotion_words"] == [] and "pip install nrclex" in cues["missing"][0]
