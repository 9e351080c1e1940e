"""One caption run, as the CLI, the shards and the benchmarks use it: inputs -> shard -> resume -> records.

``run_caption(CaptionOptions(...))`` collects the inputs, keeps this process's shard, skips ids already in the
output (``resume``), loads the model only when something is left to do, captions with the local captioner or
Ray Data, writes each record as it arrives, and returns the ``Summary`` (the CLI's exit code comes from it).
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from typing import Any

from affectllm.captioning.captioner import DEFAULT_SEGMENT_SECONDS, Captioner
from affectllm.captioning.inputs import collect_inputs
from affectllm.captioning.progress import CaptionProgress, Summary
from affectllm.captioning.sharding import resolve_shard, select_shard, shard_device, shard_path
from affectllm.captioning.writer import open_writer
from affectllm.loading import load as load_model
from affectllm.model.limits import MAX_NEW_TOKENS


@dataclass
class CaptionOptions:
    paths: list[str]
    out: str | None = None
    model: str | None = None
    adapter: str | None = None
    segment_seconds: float = DEFAULT_SEGMENT_SECONDS
    batch_size: int = 1
    resume: bool = False
    num_shards: int | None = None
    shard_index: int | None = None
    backend: str = "local"
    prompt: str | None = None
    max_new_tokens: int = MAX_NEW_TOKENS
    explanation: str = "model"  # ``Engine.report``'s: the model writes it, or "evidence" composes it (faster)
    device: str = "auto"
    dtype: str = "auto"
    progress: bool = True
    ray_workers: int = 1
    ray_gpus_per_worker: float = 0.0  # Ray's num_gpus per actor (0: CPU actors)
    ray_cpus_per_worker: float = 1.0
    quantization: str | None = "auto"  # ``affectllm.load``'s: auto, None, 8bit, 4bit, dynamic-int8
    extra: dict[str, Any] = field(default_factory=dict)


def run_caption(opts: CaptionOptions, model_and_processor: tuple[Any, Any] | None = None,
                experts: Any = None) -> Summary:
    """Caption ``opts.paths`` into ``opts.out`` (stdout when None); returns the run's counts."""
    if opts.backend not in ("local", "ray"):
        raise ValueError(f"--backend {opts.backend!r}: choose local or ray")
    from affectllm.engine.core import EXPLANATIONS

    if opts.explanation not in EXPLANATIONS:  # before any model is loaded
        raise ValueError(f"--explanation {opts.explanation!r}: choose one of {', '.join(EXPLANATIONS)}")
    collected = collect_inputs(opts.paths)
    if collected.ignored:
        shown = ", ".join(collected.ignored[:3]) + (" ..." if len(collected.ignored) > 3 else "")
        print(f"note: {len(collected.ignored)} file(s) without a media extension were not captioned ({shown}); "
              "pass them by name to caption them anyway", file=sys.stderr)
    shard = resolve_shard(opts.num_shards, opts.shard_index)
    inputs = select_shard(collected.inputs, shard)
    out = shard_path(opts.out, shard)
    if shard.active:
        print(f"shard {shard.index + 1}/{shard.count}: {len(inputs)} of {len(collected.inputs)} inputs -> "
              f"{out or 'stdout'}", file=sys.stderr)
    with open_writer(out, resume=opts.resume) as writer:
        todo = [x for x in inputs if x.id not in writer.existing]
        skipped = len(inputs) - len(todo)
        skipped_failed = sum(1 for x in inputs if writer.existing.get(x.id, "ok") != "ok")
        with CaptionProgress(len(todo), skipped, skipped_failed, enabled=opts.progress) as progress:
            for rec in _records(opts, todo, shard, model_and_processor, experts):
                writer.write(rec)
                progress.advance(rec)
    return progress.summary


def _records(opts: CaptionOptions, todo: list, shard, model_and_processor, experts):
    if not todo:
        return
    if opts.backend == "ray":
        from affectllm.captioning.ray_backend import caption_with_ray

        yield from caption_with_ray(todo, opts)
        return
    device = opts.device if opts.device != "auto" else shard_device(shard)
    model, processor = model_and_processor or load_model(opts.model, opts.adapter, device, opts.dtype,
                                                              quantization=opts.quantization)
    captioner = Captioner(model, processor, experts=experts, segment_seconds=opts.segment_seconds,
                          prompt=opts.prompt, max_new_tokens=opts.max_new_tokens, batch_size=opts.batch_size,
                          explanation=opts.explanation)
    yield from captioner.caption(todo)
