"""The CLI: `eval score` writes results.json / samples.jsonl / report.html, `eval compare` prints runs side by side,
and scoring (library and CLI) never imports torch."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from typer.testing import CliRunner

from affectllm.cli.eval import app

runner = CliRunner()


@pytest.fixture(scope="module")
def scored(tmp_path_factory, ov, wheel_dir):
    out = tmp_path_factory.mktemp("ovmerd")
    res = runner.invoke(app, ["score", "--task", "ov-mer", "--gt", str(ov["gt"]), "--pred", str(ov["pred"]),
                              "--wheel-dir", str(wheel_dir), "--out", str(out),
                              "--synonym-groups", str(ov["groups"])])
    assert res.exit_code == 0, res.output
    return out, res.output


def test_score_writes_three_outputs(scored):
    out, output = scored
    r = json.loads((out / "results.json").read_text())
    keys = ["M1", "M2"] + [f"M3-W{k}-L{lv}" for k in range(1, 6) for lv in (1, 2)]
    for k in keys:
        assert set(r[k]) >= {"precision", "recall", "f1"} and 0 <= r[k]["f1"] <= 1
    assert round(r["M-avg"], 6) == 0.459184 and r["n_samples"] == 332
    assert r["resources"]["files"]["format.csv"].startswith("ba6de7d6")
    assert r["prediction_file"]["sha256"].startswith("76d610a2") and r["version"]
    assert r["chance_floor"]["best_k"] == 4 and "strict" in r and "MER2024" in r
    lines = (out / "samples.jsonl").read_text().splitlines()
    assert len(lines) == 332
    s0 = json.loads(lines[0])
    assert s0["id"] == "sample_00000000" and s0["pred"] == ["confused", "helpless"]
    assert s0["metrics"]["M3-W1-L1"] == {"gt": ["happy"], "pred": ["sad", "surprised"], "precision": 0.0,
                                         "recall": 0.0}
    html = (out / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 2 and "Chance floor" in html
    assert "0.4592" in output and "chance M-avg" in output


def test_compare_prints_side_by_side(scored, tmp_path, ov, wheel_dir):
    out, _ = scored
    other = tmp_path / "const"
    const = tmp_path / "const.csv"
    ids = [json.loads(x)["id"] for x in (out / "samples.jsonl").read_text().splitlines()]
    const.write_text("name,openset\n" + "".join(f"{i},\"['happy', 'sad']\"\n" for i in ids), encoding="utf-8")
    res = runner.invoke(app, ["score", "--task", "ov-mer", "--gt", str(ov["gt"]), "--pred", str(const),
                              "--wheel-dir", str(wheel_dir), "--out", str(other), "--no-html"])
    assert res.exit_code == 0, res.output
    assert not (other / "report.html").exists()
    cmp = runner.invoke(app, ["compare", str(out), str(other)])
    assert cmp.exit_code == 0, cmp.output
    row = next(line for line in cmp.output.splitlines() if line.strip("│ ").startswith("M-avg"))
    m_const = json.loads((other / "results.json").read_text())["M-avg"]
    assert "0.4592" in row and f"{m_const:.4f}" in row
    assert "chance M-avg" in cmp.output and "n_samples" in cmp.output


def test_errors_are_one_line_with_exit_code_2(tmp_path, ov, wheel_dir):
    bad = tmp_path / "bad.csv"
    bad.write_text("name,openset\na,['x', 'y']\n", encoding="utf-8")
    res = runner.invoke(app, ["score", "--task", "ov-mer", "--gt", str(ov["gt"]), "--pred", str(bad),
                              "--wheel-dir", str(wheel_dir), "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "bad.csv:2: 3 fields" in res.output
    res = runner.invoke(app, ["score", "--task", "nope", "--gt", str(ov["gt"]), "--pred", str(ov["pred"]),
                              "--out", str(tmp_path / "o")])
    assert res.exit_code == 2 and "unknown task 'nope'" in res.output and "ov-mer" in res.output
    res = runner.invoke(app, ["compare", str(tmp_path / "missing")])
    assert res.exit_code == 2 and "no results.json" in res.output


def test_scoring_does_not_import_torch(tmp_path, ov, wheel_dir):
    code = (
        "import sys\n"
        "import affectllm.evaluation as ev\n"
        f"r = ev.score('ov-mer', r'{ov['gt']}', r'{ov['pred']}', wheel_dir=r'{wheel_dir}')\n"
        "from typer.testing import CliRunner\n"
        "from affectllm.cli.eval import app\n"
        f"res = CliRunner().invoke(app, ['score', '--task', 'ov-mer', '--gt', r'{ov['gt']}', '--pred', r'{ov['pred']}',"
        f" '--wheel-dir', r'{wheel_dir}', '--out', r'{tmp_path / 'o'}'])\n"
        "assert res.exit_code == 0, res.output\n"
        "bad = [m for m in ('torch', 'transformers') if m in sys.modules]\n"
        "print('HEAVY', bad, round(r['M-avg'], 6))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "HEAVY [] 0.459184" in out.stdout
