"""Sharded training (FSDP through accelerate, DeepSpeed ZeRO): what the trainer does differently when no process
holds the whole model or optimizer state.

- ``launch_kind`` names the launch (``fsdp`` / ``deepspeed`` when state is sharded, else ``plain``: one process
  or DDP); checkpoints record it, and ``--resume`` refuses a checkpoint written by another kind.
- ``enable_cpu_fsdp``: accelerate selects FSDP only on accelerator devices (its ``AcceleratorState`` turns
  ``ACCELERATE_USE_FSDP`` into ``DistributedType.FSDP`` only for MULTI_GPU-like launches), so
  ``accelerate launch --use_fsdp`` on a machine without a GPU silently gives plain gloo data parallel. FSDP2
  (``fully_shard``) itself runs on CPU over gloo; this switches such a launch to accelerate's FSDP path so the
  same sharded code (wrapping, ``save_state`` / ``load_state``, gathered state dicts) runs on CPU: it is how the
  tests exercise it.
- ``unsharded``: FSDP2 keeps parameters as shards between forwards; the towers are called outside the model's
  forward (feature extraction for the cache), so their weights are gathered for that call.
- ``full_state_dict``: the gathered model state (a collective: every process calls it; rank 0 gets the tensors).
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Iterator
from contextlib import contextmanager

import torch

PLAIN, FSDP, DEEPSPEED = "plain", "fsdp", "deepspeed"


def launch_kind(accel) -> str:
    """``fsdp`` / ``deepspeed`` when the model or optimizer state is sharded over processes, else ``plain``."""
    from accelerate.utils import DistributedType

    return {DistributedType.FSDP: FSDP, DistributedType.DEEPSPEED: DEEPSPEED}.get(accel.distributed_type, PLAIN)


def is_sharded(accel) -> bool:
    """Whether saving and loading need every process (accelerate's ``save_state`` / ``load_state``)."""
    return launch_kind(accel) != PLAIN


def launch_description(accel) -> dict[str, object]:
    """What a sharded checkpoint was written under: kind, process count and (FSDP) version and state-dict type."""
    desc: dict[str, object] = {"kind": launch_kind(accel), "num_processes": accel.num_processes}
    plugin = getattr(accel.state, "fsdp_plugin", None)
    if desc["kind"] == FSDP and plugin is not None:
        desc["fsdp_version"] = int(plugin.fsdp_version)
        desc["state_dict_type"] = getattr(plugin.state_dict_type, "name", str(plugin.state_dict_type))
    return desc


def cpu_fsdp_requested() -> bool:
    """A multi-process launch asked for FSDP (``accelerate launch --use_fsdp`` / an FSDP config) and there is no GPU."""
    world = int(os.environ.get("WORLD_SIZE", "1") or 1)
    fsdp = os.environ.get("ACCELERATE_USE_FSDP", "false").lower() in ("1", "true", "yes")
    return fsdp and world > 1 and not torch.cuda.is_available()


def enable_cpu_fsdp(accel) -> bool:
    """Put a CPU (gloo) multi-process accelerator on accelerate's FSDP path when the launch asked for FSDP.

    Call right after creating the ``Accelerator`` and before ``prepare``. The plugin reads the launch's
    ``FSDP_*`` settings (version, state-dict type, wrap policy) from the environment, as accelerate does on GPUs.
    Returns whether it switched.
    """
    from accelerate.state import PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    if not cpu_fsdp_requested() or accel.distributed_type != DistributedType.MULTI_CPU:
        return False
    plugin = FullyShardedDataParallelPlugin()
    if plugin.fsdp_version != 2:
        raise RuntimeError("FSDP on CPU runs with FSDP2 only (torch's fully_shard over gloo); launch with "
                           "--fsdp_version 2 or set fsdp_config.fsdp_version: 2 in the accelerate config")
    accel.state.fsdp_plugin = plugin
    accel.state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    return True


def _fsdp_units(root, parts: Iterable[torch.nn.Module]) -> list[torch.nn.Module]:
    """The FSDP2 units whose shards ``parts`` use: the root's own group plus any unit inside a part."""
    try:
        from torch.distributed.fsdp import FSDPModule
    except ImportError:  # torch without FSDP2
        return []
    if not isinstance(root, FSDPModule):
        return []
    inner = [m for part in parts for m in part.modules() if isinstance(m, FSDPModule) and m is not root]
    return [root, *inner]


@contextmanager
def unsharded(root, parts: Iterable[torch.nn.Module]) -> Iterator[None]:
    """Whole weights for ``parts`` of an FSDP2-sharded ``root`` while calling them outside ``root``'s forward.

    A no-op when ``root`` is not sharded. Every process must enter it together (it all-gathers).
    """
    units = _fsdp_units(root, parts)
    for unit in units:
        unit.unshard()
    try:
        yield
    finally:
        for unit in reversed(units):
            unit.reshard()


def sharded_parameters(model) -> tuple[int, int]:
    """(parameter tensors held as shards on this process, all parameter tensors): FSDP2 shards are DTensors."""
    try:
        from torch.distributed.tensor import DTensor, Shard
    except ImportError:
        return 0, sum(1 for _ in model.parameters())
    params = list(model.parameters())
    shards = sum(isinstance(p, DTensor) and any(isinstance(pl, Shard) for pl in p.placements) for p in params)
    return shards, len(params)


def describe(accel, model) -> str:
    """One line for the run's start: how the state is spread over the processes."""
    kind = launch_kind(accel)
    if kind == FSDP:
        shards, total = sharded_parameters(model)
        version = getattr(getattr(accel.state, "fsdp_plugin", None), "fsdp_version", "?")
        return f"FSDP{version}: {shards}/{total} parameter tensors sharded over {accel.num_processes} processes"
    if kind == DEEPSPEED:
        stage = (accel.state.deepspeed_plugin.deepspeed_config.get("zero_optimization") or {}).get("stage", "?")
        return f"DeepSpeed ZeRO-{stage} over {accel.num_processes} processes"
    return "DDP" if accel.num_processes > 1 else "one process"


def full_state_dict(accel, model) -> dict[str, torch.Tensor]:
    """The model's full (gathered) state dict on rank 0; a collective that every process must call.

    FSDP2 all-gathers the shards (offloaded to CPU on rank 0); DeepSpeed ZeRO-2 holds whole weights already
    (ZeRO-3 needs ``stage3_gather_16bit_weights_on_model_save``). Other ranks may get an empty dict.
    """
    return accel.get_state_dict(model)
