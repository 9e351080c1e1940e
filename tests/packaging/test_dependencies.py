"""What pyproject.toml declares: torch as a range (not a pin) that the tested versions satisfy, GPU- and
CLIP-only packages in extras whose absence gives an error naming the extra, nothing declared that is never
imported, and the test-only packages in ``dev``."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    tomllib = pytest.importorskip("tomli")

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
CORE = {canonicalize_name(Requirement(r).name): Requirement(r) for r in PROJECT["dependencies"]}
EXTRAS = {k: {canonicalize_name(Requirement(r).name): Requirement(r) for r in v}
          for k, v in PROJECT["optional-dependencies"].items()}


@pytest.mark.parametrize("name, tested", [("torch", "2.14.1"), ("torchvision", "0.29.1")])
def test_torch_is_a_range_that_holds_the_tested_version(name, tested):
    spec = CORE[name].specifier
    assert not any(s.operator in ("==", "===") for s in spec), spec
    assert spec.contains(tested) and not spec.contains("99.0")  # bounded above: a major release is a new test


def test_gpu_and_clip_packages_are_extras():
    assert "bitsandbytes" not in CORE and "bitsandbytes" in EXTRAS["gpu"]
    assert "open-clip-torch" not in CORE and "open-clip-torch" in EXTRAS["clip"]
    assert EXTRAS["web"]["gradio"].specifier.contains("6.0") and not EXTRAS["web"]["gradio"].specifier.contains("5.9")
    assert {"prometheus-client", "jsonschema", "fastapi", "uvicorn"} <= set(EXTRAS["serve"])
    assert {"scikit-learn", "openai", "open-clip-torch"} <= set(EXTRAS["dev"])  # tests import them


def test_no_declared_package_goes_unimported():
    declared = {n for group in (CORE, *EXTRAS.values()) for n in group}
    assert "sse-starlette" not in declared
    sources = "\n".join(p.read_text(errors="ignore") for p in (ROOT / "affectllm").rglob("*.py"))
    assert "prometheus_client" in sources and "jsonschema" in sources


def _run(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300,
                          env={"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin"})


def test_gpu_and_clip_imports_are_lazy_and_name_their_extra():
    code = """
import sys
sys.modules["open_clip"] = None      # as if not installed: importing it raises ImportError
sys.modules["bitsandbytes"] = None
import affectllm, affectllm.model.language_model as lm, affectllm.model.towers.vision as vision
from affectllm.model.configuration_affectllm import VisionTowerSpec
for name, call in [("clip", lambda: vision.OpenClipVisionTower(VisionTowerSpec(type="open_clip", model="ViT-B-32"))),
                   ("gpu", lm.check_quantization_supported)]:
    try:
        call()
    except ImportError as err:
        print(name, "affectllm[" + name + "]" in str(err))
"""
    out = _run(code)
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["clip", "True", "gpu", "True"]
