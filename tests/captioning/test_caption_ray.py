"""``--backend ray``: the same records as the local backend, computed by Ray Data actors on a local cluster."""

from __future__ import annotations

import json

import pytest
from caption_media import small_audio_folder

pytest.importorskip("ray.data", reason="ray[data] is the optional 'cluster' extra; pip install 'affectllm[cluster]'")


@pytest.mark.slow
def test_ray_backend_matches_the_local_backend(tmp_path, tiny_checkpoint):
    from affectllm.captioning.records import strip_timing
    from affectllm.captioning.run import CaptionOptions, run_caption

    folder = tmp_path / "clips"
    small_audio_folder(folder, 4, seconds=0.3)
    (folder / "broken.wav").write_bytes(b"not audio at all")
    common = dict(paths=[str(folder)], model=str(tiny_checkpoint), max_new_tokens=3, progress=False)
    local = run_caption(CaptionOptions(out=str(tmp_path / "local.jsonl"), **common))
    ray_run = run_caption(CaptionOptions(out=str(tmp_path / "ray.jsonl"), backend="ray", batch_size=2,
                                         extra={"ray_num_cpus": 1}, **common))
    assert (local.ok, local.failed) == (ray_run.ok, ray_run.failed) == (4, 1)

    def load(name):
        return {r["id"]: strip_timing(r) for r in map(json.loads, (tmp_path / name).read_text().splitlines())}

    a, b = load("local.jsonl"), load("ray.jsonl")
    assert sorted(a) == sorted(b) == sorted([f"clip_{i:02d}.wav" for i in range(4)] + ["broken.wav"])
    for rid in a:  # batching inside the actor may change generated text; evidence and status may not
        assert a[rid]["status"] == b[rid]["status"] and a[rid]["evidence"] == b[rid]["evidence"]
        assert a[rid]["model"] == b[rid]["model"] and a[rid]["error"] == b[rid]["error"]
