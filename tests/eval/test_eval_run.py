"""`eval run`: a model (faked: affectllm.load / affectllm.predict monkeypatched) over a task's media, responses
cached per sample id + model fingerprint so a re-run skips finished samples, then scored."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import affectllm
from affectllm.cli.eval import app
from affectllm.report import EmotionReport


class FakeModel:
    def __init__(self, name):
        self.fingerprint = f"fake:{name}"


@pytest.fixture
def fake_api(monkeypatch):
    calls = {"load": 0, "predict": []}
    answers = {"a": ["happy"], "b": ["sad", "angry"], "c": ["worried"]}

    def load(model=None, **kw):
        calls["load"] += 1
        return FakeModel(model), object()

    def predict(model, processor, video=None, audio=None, image=None, text=None):
        sid = video.rsplit("/", 1)[1].split(".")[0]
        calls["predict"].append((sid, video, text))
        return EmotionReport(labels=answers[sid], explanation=f"clip {sid}", valence=0.5)

    monkeypatch.setattr(affectllm, "load", load, raising=False)
    monkeypatch.setattr(affectllm, "predict", predict, raising=False)
    return calls


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    (root / "video").mkdir(parents=True)
    for sid in ("a", "b", "c"):
        (root / "video" / f"{sid}.mp4").write_bytes(b"\0")
    (root / "check-openset.csv").write_text(
        "name,openset\na,\"['happy', 'joyful']\"\nb,\"['sad']\"\nc,\"['worried', 'anxious']\"\nd,\"['angry']\"\n",
        encoding="utf-8")
    return root


def test_run_caches_and_scores(fake_api, data_root, tmp_path, wheel_dir):
    out = tmp_path / "out"
    args = ["run", "--task", "ov-mer", "--model", "m1", "--data-root", str(data_root), "--out", str(out),
            "--wheel-dir", str(wheel_dir)]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert [c[0] for c in fake_api["predict"]] == ["a", "b", "c"]  # 'd' has no media: recorded, not predicted
    assert fake_api["predict"][0][1].endswith("video/a.mp4")
    r = json.loads((out / "results.json").read_text())
    assert r["run"]["fingerprint"] == "fake:m1" and r["run"]["n_errors"] == 1
    assert r["n_samples"] == 4 and (out / "report.html").is_file()
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert preds[1] == {"id": "b", "labels": ["sad", "angry"], "explanation": "clip b", "report_valence": 0.5}
    # re-run: every sample is cached → no predict call; same numbers
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and len(fake_api["predict"]) == 3
    assert json.loads((out / "results.json").read_text())["M-avg"] == r["M-avg"]
    # another model fingerprint → its own cache, predicted again
    res = CliRunner().invoke(app, [*args[:4], "m2", *args[5:]])
    assert res.exit_code == 0 and len(fake_api["predict"]) == 6
    assert len(list((out / "responses").glob("*.jsonl"))) == 2


def test_run_resumes_after_interruption(fake_api, data_root, tmp_path, wheel_dir):
    from affectllm.evaluation.runner import run_task

    out = tmp_path / "out"
    run_task("ov-mer", "m1", data_root, out, limit=1, wheel_dir=wheel_dir)
    assert [c[0] for c in fake_api["predict"]] == ["a"]
    cache = next((out / "responses").glob("*.jsonl"))
    with open(cache, "a", encoding="utf-8") as f:
        f.write('{"id": "b", "fingerpr')  # a run killed mid-write
    ev = run_task("ov-mer", "m1", data_root, out, wheel_dir=wheel_dir)
    assert [c[0] for c in fake_api["predict"]] == ["a", "b", "c"]
    assert ev.results["n_samples"] == 4
    run_task("ov-mer", "m1", data_root, out, wheel_dir=wheel_dir)  # the half line did not swallow b's record
    assert len(fake_api["predict"]) == 3


def test_run_without_ground_truth_says_where(fake_api, tmp_path):
    res = CliRunner().invoke(app, ["run", "--task", "mer2023", "--data-root", str(tmp_path), "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 2 and "label.csv: ground truth not found" in res.output
