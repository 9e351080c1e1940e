"""``--backend ray`` on a real local Ray cluster: the local backend's records, and no loss after a killed worker.

One cluster for the module (``ray.init`` with 2 CPUs on this machine). The first test joins it from another
process through ``RAY_ADDRESS`` with the documented command line, as a user joins an existing cluster; the
second kills one Ray Data actor's process in the middle of a job.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import pytest
from caption_media import small_audio_folder

pytest.importorskip("ray.data", reason="ray[data] is the optional 'cluster' extra; pip install 'affectllm[cluster]'")

ACTOR_TITLE = b"ray::MapWorker(MapBatches(CaptionActor))"  # the process title of a caption actor


@pytest.fixture(scope="module")
def ray_cluster():
    """The GCS address of a private local Ray cluster with 2 CPUs (shut down after the module)."""
    import ray

    ray.init(address="local", num_cpus=2, include_dashboard=False, log_to_driver=False, configure_logging=False,
             object_store_memory=128 * 1024 * 1024)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def _folder(tmp_path: Path, n: int, seconds: float) -> Path:
    folder = tmp_path / "clips"
    small_audio_folder(folder, n, seconds=seconds)
    (folder / "broken.wav").write_bytes(b"not audio at all")
    (folder / "empty.mp4").write_bytes(b"")
    return folder


def _records(path: Path) -> list[dict]:
    return [json.loads(x) for x in path.read_text().splitlines() if x.strip()]


def _actor_pids() -> list[int]:
    pids = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/cmdline", "rb") as f:
                    if f.read().startswith(ACTOR_TITLE):
                        pids.append(int(name))
            except OSError:
                continue
    return pids


@pytest.mark.slow
def test_ray_address_run_matches_the_local_backend(tmp_path, ray_cluster, tiny_checkpoint):
    """The CLI joined to the cluster by RAY_ADDRESS gives the local backend's ids, statuses and labels."""
    from affectllm.captioning.records import strip_timing
    from affectllm.captioning.run import CaptionOptions, run_caption

    folder = _folder(tmp_path, 4, seconds=0.3)
    local = run_caption(CaptionOptions(paths=[str(folder)], out=str(tmp_path / "local.jsonl"), model=str(tiny_checkpoint),
                                       max_new_tokens=4, progress=False))
    env = {**os.environ, "RAY_ADDRESS": ray_cluster, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    cmd = [sys.executable, "-m", "affectllm", "caption", str(folder), "--out", str(tmp_path / "ray.jsonl"),
           "--backend", "ray", "--model", str(tiny_checkpoint), "--max-new-tokens", "4", "--no-progress"]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stderr[-3000:]  # two inputs failed, as locally
    assert (local.ok, local.failed) == (4, 2)

    a = {r["id"]: strip_timing(r) for r in _records(tmp_path / "local.jsonl")}
    b_list = _records(tmp_path / "ray.jsonl")
    b = {r["id"]: strip_timing(r) for r in b_list}
    assert len(b_list) == len(b) == 6  # each id once
    assert sorted(a) == sorted(b) == sorted([f"clip_{i:02d}.wav" for i in range(4)] + ["broken.wav", "empty.mp4"])
    for rid in a:  # batch 1 on both sides: the same greedy tokens, so the whole record agrees
        assert a[rid] == b[rid], rid
    assert {r["status"] for r in b.values()} == {"ok", "error"}


@pytest.mark.slow
def test_killed_actor_loses_and_duplicates_nothing(tmp_path, ray_cluster, tiny_checkpoint):
    """SIGKILL one of two caption actors mid-job: after the job (and a --resume if it stopped) every id is once."""
    from affectllm.captioning.run import CaptionOptions, run_caption

    n = 10
    folder = _folder(tmp_path, n, seconds=1.0)
    expected = sorted([f"clip_{i:02d}.wav" for i in range(n)] + ["broken.wav", "empty.mp4"])
    out = tmp_path / "caps.jsonl"
    opts = CaptionOptions(paths=[str(folder)], out=str(out), model=str(tiny_checkpoint), max_new_tokens=16, progress=False,
                          backend="ray", ray_workers=2)
    outcome: dict = {}

    def job():
        try:
            outcome["summary"] = run_caption(opts)
        except RuntimeError as e:  # the job may stop; the records written so far stay in the output
            outcome["error"] = e

    worker = threading.Thread(target=job, daemon=True)
    worker.start()
    killed = None
    deadline = time.time() + 180
    while time.time() < deadline and worker.is_alive() and killed is None:
        done = len(_records(out)) if out.exists() else 0
        pids = _actor_pids()
        if done >= 2 and pids:
            os.kill(pids[0], signal.SIGKILL)
            killed = (pids[0], done)
        time.sleep(0.05)
    assert killed is not None, "the job finished (or stalled) before an actor could be killed"
    assert len(_records(out)) < len(expected), "the kill was not mid-run"
    worker.join(timeout=240)
    assert not worker.is_alive()
    if "error" in outcome:  # the documented recovery: the same run with --resume
        opts.resume = True
        run_caption(opts)
    print(f"killed actor {killed[0]} after {killed[1]} records; the job "
          + ("stopped and --resume finished it" if "error" in outcome else "finished by itself (batch retried)"))
    ids = [r["id"] for r in _records(out)]
    assert Counter(ids) == Counter(expected), Counter(ids) - Counter(expected)
