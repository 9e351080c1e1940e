"""Checkpoints under sharded training: FSDP2 on two CPU processes (gloo), through accelerate's save/load_state.

Two processes launched with the shipped ``train/accelerate/fsdp2.yaml`` (``--num_processes 2 --mixed_precision
no`` on top) shard the tiny model with FSDP2 (``sharding.enable_cpu_fsdp``: accelerate picks FSDP only on GPUs).
Each checkpoint holds accelerate's sharded state (``torch.distributed.checkpoint`` files from both ranks, each
rank's RNG) plus rank 0's progress JSON; the final adapter holds the gathered weights, equal in keys and shapes
(and, measured, in values) to one process with the same global batch, and loads like any checkpoint. An FSDP
``--resume`` from an earlier checkpoint ends with the uninterrupted FSDP weights bit for bit, and resuming the
FSDP checkpoint without FSDP fails with the folder and the launch to use. Plain-format checkpoints are covered
by test_training_multiprocess.py / test_training_resume.py; the format check by the fast tests below.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from types import SimpleNamespace

import pytest

from affectllm.training.synthetic import write_synthetic_set

RECIPE = "train/configs/tiny-test.yaml"
FSDP_CONFIG = "train/accelerate/fsdp2.yaml"
STEPS = 6  # 8 rows, global batch 4: 2 steps an epoch; checkpoints at 2, 4 (kept: 4, 6)
ATOL = 2e-5  # |w_fsdp - w_1proc| after 6 Adam steps (measured 0.0 on this machine; reductions may reorder elsewhere)


def _overrides(data: Path, evals: Path, out: Path, cache: Path, grad_accum: int) -> list[str]:
    return [f"data.train={data}", f"data.eval={evals}", f"output_dir={out}", f"cache.dir={cache}",
            f"train.max_steps={STEPS}", "train.batch_size=2", f"train.grad_accum={grad_accum}", "train.save_every=2",
            "train.keep_last=2", "model.options.whisper=false"]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _launch_fsdp(args: list[str], resume: bool = False) -> subprocess.CompletedProcess:
    """``accelerate launch --config_file train/accelerate/fsdp2.yaml --num_processes 2 -m affectllm train ...``."""
    accelerate = Path(sys.executable).with_name("accelerate")
    launcher = [str(accelerate), "launch"] if accelerate.exists() else [sys.executable, "-m", "accelerate.commands.launch"]
    cmd = [*launcher, "--config_file", FSDP_CONFIG, "--num_processes", "2", "--mixed_precision", "no",
           "--main_process_ip", "127.0.0.1", "--main_process_port", str(_free_port()),
           "-m", "affectllm", "train", "--config", RECIPE, *args, *(["--resume"] if resume else [])]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
    return proc


def _assert_sharded_checkpoint(folder: Path) -> None:
    """accelerate's FSDP state with shards from both ranks, each rank's RNG, rank 0's progress JSON."""
    from affectllm.training.checkpointing import ACCEL_STATE, SHARDED_FORMAT, STATE_JSON

    state = folder / ACCEL_STATE
    for part in ("pytorch_model_fsdp_0", "optimizer_0"):
        shards = sorted(p.name for p in (state / part).glob("*.distcp"))
        assert shards == ["__0_0.distcp", "__1_0.distcp"], (folder, part, shards)
        assert all((state / part / s).stat().st_size > 0 for s in shards)
        assert (state / part / ".metadata").is_file()
    assert sorted(p.name for p in state.glob("random_states_*.pkl")) == ["random_states_0.pkl", "random_states_1.pkl"]
    info = json.loads((folder / STATE_JSON).read_text())
    assert info["format"] == SHARDED_FORMAT
    assert info["launch"] == {"kind": "fsdp", "num_processes": 2, "fsdp_version": 2,
                              "state_dict_type": "SHARDED_STATE_DICT"}
    assert not (folder / "model.safetensors").exists()  # the weights live in the shards only


@pytest.mark.slow
def test_fsdp_checkpoints_adapter_and_exact_resume(tmp_path):
    import torch
    from safetensors.torch import load_file

    from affectllm.model.checkpoint import load_checkpoint
    from affectllm.training import load_config, train
    from affectllm.training.checkpointing import list_checkpoints
    from affectllm.training.config import ConfigError

    data = write_synthetic_set(tmp_path / "data", n=8, seed=3)
    evals = write_synthetic_set(tmp_path / "eval", n=2, seed=4)  # eval under FSDP: towers on gathered weights
    cache = tmp_path / "cache"

    one = train(load_config(RECIPE, _overrides(data, evals, tmp_path / "one", cache, 2)), echo=lambda s: None)
    assert one["steps"] == STEPS

    fsdp = tmp_path / "fsdp"
    proc = _launch_fsdp(_overrides(data, evals, fsdp, cache, 1))
    assert proc.stdout.count("done: 6 steps") == 1
    shown = re.search(r"FSDP2: (\d+)/(\d+) parameter tensors sharded over 2 processes", proc.stdout)
    assert shown and int(shown[1]) == int(shown[2]) > 0, proc.stdout[-2000:]  # every parameter a DTensor shard

    assert [s for s, _ in list_checkpoints(fsdp)] == [4, 6]  # keep_last=2 rotation
    assert not [p for p in (fsdp / "checkpoints").iterdir() if not p.name.startswith("step-")]  # no temp leftovers
    for _, folder in list_checkpoints(fsdp):
        _assert_sharded_checkpoint(folder)

    # the adapter: full gathered weights, same keys and shapes as one process (and equal values), loadable
    a = load_file(str(tmp_path / "one" / "adapter" / "model.safetensors"))
    b = load_file(str(fsdp / "adapter" / "model.safetensors"))
    assert a.keys() == b.keys() and any("lora_" in k for k in a) and any("projector" in k for k in a)
    assert {k: a[k].shape for k in a} == {k: b[k].shape for k in b}
    worst = max(float((a[k] - b[k]).abs().max()) for k in a)
    print(f"max |w_fsdp - w_1proc| = {worst:.2e}")
    assert worst <= ATOL, worst
    model, _ = load_checkpoint(fsdp / "adapter")
    lora = next(k for k in b if "lora_B" in k)
    assert torch.equal(model.state_dict()[lora], b[lora]) and bool(b[lora].abs().sum() > 0)
    assert json.loads((fsdp / "summary.json").read_text())["eval"]["eval_samples"] == 2

    # an FSDP checkpoint resumed without FSDP: a clear error naming the folder and the launch that resumes it
    with pytest.raises(ConfigError, match=r"step-00000006.*FSDP.*fsdp2\.yaml"):
        train(load_config(RECIPE, _overrides(data, evals, fsdp, cache, 2)), resume=True, echo=lambda s: None)

    # FSDP resume from step 4 (as if killed after it): the uninterrupted FSDP weights exactly
    final = fsdp / "adapter-uninterrupted"
    shutil.copytree(fsdp / "adapter", final)
    shutil.rmtree(fsdp / "checkpoints" / "step-00000006")
    proc = _launch_fsdp(_overrides(data, evals, fsdp, cache, 1), resume=True)
    assert proc.stdout.count("resumed from") == 1 and "(step 4," in proc.stdout
    c = load_file(str(fsdp / "adapter" / "model.safetensors"))
    base = load_file(str(final / "model.safetensors"))
    assert [k for k in c if not torch.equal(c[k], base[k])] == []
    assert [s for s, _ in list_checkpoints(fsdp)] == [4, 6]


# --- the format check, without launching ---------------------------------------------------------------------
def _fake_accel(kind: str, n: int = 2):
    from accelerate.utils import DistributedType

    dt = {"plain": DistributedType.MULTI_CPU, "fsdp": DistributedType.FSDP, "deepspeed": DistributedType.DEEPSPEED}
    return SimpleNamespace(distributed_type=dt[kind], num_processes=n)


def _write_state(folder: Path, state: dict) -> Path:
    from affectllm.training.checkpointing import STATE_JSON

    folder.mkdir(parents=True)
    (folder / STATE_JSON).write_text(json.dumps(state))
    return folder


def test_resume_refuses_a_checkpoint_of_another_launch(tmp_path):
    from affectllm.training.checkpointing import PLAIN_FORMAT, SHARDED_FORMAT, check_resumable

    plain = _write_state(tmp_path / "plain" / "step-00000004", {"format": PLAIN_FORMAT, "step": 4})
    sharded = _write_state(tmp_path / "sharded" / "step-00000004",
                           {"format": SHARDED_FORMAT, "step": 4, "launch": {"kind": "fsdp", "num_processes": 2}})
    ds = _write_state(tmp_path / "ds" / "step-00000004",
                      {"format": SHARDED_FORMAT, "step": 4, "launch": {"kind": "deepspeed", "num_processes": 2}})
    assert check_resumable(plain, _fake_accel("plain"))["step"] == 4
    assert check_resumable(sharded, _fake_accel("fsdp"))["step"] == 4
    with pytest.raises(ValueError, match=r"plain/step-00000004: .*one process or DDP.*launched under FSDP"):
        check_resumable(plain, _fake_accel("fsdp"))
    with pytest.raises(ValueError, match=r"sharded/step-00000004: .*under FSDP.*fsdp2\.yaml.*one process or DDP"):
        check_resumable(sharded, _fake_accel("plain"))
    with pytest.raises(ValueError, match=r"ds/step-00000004: .*DeepSpeed.*deepspeed-zero2\.yaml"):
        check_resumable(ds, _fake_accel("fsdp"))
    with pytest.raises(ValueError, match=r"holds the state of 2 processes but this launch has 4; resume with "
                                         r"--num_processes 2"):
        check_resumable(sharded, _fake_accel("fsdp", 4))
    with pytest.raises(FileNotFoundError, match="not a training checkpoint"):
        check_resumable(tmp_path, _fake_accel("plain"))


def test_cpu_fsdp_is_only_requested_by_a_multiprocess_fsdp_launch(monkeypatch):
    import torch

    from affectllm.training.sharding import cpu_fsdp_requested

    monkeypatch.setenv("ACCELERATE_USE_FSDP", "true")
    monkeypatch.setenv("WORLD_SIZE", "2")
    assert cpu_fsdp_requested() is (not torch.cuda.is_available())
    monkeypatch.setenv("WORLD_SIZE", "1")
    assert not cpu_fsdp_requested()
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("ACCELERATE_USE_FSDP", "false")
    assert not cpu_fsdp_requested()


# --- DeepSpeed: GPU only (not installable / runnable on CPU); the same accelerate save_state path --------------
def _deepspeed_ready() -> bool:
    import importlib.util

    import torch

    return torch.cuda.is_available() and importlib.util.find_spec("deepspeed") is not None


@pytest.mark.slow
@pytest.mark.skipif(not _deepspeed_ready(), reason="DeepSpeed needs a GPU and `pip install deepspeed`")
def test_deepspeed_checkpoint_and_resume(tmp_path):
    """ZeRO-2 on one GPU: the checkpoint is accelerate's DeepSpeed state, and --resume continues from it.
    (Not run by this project's CI, which has no GPU; GPU kernels need not be bit-exact, so only the flow is
    checked.)"""
    from affectllm.training.checkpointing import ACCEL_STATE, STATE_JSON, list_checkpoints

    data = write_synthetic_set(tmp_path / "data", n=8, seed=3)
    out = tmp_path / "ds"
    args = [f"data.train={data}", f"output_dir={out}", f"cache.dir={tmp_path / 'cache'}", "train.max_steps=4",
            "train.batch_size=2", "train.save_every=2", "train.keep_last=2", "model.options.whisper=false"]
    accelerate = Path(sys.executable).with_name("accelerate")
    cmd = [str(accelerate), "launch", "--config_file", "train/accelerate/deepspeed-zero2.yaml", "--num_processes",
           "1", "--main_process_port", str(_free_port()), "-m", "affectllm", "train", "--config", RECIPE, *args]
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "OMP_NUM_THREADS": "1"}
    for extra in ([], ["--resume"]):
        proc = subprocess.run([*cmd, *extra], env=env, capture_output=True, text=True, timeout=600)
        assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-4000:]
        if extra:
            assert proc.stdout.count("resumed from") == 1 and "(step 2," in proc.stdout
        else:
            assert [s for s, _ in list_checkpoints(out)] == [2, 4]
            for _, folder in list_checkpoints(out):
                assert (folder / ACCEL_STATE).is_dir()
                assert json.loads((folder / STATE_JSON).read_text())["launch"]["kind"] == "deepspeed"
            shutil.rmtree(out / "checkpoints" / "step-00000004")
    assert (out / "adapter" / "model.safetensors").is_file()
