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
