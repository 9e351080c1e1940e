"""A wheel install (no source checkout beside it) ships the evaluation tasks: build the wheel, install it into a
temporary venv, list the tasks with that venv's python."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_wheel_install_lists_the_tasks(tmp_path):
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    src = tmp_path / "src"  # build from a copy: setuptools writes build/ and *.egg-info beside the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "affectllm", src / "affectllm", ignore=shutil.ignore_patterns("__pycache__"))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, env=env, cwd=tmp_path, timeout=300)
    wheel = next((tmp_path / "dist").glob("affectllm-*.whl"))

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    py = venv / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    subprocess.run([sys.executable, "-m", "pip", "--python", str(py), "install", "--no-deps", "--no-index", "-q",
                    str(wheel)], check=True, env=env, cwd=tmp_path, timeout=300)
    # the dependencies come from the environment running this test, appended after the venv's own site-packages
    site = Path(subprocess.run([str(py), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True, env=env).stdout.strip())
    (site / "outer_deps.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    code = ("import affectllm, affectllm.evaluation.tasks as t; print(affectllm.__file__); "
            "print(*(x.name for x in t.list_tasks()))")
    env.pop("AFFECTLLM_TASKS_DIR", None)
    out = subprocess.run([str(py), "-c", code], capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120)
    assert out.returncode == 0, out.stderr
    where, names = out.stdout.splitlines()
    assert Path(where).resolve().is_relative_to(venv.resolve())  # the installed copy, not the checkout
    assert {"ov-mer", "mer2023", "emer-v1", "ravdess"} <= set(names.split())
    assert len(names.split()) == len(list((ROOT / "affectllm" / "evaluation" / "task_files").glob("*.yaml")))
