"""Task files, the on-disk table cache, the report PNGs, and EMER (judge ratings + MiniLM embedding variant)."""

from __future__ import annotations

import base64
import csv
import json

import httpx
import pytest

from affectllm.evaluation import list_tasks, load_task, score
from affectllm.evaluation.io import Record

EXPECTED = {"ov-mer": "openset", "mer2023": "onehot", "mer2024": "onehot", "meld": "onehot", "iemocap-4": "onehot",
            "ravdess": "onehot", "cmu-mosi": "sentiment", "cmu-mosei": "sentiment", "ch-sims": "sentiment",
            "ch-sims-v2": "sentiment", "emer-v1": "emer"}


def test_all_task_files_load():
    tasks = {t.name: t for t in list_tasks()}
    assert {k: tasks[k].kind for k in EXPECTED} == EXPECTED
    for t in tasks.values():
        assert t.primary and t.metrics and t.reference and (t.media.get("video") or t.media.get("audio"))
        if t.kind == "onehot":
            assert len(t.labels) >= 4
    assert load_task("OVMERD").name == "ov-mer" and load_task("IEMOCAP_4").name == "iemocap-4"
    assert load_task("simsv2").name == "ch-sims-v2"


def test_task_yaml_errors(tmp_path):
    from affectllm.evaluation.tasks import TaskError

    bad = tmp_path / "x.yaml"
    bad.write_text("name: x\nkind: openset\ncolour: red\n", encoding="utf-8")
    with pytest.raises(TaskError, match="unknown key.*colour"):
        load_task(bad)
    bad.write_text("name: x\nkind: magic\n", encoding="utf-8")
    with pytest.raises(TaskError, match="one of openset, onehot"):
        load_task(bad)


def test_disk_cache_round_trip(wheel_dir, tables, tmp_path):
    from affectllm.evaluation.tables import load_cached_tables, save_cached_tables

    p = tmp_path / "t.json"
    save_cached_tables(p, tables)
    back = load_cached_tables(p, tables.fingerprint)
    assert back.official == tables.official and back.strict == tables.strict
    assert back.removed_pairs == tables.removed_pairs
    assert load_cached_tables(p, "another-resource-version") is None  # stale → rebuilt
    p.write_text("{broken", encoding="utf-8")
    assert load_cached_tables(p, tables.fingerprint) is None


def test_report_pngs_decode(tmp_path, ov, wheel_dir):
    from affectllm.evaluation import evaluate, write_outputs

    gt = tmp_path / "label.csv"
    gt.write_text("name,discrete\na,happy\nb,sad\nc,angry\nd,worried\n", encoding="utf-8")
    pred = {"a": ["happy"], "b": ["angry"], "c": ["angry"], "d": []}
    paths = write_outputs(evaluate("mer2023", gt, pred, wheel_dir), tmp_path / "o")
    html = paths["report"].read_text()
    blobs = [b.split("'")[0] for b in html.split("data:image/png;base64,")[1:]]
    assert len(blobs) == 3  # per-wheel bars, confusion matrix, labels per sample
    for b in blobs:
        assert base64.b64decode(b)[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.fixture
def emer_subset(shared, tmp_path):
    rows = list(csv.DictReader(open(shared / "data" / "emer_v1" / "gt-eng.csv", encoding="utf-8")))[:6]
    gt = tmp_path / "gt-eng.csv"
    with open(gt, "w", newline="", encoding="utf-8") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return gt, rows


@pytest.mark.slow
def test_emer_embedding_and_judge(emer_subset, wheel_dir, tmp_path):
    from affectllm.evaluation.judges.openai_compat import OpenAIJudge

    gt, rows = emer_subset
    same = {r["names"]: Record(text=r["reasons"]) for r in rows}
    shifted = {r["names"]: Record(text=rows[(i + 3) % len(rows)]["reasons"]) for i, r in enumerate(rows)}
    a = score("emer-v1", gt, same, wheel_dir)
    b = score("emer-v1", gt, shifted, wheel_dir)
    assert a["embedding"]["reason_similarity"] == pytest.approx(1.0, abs=1e-5)
    assert b["embedding"]["reason_similarity"] < 0.9
    assert 0 < a["embedding"]["label_similarity"] <= 1.0
    assert "judge_note" in a  # the lexicon judge cannot rate
    transport = httpx.MockTransport(lambda r: httpx.Response(200, json={"choices": [{"message": {
        "content": "Score: 9" if "clues" in json.loads(r.content)["messages"][0]["content"] else "Score: 4"}}]}))
    judge = OpenAIJudge("http://j/v1", "m", transport=transport)
    c = score("emer-v1", gt, same, wheel_dir, judge=judge, embeddings=False)
    assert (c["clue_overlap"], c["label_overlap"], c["clue_unparsed"]) == (9.0, 4.0, 0)
    assert c["summary"]["clue_overlap"] == 9.0 and "embedding" not in c
