"""The starter report's numbers: per-corpus accuracy beside chance and majority, the macro row, the rates; and the
backbone comparison's held-out table reads them back (no model: hand-made samples with known answers)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def _module(rel: str):
    spec = importlib.util.spec_from_file_location(Path(rel).stem, REPO / rel)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = mod
    spec.loader.exec_module(mod)
    return mod


report = _module("train/starter_report.py")


def _sample(corpus, cls, voice, fused, conf, anchored, llm, faithful=True, face=None, speaker="s1"):
    return {"id": f"{corpus}-{cls}-{voice}-{llm}", "corpus": corpus, "speaker": speaker, "synthetic": False,
            "class": cls, "voice": voice, "face": face, "fused": fused, "fused_confidence": conf,
            "final_anchored": anchored, "final_llm": llm, "labels_anchored": [anchored or "x"],
            "labels_llm": [llm or "x"], "faithful_anchored": faithful, "faithful_llm": faithful,
            "formatted_anchored": True, "formatted_llm": llm is not None, "explanation_llm": "e", "transcript": "t"}


SAMPLES = [
    _sample("emodb", "angry", "angry", "angry", 0.9, "angry", "angry"),
    _sample("emodb", "angry", "sad", "angry", 0.4, "angry", "sad"),
    _sample("emodb", "sad", "sad", "sad", 0.7, "sad", None, faithful=False),
    _sample("casia", "happy", "happy", "happy", 0.8, "happy", "happy", face="happy"),
    _sample("casia", "fearful", "sad", "sad", 0.6, "sad", "fearful", face=None),
]


def test_summarise_per_corpus_macro_and_rates():
    q = report.summarise(SAMPLES, confident=0.5)
    emodb, casia = q["per_corpus"]["emodb"], q["per_corpus"]["casia"]
    assert emodb["clips"] == 3 and emodb["chance"] == 0.5 and emodb["majority"] == round(2 / 3, 4)
    assert emodb["voice"] == round(2 / 3, 4) and emodb["fused"] == 1.0 and emodb["final_llm"] == round(1 / 3, 4)
    assert casia["face"] == 1.0  # only clips with a face count for the face column
    assert q["macro"]["fused"] == round((1.0 + 0.5) / 2, 4)
    assert q["macro"]["chance"] == 0.5
    assert q["confident_clips"] == 4  # 0.9, 0.7, 0.8, 0.6 >= 0.5
    assert q["first_equals_fused_when_confident_anchored"] == 1.0
    assert q["first_equals_fused_when_confident_llm"] == 0.5  # angry yes, None no, happy yes, fearful != sad
    assert q["faithful_rate_llm"] == 0.8 and q["follows_format_llm"] == 0.8


def test_predicted_class_maps_synonyms_and_skips_unknown_words():
    assert report.predicted_class(["ecstatic", "joyful", "sad"]) == "happy"
    assert report.predicted_class(["pensive"]) is None


def test_markdown_states_baselines_licences_and_backbone_table(tmp_path):
    r = {"backbone": "gemma", "quality": report.summarise(SAMPLES, 0.5), "confident": 0.5,
         "voice_head": {"file": "voice_head_fold0.safetensors", "clips": 1500}, "composition": {},
         "training": {}, "timings_s": {"train": {"wall": 1200, "cpu": 2300}}, "eval_wall_s": 50.0,
         "licences": report.LICENCES, "samples": SAMPLES}
    md = report.render_markdown(r)
    assert "| emodb | 3 | 0.500 | 0.667 | 0.667 |" in md
    assert "CC BY-NC-SA 4.0" in md and "research use only" in md
    run = tmp_path / "run"
    (run / "report").mkdir(parents=True)
    (run / "report" / "report.json").write_text(__import__("json").dumps(r))
    compare = _module("bench/llm_compare.py")
    held = compare.heldout_report(run / "adapter")
    table = "\n".join(compare.heldout_table([{"name": "gemma", "heldout": held}]))
    assert "| gemma | 5 | 0.500 |" in table and "| 10.0 | 1200 |" in table  # 50 s over 5 clips; train wall
    assert compare.heldout_report(tmp_path / "nowhere" / "adapter") is None


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-q"]))


def test_a_label_set_first_label_counts_as_its_base_class():
    # the fused label set leads with a fine label of the top class: admiring / grateful are happy
    assert report.predicted_class(["admiring", "disgusted"]) == "happy"
    assert report.predicted_class(["nervous"]) == "fearful" and report.predicted_class(["relieved"]) == "calm"
    assert report.predicted_class(["xyz", "sad"]) == "sad" and report.predicted_class(["xyz"]) is None


def test_rescore_recomputes_the_classes_from_the_saved_labels(tmp_path):
    import json

    samples = [dict(s) for s in SAMPLES]
    samples[0]["labels_anchored"], samples[0]["final_anchored"] = ["grateful"], None  # scored before the mapping
    samples[0]["class"] = "happy"
    (tmp_path / "report.json").write_text(json.dumps({
        "backbone": "b", "quality": {}, "confident": 0.5, "voice_head": {"file": "h"}, "composition": {},
        "training": {}, "timings_s": {}, "eval_wall_s": 1.0, "licences": {}, "samples": samples}))
    assert report.main(["--rescore", "--out", str(tmp_path), "--adapter", "a", "--heldout", "h",
                        "--voice-head", "v", "--run", "r"]) == 0
    again = json.loads((tmp_path / "report.json").read_text())
    assert again["samples"][0]["final_anchored"] == "happy" and (tmp_path / "REPORT.md").is_file()
