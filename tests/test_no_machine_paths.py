"""No shipped file holds an absolute machine path: every file of the package (code and package data) and every
text file of the repository tracked by git is scanned for /root, /home/<user>, /Users/<user>, /work/, /tmp/ and
C:\\Users\\ paths. Machine paths belong in the user's environment ($AFFECTLLM_HOME, --flags), never in the repo."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
PATTERN = re.compile(
    rb"(?<![\w.~$-])("  # not the tail of a longer token (a URL path, ~/x, $HOME/x)
    rb"/root(?:/|\b)|/home/[A-Za-z0-9_.-]+|/Users/[A-Za-z0-9_.-]+|/work/|/tmp/|[A-Za-z]:\\\\+Users\\\\+)"
)
SKIP_DIRS = {".git", ".venv", "__pycache__", ".pytest_cache", ".ruff_cache", "build", "dist"}


def shipped_files() -> list[Path]:
    """Tracked and untracked-but-not-ignored files (what a commit and a wheel would contain), else a walk."""
    files: set[Path] = set()
    if shutil.which("git") and (ROOT / ".git").exists():
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=ROOT,
                             capture_output=True, check=True).stdout
        files |= {ROOT / p for p in out.decode().split("\0") if p}
    else:
        files |= {p for p in ROOT.rglob("*") if not SKIP_DIRS & set(p.relative_to(ROOT).parts)}
    # all package data, whatever git says (the wheel takes affectllm/assets/** as they are on disk)
    files |= {p for p in (ROOT / "affectllm").rglob("*") if "__pycache__" not in p.parts}
    return sorted(p for p in files if p.is_file())


def machine_paths(data: bytes) -> list[str]:
    return sorted({m.group(1).decode(errors="replace") for m in PATTERN.finditer(data)})


def test_pattern_finds_machine_paths_and_spares_ids():
    assert machine_paths(b'"_name_or_path": "/root/.cache/affectllm/gemma-3-270m"') == ["/root/"]
    assert machine_paths(b"open('/home/alice/data.csv')") == ["/home/alice"]
    assert machine_paths(b"C:\\\\Users\\\\bob\\\\x") and machine_paths(b"cd /work/main") == ["/work/"]
    assert machine_paths(b"f = '/tmp/x.mp4'") == ["/tmp/"]
    for fine in (b"registry:gemma-3-270m", b"~/.cache/affectllm", b"https://example.org/tmp/x", b"$HOME/x",
                 b"../shared/media/x.mp4", b"Qwen/Qwen2.5-7B-Instruct", b"tmp_path / 'x'"):
        assert machine_paths(fine) == [], fine


def test_no_shipped_file_holds_a_machine_path():
    files = shipped_files()
    if len(files) < 20:
        pytest.skip("not a source checkout")
    assert any(p.name == "config.json" and "starter" in p.parts for p in files)
    found = {}
    for p in files:
        if p.resolve() == Path(__file__).resolve():
            continue  # this file spells the patterns out
        hits = machine_paths(p.read_bytes())
        if hits:
            found[str(p.relative_to(ROOT))] = hits
    assert found == {}, f"absolute machine paths in shipped files: {found}"


def test_a_saved_checkpoint_holds_no_machine_path(tmp_path):
    """The LLM config remembers the folder it was loaded from (``_name_or_path``); the saver drops it."""
    from affectllm.checkpoint import load_checkpoint, save_checkpoint
    from affectllm.testing import tiny_model_and_processor

    model, proc = tiny_model_and_processor(seed=0)
    model.config.text_config._name_or_path = "/root/.cache/affectllm/gemma-3-270m"
    model.config._name_or_path = str(tmp_path / "somewhere")
    out = save_checkpoint(model, proc, tmp_path / "ckpt")
    found = {p.name: machine_paths(p.read_bytes()) for p in out.iterdir() if machine_paths(p.read_bytes())}
    assert found == {}
    assert str(tmp_path).encode() not in (out / "config.json").read_bytes()
    assert load_checkpoint(out)[0].config.text_config.hidden_size == model.config.text_config.hidden_size
