"""``--backend ray``: the same Captioner over a Ray Data dataset, for inputs that outgrow one machine.

The inputs become a dataset of ``{id, path, subtitle}`` rows; ``map_batches`` runs a pool of actors that each
load the model once and caption ``batch_size`` rows per call; the driver iterates the resulting records and
writes them, so ``--out``, ``--resume`` and the progress bar behave exactly as with the local backend. Records
travel as JSON text (one string column), so nested evidence never meets Arrow schema inference.

Ray is the optional ``cluster`` extra (``pip install 'affectllm[cluster]'``). With ``RAY_ADDRESS`` set
(``RAY_ADDRESS=auto`` for a ``ray start --head`` on this machine, ``ray://HOST:10001`` or ``HOST:6379`` for
another) the job joins that cluster, with the same command; otherwise a private local one is started for the
run and shut down after it.
Media paths must be readable at the same path on every worker (a shared filesystem).

Failures: Ray Data restarts an actor whose process dies and retries its batch (its defaults for actors:
``max_restarts=-1``, ``max_task_retries=-1``); a batch's records reach the driver only when the whole batch is
done, and the driver drops any id it has already written in this run, so a killed worker neither loses nor
duplicates records. If the job itself fails, everything received so far is already in ``--out`` and the error
says to rerun with ``--resume``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from typing import Any

from affectllm.captioning.inputs import CaptionInput


def ray_available() -> bool:
    try:
        import ray  # noqa: F401
        import ray.data  # noqa: F401
    except ImportError:
        return False
    return True


class CaptionActor:
    """A Ray actor holding one loaded model; called with a batch of rows, returns their JSON records."""

    def __init__(self, model: str | None, adapter: str | None, device: str, dtype: str, options: dict[str, Any],
                 quantization: str | None = "auto"):
        from affectllm.captioning.captioner import Captioner
        from affectllm.loading import load as load_model

        m, proc = load_model(model, adapter, device, dtype, quantization=quantization)
        self.captioner = Captioner(m, proc, **options)

    def __call__(self, batch: dict[str, Any]) -> dict[str, Any]:
        import numpy as np

        items = [CaptionInput(str(i), str(p), (str(s) or None) if s is not None else None)
                 for i, p, s in zip(batch["id"], batch["path"], batch["subtitle"], strict=True)]
        records = [json.dumps(r, ensure_ascii=False) for r in self.captioner.caption(items)]
        return {"id": np.asarray([it.id for it in items], dtype=object), "record": np.asarray(records, dtype=object)}


def caption_with_ray(todo: list[CaptionInput], opts: Any) -> Iterator[dict[str, Any]]:
    """Records for ``todo`` computed by Ray Data actors (``opts``: ``run.CaptionOptions``)."""
    if not ray_available():
        raise RuntimeError("--backend ray needs Ray Data: pip install 'affectllm[cluster]' (or 'ray[data]'), "
                           "or use --backend local")
    import ray
    from ray.data import DataContext

    started_here = False
    if not ray.is_initialized():
        address = opts.extra.get("ray_address") or os.environ.get("RAY_ADDRESS")
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": False, "configure_logging": False}
        if address:
            ray.init(address=address, **kwargs)
        else:
            ray.init(address="local", num_cpus=opts.extra.get("ray_num_cpus") or os.cpu_count(),
                     object_store_memory=opts.extra.get("ray_object_store_bytes", 256 * 1024 * 1024), **kwargs)
        started_here = True
    try:
        ctx = DataContext.get_current()
        ctx.enable_progress_bars = False
        rows = [{"id": x.id, "path": x.path, "subtitle": x.subtitle or ""} for x in todo]
        ds = ray.data.from_items(rows)
        options = {"segment_seconds": opts.segment_seconds, "prompt": opts.prompt,
                   "max_new_tokens": opts.max_new_tokens, "batch_size": opts.batch_size,
                   "explanation": opts.explanation}
        ds = ds.map_batches(
            CaptionActor,
            fn_constructor_kwargs={"model": opts.model, "adapter": opts.adapter, "device": opts.device,
                                   "dtype": opts.dtype, "options": options, "quantization": opts.quantization},
            batch_size=max(1, opts.batch_size),
            compute=ray.data.ActorPoolStrategy(size=max(1, int(opts.ray_workers))),
            num_cpus=opts.ray_cpus_per_worker,
            num_gpus=opts.ray_gpus_per_worker,  # Ray sets CUDA_VISIBLE_DEVICES: the actor's device "auto" is its GPU
        )  # Ray Data's actor defaults (max_restarts=-1, max_task_retries=-1): a dead worker is replaced and its
        # batch redone
        seen: set[str] = set()
        try:
            for row in ds.iter_rows():
                rid = str(row["id"])
                if rid in seen:  # a retried batch whose first attempt was delivered: never write an id twice
                    continue
                seen.add(rid)
                yield json.loads(row["record"])
        except Exception as e:  # noqa: BLE001 - Ray wraps worker failures in many types
            raise RuntimeError(f"the Ray job stopped after {len(seen)} of {len(todo)} records "
                               f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}); the records "
                               "received are in the output: rerun the same command with --resume") from e
    finally:
        if started_here:
            ray.shutdown()
