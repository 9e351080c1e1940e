"""The official numbers, exactly: OV-MER EW metrics (6 decimals, ../shared/DATA.md table), MER2024 (4 decimals),
and the fast table normaliser equal to a literal transcription of the DATA.md rules for every known label."""

from __future__ import annotations

import pytest

from affectllm.evaluation import score
from affectllm.evaluation.normalise import Normaliser, get_resources
from affectllm.evaluation.tables import METRICS, wheel_map

# ../shared/DATA.md: reference values of the official implementation (P, R, F).
REFERENCE = {
    "M1": (0.333887, 0.258197, 0.291204),
    "M2": (0.356596, 0.303733, 0.328049),
    "M3-W1-L1": (0.575433, 0.553007, 0.563997),
    "M3-W1-L2": (0.465443, 0.382365, 0.419834),
    "M3-W2-L1": (0.593750, 0.557622, 0.575119),
    "M3-W2-L2": (0.464939, 0.385112, 0.421277),
    "M3-W3-L1": (0.541409, 0.567130, 0.553971),
    "M3-W3-L2": (0.442490, 0.447920, 0.445188),
    "M3-W4-L1": (0.556320, 0.537920, 0.546966),
    "M3-W4-L2": (0.433588, 0.405585, 0.419119),
    "M3-W5-L1": (0.530063, 0.526899, 0.528476),
    "M3-W5-L2": (0.430643, 0.404219, 0.417013),
}
M_AVG = 0.459184


@pytest.fixture(scope="module")
def results(ov, wheel_dir):
    return score("ov-mer", ov["gt"], ov["pred"], wheel_dir, synonym_groups=ov["groups"])


@pytest.mark.parametrize("metric", list(REFERENCE))
def test_ew_metric_equals_official_to_6_decimals(results, metric):
    p, r, f = REFERENCE[metric]
    got = results[metric]
    assert (round(got["precision"], 6), round(got["recall"], 6), round(got["f1"], 6)) == (p, r, f)


def test_m_avg_and_sample_count(results):
    assert round(results["M-avg"], 6) == M_AVG
    assert results["n_samples"] == 332
    assert results["M1"]["n_scored"] == 331  # one ground truth normalises to nothing under M1 and is skipped


def test_mer2024_group_metric_equals_published(results):
    m = results["MER2024"]
    assert (round(m["precision"], 4), round(m["recall"], 4), round(m["score"], 4)) == (0.5818, 0.4978, 0.5398)
    assert m["n_scored"] == 332 and m["n_without_groups"] == 0


def test_constant_guess_from_the_issue_scores_036(ov, wheel_dir):
    """A fixed [happy, sad, angry, worried, surprised] for every sample: M-avg ≈ 0.36 (the chance-floor point)."""
    from affectllm.evaluation.io import load_samples

    ids = load_samples(ov["gt"]).ids
    const = {i: ["happy", "sad", "angry", "worried", "surprised"] for i in ids}
    r = score("ov-mer", ov["gt"], const, wheel_dir, synonym_groups={})
    assert round(r["M-avg"], 4) == 0.3630


def _literal(label: str, metric: str, fmap: dict, smap: dict, wmaps: dict) -> str:
    """DATA.md rule 5, written as plainly as possible (no tables, no precomputation)."""
    if label not in fmap:
        return ""
    if metric == "M1":
        return sorted(fmap[label])[0]
    if metric == "M2":
        return sorted(smap[sorted(fmap[label])[0]])[0]
    wm = wmaps[metric]
    words = []
    for f in fmap[label]:
        words.extend(smap[f])
    for w in sorted(words):
        if w in wm:
            return wm[w]
    return ""


def test_tables_equal_literal_rules_for_every_label(wheel_dir, tables):
    res = get_resources(wheel_dir)
    wmaps = {f"M3-W{k}-L{lv}": wheel_map(res.wheels[k - 1], lv) for k in range(1, 6) for lv in (1, 2)}
    norm = Normaliser(tables)
    assert len(res.format_map) == 7386  # DATA.md: 7,386 surface forms
    assert len(res.synonym_map) == 1255  # every canonical name of format.csv has a synonym entry
    assert all(n in res.synonym_map for names in res.format_map.values() for n in names)
    mismatches = []
    for label in res.format_map:
        got = norm.normalise(label)
        for m in METRICS:
            want = _literal(label, m, res.format_map, res.synonym_map, wmaps)
            if got[m] != want:
                mismatches.append((label, m, got[m], want))
    assert mismatches == []
