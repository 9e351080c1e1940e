"""Shards: K processes with the same arguments cover every input exactly once."""

from __future__ import annotations

import json

import pytest
from caption_media import small_audio_folder

from affectllm.captioning.inputs import CaptionInput
from affectllm.captioning.sharding import Shard, resolve_shard, select_shard, shard_of, shard_path


@pytest.mark.parametrize("k", [1, 2, 3, 7])
def test_shards_partition_the_inputs(k):
    items = [CaptionInput(f"clip_{i:04d}.mp4", f"/d/clip_{i:04d}.mp4") for i in range(500)]
    parts = [select_shard(items, Shard(i, k)) for i in range(k)]
    ids = [x.id for part in parts for x in part]
    assert sorted(ids) == sorted(x.id for x in items)  # every input once
    assert len(ids) == len(set(ids))
    if k > 1:  # hash shards are binomially balanced: spread within a few standard deviations
        assert max(len(p) for p in parts) - min(len(p) for p in parts) < 4 * (500 / k) ** 0.5


def test_shard_membership_ignores_order_and_additions():
    items = [CaptionInput(f"v{i}", f"v{i}") for i in range(50)]
    a = {x.id for x in select_shard(items, Shard(1, 4))}
    more = list(reversed(items)) + [CaptionInput(f"new{i}", f"new{i}") for i in range(10)]
    b = {x.id for x in select_shard(more, Shard(1, 4))}
    assert a == b - {f"new{i}" for i in range(10)}
    assert shard_of("v3", 4) == shard_of("v3", 4)


def test_resolve_shard_from_options_and_from_a_launcher(monkeypatch):
    monkeypatch.delenv("WORLD_SIZE", raising=False)
    assert resolve_shard(None, None) == Shard(0, 1)
    assert resolve_shard(4, 2) == Shard(2, 4)
    with pytest.raises(ValueError, match="--shard-index must be in 0..3"):
        resolve_shard(4, 4)
    monkeypatch.setenv("WORLD_SIZE", "3")
    monkeypatch.setenv("RANK", "2")
    monkeypatch.setenv("LOCAL_RANK", "0")
    assert resolve_shard(None, None) == Shard(2, 3, local_rank=0)  # accelerate launch: shard = process


def test_shard_output_names():
    assert shard_path("out/caps.jsonl", Shard(1, 4)) == "out/caps.shard-00001-of-00004.jsonl"
    assert shard_path("caps.csv", Shard(0, 1)) == "caps.csv"
    assert shard_path(None, Shard(1, 4)) is None


def test_sharded_runs_write_every_id_exactly_once(tmp_path, tiny):
    from affectllm.captioning.run import CaptionOptions, run_caption

    folder = tmp_path / "clips"
    small_audio_folder(folder, 7, seconds=0.3)
    for i in range(3):
        opts = CaptionOptions([str(folder)], out=str(tmp_path / "caps.jsonl"), num_shards=3, shard_index=i,
                              max_new_tokens=2, progress=False)
        summary = run_caption(opts, model_and_processor=tiny)
        assert summary.failed == 0
    ids = []
    for i in range(3):
        shard_file = tmp_path / f"caps.shard-{i:05d}-of-00003.jsonl"
        ids += [json.loads(line)["id"] for line in shard_file.read_text().splitlines()]
    assert sorted(ids) == [f"clip_{i:02d}.wav" for i in range(7)]


@pytest.mark.slow
def test_two_shard_processes_then_one_merge_command(tmp_path, cli_app, tiny_checkpoint):
    """``--num-shards 2`` in two concurrent processes -> two files; ``caption-merge`` -> every id exactly once."""
    import os
    import subprocess
    import sys

    from typer.testing import CliRunner

    folder = tmp_path / "clips"
    small_audio_folder(folder, 6, seconds=0.3)
    (folder / "corrupt.wav").write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk" * 10)
    out = tmp_path / "caps.jsonl"
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    procs = [subprocess.Popen([sys.executable, "-m", "affectllm", "caption", str(folder), "--out", str(out),
                               "--model", str(tiny_checkpoint), "--max-new-tokens", "2", "--no-progress", "--num-shards", "2",
                               "--shard-index", str(i)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
             for i in range(2)]
    errs = [p.communicate(timeout=240)[1].decode() for p in procs]
    codes = sorted(p.returncode for p in procs)
    assert codes == [0, 1], errs  # the shard holding corrupt.wav exits 1, the other 0
    shard_ids = [[json.loads(x)["id"] for x in (tmp_path / f"caps.shard-{i:05d}-of-00002.jsonl").read_text()
                  .splitlines()] for i in range(2)]
    assert all(shard_ids) and not set(shard_ids[0]) & set(shard_ids[1])
    assert not out.exists()

    result = CliRunner().invoke(cli_app, ["caption-merge", str(out)])
    assert result.exit_code == 0, result.output
    assert "merged 2 shard file(s)" in result.stderr and "7 records (1 with status error)" in result.stderr
    merged = [json.loads(x) for x in out.read_text().splitlines()]
    assert [r["id"] for r in merged] == shard_ids[0] + shard_ids[1]
    assert sorted(r["id"] for r in merged) == sorted([f"clip_{i:02d}.wav" for i in range(6)] + ["corrupt.wav"])


def test_merge_refuses_incomplete_or_overlapping_shards(tmp_path, cli_app):
    from typer.testing import CliRunner

    def shard(i, k, ids, tail=""):
        p = tmp_path / f"caps.shard-{i:05d}-of-{k:05d}.jsonl"
        p.write_text("".join(json.dumps({"id": x, "status": "ok"}) + "\n" for x in ids) + tail)
        return p

    run = CliRunner().invoke
    out = tmp_path / "caps.jsonl"
    shard(0, 3, ["a", "b"])
    shard(2, 3, ["c"])
    r = run(cli_app, ["caption-merge", str(out)])
    assert r.exit_code == 2 and "1 of 3 shard files missing (caps.shard-00001-of-00003.jsonl)" in r.stderr
    shard(1, 3, ["d"], tail='{"id": "e", "sta')  # killed mid-write
    r = run(cli_app, ["caption-merge", str(out)])
    assert r.exit_code == 2 and "caps.shard-00001-of-00003.jsonl: ends in a partial record" in r.stderr
    shard(1, 3, ["d", "a"])  # an id in two shards
    r = run(cli_app, ["caption-merge", str(out)])
    assert r.exit_code == 2 and "id 'a' is also in" in r.stderr
    assert not out.exists()  # nothing written by a failed merge
    shard(1, 3, ["d"])
    r = run(cli_app, ["caption-merge", str(out)])
    assert r.exit_code == 0 and [json.loads(x)["id"] for x in out.read_text().splitlines()] == ["a", "b", "d", "c"]
    # explicit files, CSV output
    r = run(cli_app, ["caption-merge", "--out", str(tmp_path / "two.csv"),
                      str(tmp_path / "caps.shard-00000-of-00003.jsonl"), str(tmp_path / "caps.shard-00002-of-00003.jsonl")])
    assert r.exit_code == 0, r.output
    from affectllm.captioning.merge import read_records

    assert [x["id"] for x in read_records(tmp_path / "two.csv")] == ["a", "b", "c"]
