"""A run killed with SIGKILL after step k and resumed ends with weights bit-identical to an uninterrupted run."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from affectllm.training.synthetic import write_synthetic_set

RECIPE = "train/configs/tiny-test.yaml"
STEPS = 40


def _overrides(data: Path, out: Path, cache: Path) -> list[str]:
    return [f"data.train={data}", f"output_dir={out}", f"cache.dir={cache}", f"train.max_steps={STEPS}",
            "train.save_every=3", "train.keep_last=2", "train.batch_size=4", "train.grad_accum=2",
            "optim.scheduler=cosine", "optim.warmup_steps=3", "model.options.whisper=false"]


def _metric_steps(path: Path) -> list[int]:
    if not path.exists():
        return []
    return [json.loads(ln)["step"] for ln in path.read_text().splitlines() if ln.strip() and '"loss"' in ln]


@pytest.mark.slow
def test_sigkill_then_resume_is_bit_identical(tmp_path):
    import torch
    from safetensors.torch import load_file

    from affectllm.training import load_config, train
    from affectllm.training.checkpointing import list_checkpoints

    data = write_synthetic_set(tmp_path / "data", n=12, seed=3)  # 3 batches of 4 a epoch: resumes mid-epoch

    # 1) uninterrupted
    full = train(load_config(RECIPE, _overrides(data, tmp_path / "full", tmp_path / "cache-full")),
                 echo=lambda s: None)
    assert full["steps"] == STEPS

    # 2) the same run in a subprocess, SIGKILLed once metrics.jsonl shows step >= 5
    out = tmp_path / "killed"
    cmd = [sys.executable, "-m", "affectllm", "train", "--config", RECIPE,
           *_overrides(data, out, tmp_path / "cache-killed")]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=dict(os.environ))
    deadline = time.time() + 240
    killed_at = None
    while time.time() < deadline and proc.poll() is None:
        steps = _metric_steps(out / "metrics.jsonl")
        if steps and steps[-1] >= 5:
            os.kill(proc.pid, signal.SIGKILL)
            killed_at = steps[-1]
            break
        time.sleep(0.02)
    proc.wait(timeout=30)
    assert killed_at is not None, "the training subprocess finished or stalled before it could be killed"
    assert proc.returncode == -signal.SIGKILL
    assert killed_at < STEPS and not (out / "summary.json").exists()
    saved = [s for s, _ in list_checkpoints(out)]
    assert saved and max(saved) <= killed_at and all(s % 3 == 0 for s in saved)

    # 3) resume in this process and finish
    lines: list[str] = []
    resumed = train(load_config(RECIPE, _overrides(data, out, tmp_path / "cache-killed")), resume=True,
                    echo=lines.append)
    assert resumed["steps"] == STEPS
    assert any(f"resumed from {out / 'checkpoints'}" in ln for ln in lines)

    a = load_file(str(tmp_path / "full" / "adapter" / "model.safetensors"))
    b = load_file(str(out / "adapter" / "model.safetensors"))
    assert a.keys() == b.keys() and any("lora_" in k for k in a) and any("projector" in k for k in a)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert different == []
    # the log holds every step once, with the uninterrupted run's losses
    full_log = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    res_log = [json.loads(x) for x in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in res_log if "loss" in r] == list(range(1, STEPS + 1))
    assert [r["loss"] for r in res_log if "loss" in r] == [r["loss"] for r in full_log if "loss" in r]
