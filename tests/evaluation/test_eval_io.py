"""Inputs: CSV / JSONL / npz readers, pickled npz refused, malformed rows named by file and line, and ids present
on one side only reported and handled as the official protocol does."""

from __future__ import annotations

import json

import numpy as np
import pytest

from affectllm.evaluation import score
from affectllm.evaluation.io import EvalInputError, load_samples, read_synonym_groups


def _write(path, text):
    path.write_text(text, encoding="utf-8")
    return path


def test_npz_string_arrays_load_and_score_like_csv(tmp_path, ov, wheel_dir):
    csv_pred = load_samples(ov["pred"])
    npz = tmp_path / "pred.npz"
    np.savez(npz, filenames=np.array(csv_pred.ids), fileitems=np.array([csv_pred.records[i].labels
                                                                        for i in csv_pred.ids]))
    loaded = load_samples(npz)
    assert loaded.fmt == "npz" and loaded.ids == csv_pred.ids
    a = score("ov-mer", ov["gt"], ov["pred"], wheel_dir, synonym_groups={})
    b = score("ov-mer", ov["gt"], npz, wheel_dir, synonym_groups={})
    assert b["M-avg"] == a["M-avg"] and b["prediction_file"]["format"] == "npz"


def test_pickled_npz_is_refused_with_a_clear_message(tmp_path):
    npz = tmp_path / "pickled.npz"
    items = np.empty(2, dtype=object)
    items[:] = [["happy"], ["sad", "angry"]]  # lists → an object array, which np.savez pickles
    np.savez(npz, filenames=np.array(["a", "b"]), fileitems=items)
    with pytest.raises(EvalInputError, match=r"pickled\.npz: .*pickled Python objects.*refuses.*dtype=str"):
        load_samples(npz)


def test_npz_missing_array_named(tmp_path):
    npz = tmp_path / "x.npz"
    np.savez(npz, names=np.array(["a"]))
    with pytest.raises(EvalInputError, match="missing array.*filenames"):
        load_samples(npz)


def test_malformed_csv_row_names_file_and_line(tmp_path):
    p = _write(tmp_path / "pred.csv", "name,openset\ns1,\"['happy']\"\ns2,['sad', 'angry']\n")
    with pytest.raises(EvalInputError, match=r"pred\.csv:3: 3 fields, expected 2"):
        load_samples(p)


def test_csv_without_id_or_label_column(tmp_path):
    with pytest.raises(EvalInputError, match=r"bad\.csv:1: no id column"):
        load_samples(_write(tmp_path / "bad.csv", "foo,openset\na,[]\n"))
    with pytest.raises(EvalInputError, match=r"bad2\.csv:1: header .* has no label column"):
        load_samples(_write(tmp_path / "bad2.csv", "name,foo\na,b\n"))


def test_bad_number_names_line(tmp_path):
    with pytest.raises(EvalInputError, match=r"v\.csv:3: 'high' is not a number"):
        load_samples(_write(tmp_path / "v.csv", "name,valence\na,0.5\nb,high\n"))


def test_jsonl_reports_and_bad_line(tmp_path):
    good = _write(tmp_path / "p.jsonl", "\n".join([
        json.dumps({"id": "a", "labels": ["happy"], "explanation": "smiles"}),
        json.dumps({"id": "b", "report": {"labels": [], "explanation": "frowns", "valence": -0.4}}),
    ]) + "\n")
    s = load_samples(good)
    assert s.records["a"].labels == ["happy"] and s.records["b"].number == -0.4 and s.records["b"].text == "frowns"
    bad = _write(tmp_path / "q.jsonl", json.dumps({"id": "a", "labels": []}) + "\n{not json\n")
    with pytest.raises(EvalInputError, match=r"q\.jsonl:2: not valid JSON"):
        load_samples(bad)
    noid = _write(tmp_path / "r.jsonl", json.dumps({"labels": []}) + "\n")
    with pytest.raises(EvalInputError, match=r"r\.jsonl:1: no 'id' field"):
        load_samples(noid)


def test_ids_on_one_side_are_reported_and_missing_predictions_count_empty(tmp_path, wheel_dir):
    gt = _write(tmp_path / "gt.csv", "name,openset\na,\"['happy']\"\nb,\"['sad']\"\nc,\"['angry']\"\n")
    pred = _write(tmp_path / "pred.csv", "name,openset\na,\"['happy']\"\nb,\"['sad']\"\nzz,\"['angry']\"\n")
    r = score("ov-mer", gt, pred, wheel_dir, synonym_groups={})
    assert r["ids"]["missing_predictions"]["count"] == 1 and r["ids"]["missing_predictions"]["examples"] == ["c"]
    assert r["ids"]["extra_predictions"]["count"] == 1 and r["ids"]["extra_predictions"]["examples"] == ["zz"]
    # 'c' is scored as an empty prediction: P = R = 2/3 under M1 (a, b perfect; c zero)
    assert r["M1"]["precision"] == pytest.approx(2 / 3) and r["M1"]["recall"] == pytest.approx(2 / 3)
    assert r["prediction_sources"] == {"labels": 2, "missing": 1}


def test_synonym_groups_zip_and_json(tmp_path, ov):
    groups = read_synonym_groups(ov["groups"])
    assert len(groups) == 332 and groups["sample_00000007"].startswith("[['joyful'")
    j = _write(tmp_path / "g.json", json.dumps({"a": [["happy", "joyful"]]}))
    assert read_synonym_groups(j) == {"a": [["happy", "joyful"]]}
    with pytest.raises(EvalInputError, match=r"g2\.jsonl:1"):
        read_synonym_groups(_write(tmp_path / "g2.jsonl", "{\"x\": 1}\n"))
