"""Two processes (accelerate, gloo on CPU) train the same model as one process with the same global batch.

One process with ``batch_size=2, grad_accum=2`` and two processes with ``batch_size=2, grad_accum=1`` see the
same global batches (process r takes global batches r, r+2, ...; one process accumulates them in that order)
and average the same per-batch gradients, so after N steps the trainable weights agree up to float summation
order. The 2-process run logs each step's loss once (the global mean), writes checkpoints once (rank 0), and a
2-process ``--resume`` from an earlier checkpoint ends with the uninterrupted 2-process weights exactly.
This is the template for the GPU configs in ``train/accelerate/`` (same code path, NCCL instead of gloo).
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from affectllm.training.synthetic import write_synthetic_set

RECIPE = "train/configs/tiny-test.yaml"
STEPS = 6  # 8 rows, global batch 4: 2 steps an epoch, so the run crosses two epoch boundaries
ATOL = 2e-5  # |w_2proc - w_1proc| after 6 Adam steps at lr 3e-3 (measured 0 here; sums may reorder elsewhere)


def _overrides(data: Path, out: Path, cache: Path, grad_accum: int) -> list[str]:
    return [f"data.train={data}", f"output_dir={out}", f"cache.dir={cache}", f"train.max_steps={STEPS}",
            "train.batch_size=2", f"train.grad_accum={grad_accum}", "train.save_every=2", "train.keep_last=2",
            "model.options.whisper=false"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch(args: list[str], resume: bool = False) -> subprocess.CompletedProcess:
    """``accelerate launch --multi_gpu --num_processes 2 -m affectllm train ...`` (on CPU: gloo, 2 processes)."""
    accelerate = Path(sys.executable).with_name("accelerate")
    launcher = [str(accelerate)] if accelerate.exists() else [sys.executable, "-m", "accelerate.commands.launch"]
    cmd = [*launcher, "launch", "--multi_gpu", "--num_processes", "2", "--num_machines", "1",
           "--mixed_precision", "no", "--dynamo_backend", "no", "--main_process_ip", "127.0.0.1",
           "--main_process_port", str(_free_port()), "-m", "affectllm", "train", "--config", RECIPE, *args]
    if launcher[0] != str(accelerate):
        cmd.remove("launch")
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _losses(out: Path) -> list[tuple[int, float]]:
    lines = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines() if x.strip()]
    return [(r["step"], r["loss"]) for r in lines if "loss" in r]


@pytest.mark.slow
def test_two_processes_train_what_one_process_trains(tmp_path):
    import torch
    from safetensors.torch import load_file

    from affectllm.training import load_config, train
    from affectllm.training.checkpointing import list_checkpoints

    data = write_synthetic_set(tmp_path / "data", n=8, seed=3)
    cache = tmp_path / "cache"  # shared: both runs read the same tower features

    one = train(load_config(RECIPE, _overrides(data, tmp_path / "one", cache, grad_accum=2)), echo=lambda s: None)
    assert one["steps"] == STEPS

    two = tmp_path / "two"
    proc = _launch(_overrides(data, two, cache, grad_accum=1))
    assert proc.stdout.count("done: 6 steps") == 1  # one process speaks
    assert "2 process(es)" in proc.stdout

    a = load_file(str(tmp_path / "one" / "adapter" / "model.safetensors"))
    b = load_file(str(two / "adapter" / "model.safetensors"))
    assert a.keys() == b.keys() and any("lora_" in k for k in a) and any("projector" in k for k in a)
    step4 = load_file(str(two / "checkpoints" / "step-00000004" / "model.safetensors"))
    moved = max(float((a[k] - step4[k]).abs().max()) for k in a)
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"max |w_2proc - w_1proc| = {worst:.2e}; max |w_6 - w_4| = {moved:.2e}")
    assert worst <= ATOL < moved, (worst, moved)  # equal to the tolerance; the weights did move meanwhile

    # losses logged once per step, the global batch's mean (= one process's value), checkpoints written once
    l1, l2 = _losses(tmp_path / "one"), _losses(two)
    assert [s for s, _ in l2] == list(range(1, STEPS + 1))
    assert all(abs(x - y) <= 1e-4 * max(1.0, abs(x)) for (_, x), (_, y) in zip(l1, l2)), (l1, l2)
    assert [s for s, _ in list_checkpoints(two)] == [4, 6]
    assert not [p for p in (two / "checkpoints").iterdir() if not p.name.startswith("step-")]  # no temp leftovers

    # resume under 2 processes from step 4 (as if killed after it): the uninterrupted 2-process weights exactly
    final = two / "adapter-uninterrupted"
    shutil.copytree(two / "adapter", final)
    shutil.rmtree(two / "checkpoints" / "step-00000006")
    proc = _launch(_overrides(data, two, cache, grad_accum=1), resume=True)
    assert proc.stdout.count("resumed from") == 1 and "(step 4," in proc.stdout
    c = load_file(str(two / "adapter" / "model.safetensors"))
    base = load_file(str(final / "model.safetensors"))
    assert [k for k in c if not torch.equal(c[k], base[k])] == []
    assert [s for s, _ in _losses(two)] == list(range(1, STEPS + 1))
