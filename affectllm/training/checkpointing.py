"""Training checkpoints: atomic folders that resume a run exactly, written with safetensors + JSON only.

``OUTDIR/checkpoints/step-00000040/`` is a normal AffectLLM checkpoint (``save_checkpoint``: config, processor,
tokenizer, ``model.safetensors`` with the projector + LoRA) plus the training state:

- ``training_state.safetensors``: optimizer tensors (``opt.<param index>.<name>``), numpy / torch / CUDA RNG states;
- ``training_state.json``: step, epoch, the next batch of the epoch's seeded order, optimizer hyper-parameters
  and scalar state, scheduler state, python RNG state, running counters.

A folder is written under a temporary name, every file fsync'd, then renamed into place (and the parent
fsync'd), so a crash at any moment leaves either the complete previous checkpoints or the new one; stale
temporary folders are removed. Nothing is ever unpickled.

Under FSDP / DeepSpeed (sharded weights or optimizer state, ``affectllm.training.sharding``) no process holds
the whole state, so every process takes part: the same ``step-<step>`` folder holds

- ``accelerate_state/``: ``Accelerator.save_state`` (FSDP: ``torch.distributed.checkpoint`` shards of the model
  and optimizer from every rank, or rank 0's gathered files under FULL_STATE_DICT; DeepSpeed: its ZeRO
  checkpoint), and each rank's RNG states;
- ``training_state.json`` (rank 0): format ``affectllm-train-sharded/1``, step, progress, scheduler state and
  the launch it was written under (kind, process count, FSDP version): ``--resume`` reads it to pick the
  loader and refuses a checkpoint of another launch kind with the command that resumes it.

The temporary-name-then-rename protocol is the same (rank 0 renames after a barrier). ``accelerate_state/``
is accelerate's format: it loads RNG and optimizer files with ``torch.load(weights_only=True)``.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_TENSORS = "training_state.safetensors"
STATE_JSON = "training_state.json"
ACCEL_STATE = "accelerate_state"
PLAIN_FORMAT = "affectllm-train/1"
SHARDED_FORMAT = "affectllm-train-sharded/1"
_STEP_RE = re.compile(r"^step-(\d{8})$")


def checkpoints_dir(out_dir: str | os.PathLike[str]) -> Path:
    return Path(out_dir) / "checkpoints"


def list_checkpoints(out_dir: str | os.PathLike[str]) -> list[tuple[int, Path]]:
    """Complete checkpoints of a run, oldest first (temporary folders are not listed)."""
    root = checkpoints_dir(out_dir)
    if not root.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in root.iterdir() if p.is_dir() and (m := _STEP_RE.match(p.name))]
    return sorted(found)


def latest_checkpoint(out_dir: str | os.PathLike[str]) -> Path | None:
    found = [p for _, p in list_checkpoints(out_dir) if (p / STATE_JSON).is_file()]
    return found[-1] if found else None


def _fsync_tree(folder: Path) -> None:
    for p in folder.rglob("*"):
        if p.is_file():
            with open(p, "rb") as f:
                os.fsync(f.fileno())
    _fsync_dir(folder)


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


# --- state <-> (tensors, json) ---------------------------------------------------------------------------
def _rng_state() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    tensors: dict[str, torch.Tensor] = {"rng.torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = s
    name, keys, pos, has_gauss, cached = np.random.get_state()
    tensors["rng.numpy"] = torch.from_numpy(np.asarray(keys, dtype=np.int64))
    py = random.getstate()
    info = {"numpy": [name, int(pos), int(has_gauss), float(cached)], "python": [py[0], list(py[1]), py[2]]}
    return tensors, info


def _set_rng_state(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["rng.torch"])
    cuda = sorted(k for k in tensors if k.startswith("rng.cuda."))
    if cuda and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([tensors[k] for k in cuda])
    name, pos, has_gauss, cached = info["numpy"]
    np.random.set_state((name, tensors["rng.numpy"].numpy().astype(np.uint32), pos, has_gauss, cached))
    v, state, gauss = info["python"]
    random.setstate((v, tuple(state), gauss))


def _optimizer_state(optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    scalars: dict[str, dict[str, Any]] = {}
    for idx, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"opt.{idx}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(idx), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _load_optimizer(optimizer, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    state: dict[int, dict[str, Any]] = {}
    for name, t in tensors.items():
        if name.startswith("opt."):
            _, idx, k = name.split(".", 2)
            state.setdefault(int(idx), {})[k] = t
    for idx, vals in info["scalars"].items():
        state.setdefault(int(idx), {}).update(vals)
    optimizer.load_state_dict({"state": state, "param_groups": info["param_groups"]})


# --- save / load -------------------------------------------------------------------------------------------
def _temporary_folder(out_dir: str | os.PathLike[str], step: int, tag: str, clean: bool = True) -> tuple[Path, Path]:
    """(temporary, final) folder of checkpoint ``step``; with ``clean``, stale temporary folders are removed and
    the parent created (one process does this)."""
    root = checkpoints_dir(out_dir)
    tmp = root / f".tmp-step-{step:08d}-{tag}"
    if clean:
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".tmp-*"):
            shutil.rmtree(stale, ignore_errors=True)
    return tmp, root / f"step-{step:08d}"


def _commit(out_dir: str | os.PathLike[str], tmp: Path, final: Path, keep_last: int) -> Path:
    """fsync ``tmp``, rename it to ``final`` (fsync'd parent), keep only the newest ``keep_last`` checkpoints."""
    _fsync_tree(tmp)
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    _fsync_dir(final.parent)
    for _, old in list_checkpoints(out_dir)[:-max(1, keep_last)]:
        shutil.rmtree(old, ignore_errors=True)
    return final


def save_training_checkpoint(out_dir: str | os.PathLike[str], step: int, model, processor, optimizer, scheduler,
                             progress: dict[str, Any], keep_last: int = 2) -> Path:
    """Write ``checkpoints/step-<step>`` atomically and keep only the newest ``keep_last`` checkpoints."""
    from safetensors.torch import save_file

    from affectllm.model.checkpoint import save_checkpoint

    tmp, final = _temporary_folder(out_dir, step, str(os.getpid()))
    save_checkpoint(model, processor, tmp, include_tokenizer=True, trained=True)
    opt_t, opt_info = _optimizer_state(optimizer)
    rng_t, rng_info = _rng_state()
    save_file({**opt_t, **rng_t}, str(tmp / STATE_TENSORS), metadata={"format": PLAIN_FORMAT})
    state = {"format": PLAIN_FORMAT, "step": step, "progress": progress, "optimizer": opt_info,
             "scheduler": scheduler.state_dict() if scheduler is not None else None, "rng": rng_info}
    (tmp / STATE_JSON).write_text(json.dumps(state, indent=1, default=_jsonable))
    return _commit(out_dir, tmp, final, keep_last)


def save_sharded_checkpoint(accel, out_dir: str | os.PathLike[str], step: int, scheduler,
                            progress: dict[str, Any], keep_last: int = 2) -> Path:
    """Every process: accelerate's sharded state into ``step-<step>/accelerate_state``; rank 0: progress JSON,
    the atomic rename and the rotation. Collective: all processes call it at the same step."""
    from affectllm.training.sharding import launch_description

    main = accel.is_main_process
    tmp, final = _temporary_folder(out_dir, step, "sharded", clean=main)
    accel.wait_for_everyone()  # the empty temporary folder exists before anyone writes into it
    accel.save_state(str(tmp / ACCEL_STATE))
    accel.wait_for_everyone()  # every rank's shards and RNG file are written
    if main:
        state = {"format": SHARDED_FORMAT, "step": step, "progress": progress, "launch": launch_description(accel),
                 "scheduler": scheduler.state_dict() if scheduler is not None else None}
        (tmp / STATE_JSON).write_text(json.dumps(state, indent=1, default=_jsonable))
        _commit(out_dir, tmp, final, keep_last)
    accel.wait_for_everyone()  # nobody goes on (or reads checkpoints) before the rename and rotation
    return final


def _jsonable(x: Any) -> Any:
    if torch.is_tensor(x):
        return x.item() if x.numel() == 1 else x.tolist()
    if isinstance(x, (np.generic,)):
        return x.item()
    raise TypeError(f"not JSON-serialisable in training state: {type(x).__name__}")


def load_trainable_weights(model, folder: str | os.PathLike[str]) -> int:
    """Copy a checkpoint's saved weights (projector, LoRA, unsourced parts) into ``model``; returns the count."""
    from safetensors.torch import load_file

    from affectllm.model.modeling_affectllm import WEIGHTS_NAME

    path = Path(folder) / WEIGHTS_NAME
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no weights; pass a folder written by affectllm train / save_checkpoint")
    state = load_file(str(path))
    result = model.load_state_dict(state, strict=False)
    if result.unexpected_keys:
        raise ValueError(f"{path}: {len(result.unexpected_keys)} weights do not fit this model (e.g. "
                         f"{result.unexpected_keys[:3]}); was it trained with another model config?")
    return len(state)


def read_training_state(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """The checkpoint's ``training_state.json``, with a clear error when ``folder`` is not a training checkpoint."""
    folder = Path(folder)
    if not (folder / STATE_JSON).is_file():
        raise FileNotFoundError(f"{folder}: no {STATE_JSON}; it is not a training checkpoint (pass the run's "
                                "output folder to resume, or start without --resume)")
    return json.loads((folder / STATE_JSON).read_text())


def check_resumable(folder: str | os.PathLike[str], accel) -> dict[str, Any]:
    """The checkpoint's state, after checking that this launch can resume it (same kind: plain / FSDP /
    DeepSpeed; and for a sharded one the same process count); the error names the folder and the launch to use."""
    from affectllm.training.sharding import PLAIN, launch_kind

    state = read_training_state(folder)
    written = state.get("launch", {}).get("kind", PLAIN) if state.get("format") == SHARDED_FORMAT else PLAIN
    now = launch_kind(accel)
    if state.get("format") not in (PLAIN_FORMAT, SHARDED_FORMAT):
        raise ValueError(f"{folder}/{STATE_JSON}: unknown checkpoint format {state.get('format')!r}; it was "
                         "written by another version of affectllm")
    how = {PLAIN: "one process or DDP (accelerate launch --multi_gpu / train/accelerate/ddp.yaml)",
           "fsdp": "FSDP (accelerate launch --config_file train/accelerate/fsdp2.yaml)",
           "deepspeed": "DeepSpeed (accelerate launch --config_file train/accelerate/deepspeed-zero2.yaml)"}
    if written != now:
        raise ValueError(f"{folder}: this checkpoint was written under {how[written]} but this run is launched "
                         f"under {how[now]}; resume it with the launch that wrote it, or start a new output_dir "
                         "without --resume")
    n = state.get("launch", {}).get("num_processes")
    if written != PLAIN and n is not None and int(n) != accel.num_processes:
        raise ValueError(f"{folder}: this {written} checkpoint holds the state of {n} processes but this launch "
                         f"has {accel.num_processes}; resume with --num_processes {n}")
    return state


def load_training_checkpoint(folder: str | os.PathLike[str], model, optimizer, scheduler) -> dict[str, Any]:
    """Restore weights, optimizer, scheduler and every RNG from ``folder``; returns its progress dict + step."""
    from safetensors.torch import load_file

    folder = Path(folder)
    state = read_training_state(folder)
    tensors = load_file(str(folder / STATE_TENSORS))
    load_trainable_weights(model, folder)
    _load_optimizer(optimizer, tensors, state["optimizer"])
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])
    _set_rng_state(tensors, state["rng"])
    return {"step": int(state["step"]), **state["progress"]}


def load_sharded_checkpoint(accel, folder: str | os.PathLike[str], scheduler) -> None:
    """Every process, after ``accelerator.prepare``: the sharded model, optimizer and this rank's RNG states from
    ``folder/accelerate_state``, and the scheduler from the JSON. Collective."""
    folder = Path(folder)
    state = read_training_state(folder)
    if not (folder / ACCEL_STATE).is_dir():
        raise FileNotFoundError(f"{folder}: no {ACCEL_STATE}/ beside {STATE_JSON}; the checkpoint is incomplete "
                                "(delete this folder to resume from the one before)")
    accel.load_state(str(folder / ACCEL_STATE))
    if scheduler is not None and state.get("scheduler") is not None:
        scheduler.load_state_dict(state["scheduler"])


def sharded_progress(folder: str | os.PathLike[str]) -> dict[str, Any]:
    """A sharded checkpoint's progress dict + step (its tensors load later, in ``load_sharded_checkpoint``)."""
    state = read_training_state(folder)
    return {"step": int(state["step"]), **state["progress"]}


def is_sharded_checkpoint(folder: str | os.PathLike[str]) -> bool:
    """Whether ``folder`` was written by ``save_sharded_checkpoint``."""
    return read_training_state(folder).get("format") == SHARDED_FORMAT
