"""`affectllm data validate|build|sources` and the fixture recipe (instruct_data/build_fixtures.py)."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

from PIL import Image
from typer.testing import CliRunner

from affectllm.cli.data import app
from affectllm.instruct import iter_jsonl, validate_file
from affectllm.instruct.builders import SOURCES
from affectllm.paths import repo_root

runner = CliRunner()


def emodb_tree(root: Path) -> Path:
    for name in ("03a01Wa.wav", "03a02Ta.wav", "08b01Fd.wav"):
        (root / "wav").mkdir(parents=True, exist_ok=True)
        (root / "wav" / name).write_bytes(b"\x00")
    return root


def test_sources_lists_every_builder() -> None:
    result = runner.invoke(app, ["sources"])
    assert result.exit_code == 0
    listed = [line.split()[0] for line in result.output.splitlines() if line and not line.startswith(" ")]
    assert listed == list(SOURCES) == ["mer-caption-plus", "ov-merd", "emer-v1", "emer-v2", "merr", "meld",
                                       "iemocap", "ravdess", "emodb"]


def test_build_then_validate(tmp_path: Path) -> None:
    root = emodb_tree(tmp_path / "emodb")
    out = tmp_path / "out" / "emodb.jsonl"
    result = runner.invoke(app, ["build", "--source", "emodb", "--root", str(root), "--out", str(out),
                                 "--tasks", "onehot,ov_labels", "--limit", "2", "--seed", "5"])
    assert result.exit_code == 0, result.output
    assert "source emodb: 4 rows written from 2 samples" in result.output
    assert "rows per task: onehot 2, ov_labels 2" in result.output and "skipped: 0" in result.output
    assert [r["id"] for _, r in iter_jsonl(out)] == ["emodb/03a01Wa/ov_labels", "emodb/03a01Wa/onehot",
                                                     "emodb/03a02Ta/ov_labels", "emodb/03a02Ta/onehot"]
    result = runner.invoke(app, ["validate", str(out), "--check-media"])
    assert result.exit_code == 0, result.output
    assert f"{out}: 4 rows, 4 valid, 0 with errors" in result.output
    assert "media: audio 4" in result.output and "missing media files: 0" in result.output


def test_build_errors_exit_1(tmp_path: Path) -> None:
    result = runner.invoke(app, ["build", "--source", "nope", "--root", str(tmp_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "unknown source 'nope'; known sources: mer-caption-plus" in result.output
    result = runner.invoke(app, ["build", "--source", "emodb", "--root", str(tmp_path), "--out",
                                 str(tmp_path / "o.jsonl")])
    assert result.exit_code == 1 and "no rows written" in result.output
    result = runner.invoke(app, ["build", "--source", "emodb", "--root", str(emodb_tree(tmp_path / "e")), "--out",
                                 str(tmp_path / "o.jsonl"), "--tasks", "captions"])
    assert result.exit_code == 1 and "unknown task(s) captions" in result.output


def test_validate_prints_each_error_with_line_and_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": "a", "task": "describe"}\n\nnot json\n', encoding="utf-8")
    result = runner.invoke(app, ["validate", str(path)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    assert f"{path}:1 [a] conversations: required field is missing" in lines
    assert f"{path}:1 [a] source: required field is missing" in lines
    assert any(line.startswith(f"{path}:3 <line>: not valid JSON") for line in lines)
    assert f"{path}: 2 rows, 0 valid, 2 with errors" in lines
    result = runner.invoke(app, ["validate", str(path), "--max-errors", "1"])
    errors = [line for line in result.output.splitlines() if re.match(re.escape(str(path)) + r":\d", line)]
    assert result.exit_code == 1 and len(errors) == 1
    assert runner.invoke(app, ["validate", str(tmp_path / "none.jsonl")]).exit_code == 1


def test_fixture_recipe_builds_labelled_train_and_heldout(shared: Path, tmp_path: Path) -> None:
    spec = importlib.util.spec_from_file_location("build_fixtures", repo_root() / "instruct_data" / "build_fixtures.py")
    assert spec and spec.loader
    recipe = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(recipe)
    out = tmp_path / "fixtures"
    assert recipe.main(["--shared", str(shared), "--out", str(out), "--seed", "0"]) == 0
    train = [r for _, r in iter_jsonl(out / "train.jsonl")]
    held = [r for _, r in iter_jsonl(out / "heldout.jsonl")]
    assert validate_file(out / "train.jsonl", check_media=True) == []
    assert validate_file(out / "heldout.jsonl", check_media=True) == []

    def samples(rows: list[dict]) -> set[str]:
        return {r["id"].rsplit("/", 1)[0] for r in rows}

    assert not samples(train) & samples(held)  # a sample's rows share one split
    assert len(samples(train)) + len(samples(held)) == 16 + 10 + 4  # every RAVDESS/EmoDB file + 4 faces
    assert {r["split"] for r in train} == {"train"} and {r["split"] for r in held} == {"heldout"}
    onehot = {r["id"].rsplit("/", 1)[0]: r["labels"][0] for r in train + held if r["task"] == "onehot"}
    assert onehot["faces/emotion_classification/top_left"] == "surprised"
    assert onehot["faces/emotion_classification/bottom_right"] == "angry"
    assert onehot["emodb/03a01Wa"] == "angry" and onehot["ravdess/01-01-05-02-01-01-01_audio"] == "angry"
    # every (source, label) with two or more samples keeps one in training and holds one out
    held_pairs = {(r["source"], r["labels"][0]) for r in held}
    train_pairs = {(r["source"], r["labels"][0]) for r in train}
    assert held_pairs <= train_pairs and len(samples(held)) == 11
    crops = sorted((out / "faces").glob("*.png"))
    assert len(crops) == 4 and all(min(Image.open(p).size) >= 150 for p in crops)
    # the same seed rebuilds byte-identical files
    again = tmp_path / "again"
    recipe.main(["--shared", str(shared), "--out", str(again), "--seed", "0"])
    for name in ("train.jsonl", "heldout.jsonl"):
        assert (again / name).read_bytes() == (out / name).read_bytes()  # crops relative, shared media absolute
