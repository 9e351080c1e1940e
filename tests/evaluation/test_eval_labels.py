"""Normalisation of tricky labels, pinned: unknown words, a level-1 root at level 2, the fear chain (official vs
strict), neutral, and the official list-string parser."""

from __future__ import annotations

import pytest

from affectllm.evaluation.normalise import Normaliser, get_resources
from affectllm.evaluation.parsing import parse_group_string, parse_list_string, parse_list_string_mer2024
from affectllm.evaluation.tables import METRICS, wheel_map


@pytest.fixture(scope="module")
def official(tables):
    return Normaliser(tables)


@pytest.fixture(scope="module")
def strict(tables):
    return Normaliser(tables, strict=True)


def test_unknown_word_is_dropped_everywhere(official, strict):
    for n in (official, strict):
        assert set(n.normalise("flibbertigibbet").values()) == {""}
        assert n.masks(["flibbertigibbet"]) == (0,) * len(METRICS)
    # mixed with a known word: only the known one survives
    m = official.masks(["flibbertigibbet", "happy"])
    assert m == official.masks(["happy"])


def test_level2_maps_a_level1_root_to_its_first_child(wheel_dir, official):
    w1 = get_resources(wheel_dir).wheels[0]
    assert sorted(w1["mad"])[0] == "aggressive"
    assert wheel_map(w1, 2)["mad"] == "aggressive"  # root → alphabetically first level-2 child
    assert wheel_map(w1, 1)["furious"] == "mad"  # a level-3 word → its root
    assert wheel_map(w1, 2)["furious"] == "anger"  # … and its level-2 parent
    n = official.normalise("mad")
    assert (n["M3-W1-L1"], n["M3-W1-L2"]) == ("mad", "aggressive")


def test_fear_chain_official_vs_strict(official, strict, tables):
    """format.csv lists 'fear' as a form of 'fearless' (→ brave): officially fear lands on 'happy' in wheel 2."""
    o, s = official.normalise("fear"), strict.normalise("fear")
    assert (o["M1"], o["M2"]) == ("fear", "fear") == (s["M1"], s["M2"])
    assert o["M3-W2-L1"] == "happy" and o["M3-W3-L1"] == "joyful" and o["M3-W4-L1"] == "genius"
    assert s["M3-W2-L1"] == "fearful" and s["M3-W3-L1"] == "scared" and s["M3-W4-L1"] == "fear"
    assert ("fear", "fearless") in tables.removed_pairs
    assert ("fearing", "fearless") in tables.removed_pairs
    # strict keeps genuine forms: 'fearless' itself still reaches 'brave'-land, 'fearful' still fear
    assert strict.normalise("fearless") == official.normalise("fearless")
    assert strict.normalise("fearful") == official.normalise("fearful")


def test_neutral_official_dropped_strict_kept(official, strict):
    assert set(official.normalise("neutral").values()) == {""}
    assert set(strict.normalise("Neutral ").values()) == {"neutral"}


def test_case_and_synonym_steps(official):
    n = official.normalise("Sadness")
    assert (n["M1"], n["M2"], n["M3-W1-L1"], n["M3-W4-L2"]) == ("sad", "depressed", "sad", "disappointed")
    h = official.normalise("happy")
    assert (h["M1"], h["M2"], h["M3-W5-L1"]) == ("happiness", "joy", "powerful")  # official quirk, kept


@pytest.mark.parametrize(("raw", "want"), [
    ("['happy', 'sad']", ["happy", "sad"]),
    ('["happy", "sad"]', ["happy", "sad"]),
    ("[happy, sad]", ["happy", "sad"]),
    ("happy, sad", ["happy", "sad"]),
    ("[]", []),
    ("", []),
    ("nan", []),  # pandas reads this cell as NaN
    (None, []),
    (["Happy ", "sad"], ["Happy ", "sad"]),  # lists pass through (cleaning is a separate step)
    ("['happy, sad']", ["happy", "sad"]),  # commas split even inside quotes (official rule)
])
def test_parse_list_string(raw, want):
    assert parse_list_string(raw) == want


def test_mer2024_parser_keeps_comma_inside_quotes_and_groups():
    assert parse_list_string_mer2024("['happy, sad', 'x']") == ["happy, sad", "x"]
    assert parse_group_string("[['joyful', 'happy'], ['sad']]") == [["joyful", "happy"], ["sad"]]
