"""`eval run`: a model (faked at the Responder seam: perceive + render + answer) over a task's media. Responses
are cached under a key covering the weights fingerprint, the question, generation and perception settings, the
media content and the task file, checked before a sample is perceived, so a re-run reuses exactly the answers
whose inputs did not change and perceives nothing it reuses. Samples still to do are answered in batches."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

import affectllm.loading
from affectllm.cli.eval import app
from affectllm.evaluation import runner
from affectllm.evaluation.runner import Request, run_task
from affectllm.report import EmotionReport

ANSWERS = {"a": ["happy"], "b": ["sad", "angry"], "c": ["worried"]}


class FakeResponder:
    """Renders '<prompt> | <media content>' like a real model would render cues from media; records answers."""

    calls: list[tuple[str, str, str | None]] = []
    perceived: list[str] = []
    batches: list[int] = []

    def __init__(self, model, processor, prompt=None, max_new_tokens=128):
        self.fingerprint = f"fake:{model}"
        self.prompt, self.max_new_tokens = prompt or "Which emotions?", max_new_tokens

    def settings(self):
        return {"prompt": self.prompt, "max_new_tokens": self.max_new_tokens, "perception": {"num_frames": 8}}

    def request(self, media, subtitle):
        video = media["video"]
        FakeResponder.perceived.append(video)
        with open(video, "rb") as f:
            seen = f.read().decode(errors="replace")
        return Request(f"{self.prompt} | {seen}", {"generation": {"max_new_tokens": self.max_new_tokens},
                                                   "perception": {"num_frames": 8}}, video)

    def answer(self, req):
        sid = req.state.rsplit("/", 1)[1].split(".")[0]
        FakeResponder.calls.append((sid, req.state, req.prompt_text))
        return EmotionReport(labels=ANSWERS[sid], explanation=f"clip {sid}", valence=0.5)

    def answers(self, reqs):
        FakeResponder.batches.append(len(reqs))
        return [self.answer(r) for r in reqs]


LOADED: list[dict] = []


@pytest.fixture
def fake_api(monkeypatch):
    FakeResponder.calls, FakeResponder.perceived, FakeResponder.batches = [], [], []
    LOADED.clear()

    def load(model=None, **kw):
        LOADED.append({"model": model, **kw})
        return model, None

    monkeypatch.setattr(affectllm.loading, "load", load, raising=False)
    monkeypatch.setattr(runner, "ModelResponder", FakeResponder)
    return FakeResponder.calls


@pytest.fixture
def data_root(tmp_path):
    root = tmp_path / "data"
    (root / "video").mkdir(parents=True)
    for sid in ("a", "b", "c"):
        (root / "video" / f"{sid}.mp4").write_bytes(f"frames of {sid}".encode())
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
    assert [c[0] for c in fake_api] == ["a", "b", "c"]  # 'd' has no media: recorded, not predicted
    assert fake_api[0][1].endswith("video/a.mp4")
    r = json.loads((out / "results.json").read_text())
    assert r["run"]["fingerprint"] == "fake:m1" and r["run"]["n_errors"] == 1
    assert (r["run"]["asked"], r["run"]["reused"]) == (3, 0)
    assert r["n_samples"] == 4 and (out / "report.html").is_file()
    preds = [json.loads(x) for x in (out / "predictions.jsonl").read_text().splitlines()]
    assert preds[1] == {"id": "b", "labels": ["sad", "angry"], "explanation": "clip b", "report_valence": 0.5}
    # re-run: every sample is cached → no model call and no perception; same numbers
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0 and len(fake_api) == 3 and len(FakeResponder.perceived) == 3
    r2 = json.loads((out / "results.json").read_text())
    assert r2["M-avg"] == r["M-avg"] and (r2["run"]["asked"], r2["run"]["reused"]) == (0, 3)
    # another model fingerprint → its own cache, predicted again
    res = CliRunner().invoke(app, [*args[:4], "m2", *args[5:]])
    assert res.exit_code == 0 and len(fake_api) == 6
    assert len(list((out / "responses").glob("*.jsonl"))) == 2


def test_run_resumes_after_interruption(fake_api, data_root, tmp_path, wheel_dir):
    out = tmp_path / "out"
    run_task("ov-mer", "m1", data_root, out, limit=1, wheel_dir=wheel_dir)
    assert [c[0] for c in fake_api] == ["a"]
    cache = next((out / "responses").glob("*.jsonl"))
    with open(cache, "a", encoding="utf-8") as f:
        f.write('{"id": "b", "fingerpr')  # a run killed mid-write
    ev = run_task("ov-mer", "m1", data_root, out, wheel_dir=wheel_dir)
    assert [c[0] for c in fake_api] == ["a", "b", "c"]
    assert ev.results["n_samples"] == 4
    run_task("ov-mer", "m1", data_root, out, wheel_dir=wheel_dir)  # the half line did not swallow b's record
    assert len(fake_api) == 3


def _asked(ev) -> int:
    return ev.results["run"]["asked"]


def test_cache_key_covers_prompt_generation_task_media_and_weights(fake_api, data_root, tmp_path, wheel_dir):
    out = tmp_path / "out"
    kw = {"wheel_dir": wheel_dir}
    assert _asked(run_task("ov-mer", "m1", data_root, out, **kw)) == 3
    assert _asked(run_task("ov-mer", "m1", data_root, out, **kw)) == 0  # unchanged: all reused
    # a changed prompt re-asks every sample
    assert _asked(run_task("ov-mer", "m1", data_root, out, prompt="Name the emotions.", **kw)) == 3
    assert fake_api[-1][2].startswith("Name the emotions. |")
    # a changed generation parameter
    assert _asked(run_task("ov-mer", "m1", data_root, out, max_new_tokens=64, **kw)) == 3
    # a changed task file (same name, other content)
    task = tmp_path / "ov-mer.yaml"
    shutil.copy(runner.load_task("ov-mer").path, task)
    assert _asked(run_task(str(task), "m1", data_root, out, **kw)) == 0  # same bytes: same answers
    task.write_text(task.read_text() + "\n# edited\n")
    assert _asked(run_task(str(task), "m1", data_root, out, **kw)) == 3
    # changed media content re-asks that sample only
    (data_root / "video" / "b.mp4").write_bytes(b"other frames")
    assert _asked(run_task("ov-mer", "m1", data_root, out, **kw)) == 1
    # other weights (another fingerprint) re-ask everything; the first model's answers are still there after
    assert _asked(run_task("ov-mer", "m2", data_root, out, **kw)) == 3
    assert _asked(run_task("ov-mer", "m1", data_root, out, **kw)) == 0


def test_run_batches_and_passes_the_load_flags(fake_api, data_root, tmp_path, wheel_dir):
    out = tmp_path / "out"
    args = ["run", "--task", "ov-mer", "--model", "m1", "--data-root", str(data_root), "--out", str(out),
            "--wheel-dir", str(wheel_dir), "--batch-size", "2", "--adapter", "ckpt", "--device", "cuda:1",
            "--dtype", "bfloat16", "--quantization", "4bit"]
    res = CliRunner().invoke(app, args)
    assert res.exit_code == 0, res.output
    assert FakeResponder.batches == [2, 1] and [c[0] for c in fake_api] == ["a", "b", "c"]
    assert LOADED == [{"model": "m1", "adapter": "ckpt", "device": "cuda:1", "dtype": "bfloat16",
                       "quantization": "4bit"}]
    bad = CliRunner().invoke(app, [*args[:-1], "3bit"])
    assert bad.exit_code == 2 and "3bit" in bad.output and "none, 8bit, 4bit" in bad.output


def test_an_unreadable_sample_is_recorded_and_the_rest_answered(fake_api, data_root, tmp_path, wheel_dir,
                                                                 monkeypatch):
    perceive = FakeResponder.request

    def request(self, media, subtitle):
        if media["video"].endswith("b.mp4"):
            raise OSError("moov atom not found")
        return perceive(self, media, subtitle)

    monkeypatch.setattr(FakeResponder, "request", request)
    ev = run_task("ov-mer", "m1", data_root, tmp_path / "out", wheel_dir=wheel_dir, batch_size=2)
    assert [c[0] for c in fake_api] == ["a", "c"] and _asked(ev) == 2
    rows = [json.loads(x) for x in next((tmp_path / "out" / "responses").glob("*.jsonl")).read_text().splitlines()]
    err = next(r for r in rows if r["id"] == "b")
    assert "b.mp4" in err["error"] and "moov atom" in err["error"]


def test_legacy_unkeyed_cache_lines_are_not_reused(fake_api, data_root, tmp_path, wheel_dir):
    out = tmp_path / "out"
    ev = run_task("ov-mer", "m1", data_root, out, wheel_dir=wheel_dir)
    cache = next((out / "responses").glob("*.jsonl"))
    rows = [json.loads(x) for x in cache.read_text().splitlines()]
    cache.write_text("".join(json.dumps({k: v for k, v in r.items() if k != "key"}) + "\n" for r in rows))
    assert _asked(run_task("ov-mer", "m1", data_root, out, wheel_dir=wheel_dir)) == _asked(ev) == 3


def test_run_without_ground_truth_says_where(fake_api, tmp_path):
    res = CliRunner().invoke(app, ["run", "--task", "mer2023", "--data-root", str(tmp_path), "--out",
                                   str(tmp_path / "o")])
    assert res.exit_code == 2 and "label.csv: ground truth not found" in res.output
