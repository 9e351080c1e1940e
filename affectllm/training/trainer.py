"""The training loop: one recipe -> a trained adapter, on CPU, one GPU or many (accelerate).

Flow: validate the recipe -> load the data (bad rows reported and skipped) -> build the model, freeze what the
stage does not train -> optimizer (param groups) + warm-up/decay schedule -> [resume exactly from the newest
checkpoint] -> loop over seeded epoch orders with gradient accumulation; every step appends a line to
``OUTDIR/metrics.jsonl``; evaluation and atomic checkpoints at their cadence -> ``OUTDIR/adapter`` (the trained
projector + LoRA as an AffectLLM checkpoint), ``OUTDIR/loss.png`` and ``OUTDIR/summary.json``.
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from affectllm.training.config import ConfigError, TrainConfig

log = logging.getLogger("affectllm.training")


def _mixed_precision(cfg: TrainConfig) -> str:
    mp = cfg.train.mixed_precision
    if mp != "auto":
        return mp
    if torch.cuda.is_available():
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return "no"


def _data_paths(cfg: TrainConfig) -> tuple[Path, Path | None]:
    if not cfg.data.train:
        raise ConfigError(f"{cfg.source_file or 'recipe'}: data.train is not set; give an instruction JSONL "
                          "(affectllm data build / validate)")
    train = cfg.resolve(cfg.data.train)
    if not train.is_file():
        raise ConfigError(f"{cfg.source_file or 'recipe'}: data.train {train} does not exist; build it with "
                          "`affectllm data build` or fix the path (relative paths resolve against the repo root)")
    ev = cfg.resolve(cfg.data.eval) if cfg.data.eval else None
    if ev is not None and not ev.is_file():
        raise ConfigError(f"{cfg.source_file or 'recipe'}: data.eval {ev} does not exist")
    return train, ev


class MetricsLog:
    """``metrics.jsonl``: one JSON object per line, flushed at once (other processes watch it)."""

    def __init__(self, path: Path, resume_step: int | None) -> None:
        self.path = path
        if resume_step is None:
            path.write_text("")
        elif path.exists():  # drop what the interrupted run logged after its last checkpoint
            keep = [ln for ln in path.read_text().splitlines() if ln.strip() and json.loads(ln).get("step", 0)
                    <= resume_step]
            path.write_text("".join(k + "\n" for k in keep))
        self.f = path.open("a", encoding="utf-8")

    def write(self, record: dict[str, Any]) -> None:
        self.f.write(json.dumps(record) + "\n")
        self.f.flush()

    def close(self) -> None:
        self.f.close()


def train(cfg: TrainConfig, resume: bool = False, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the recipe; returns the summary dict (also written to OUTDIR/summary.json)."""
    from accelerate import Accelerator
    from accelerate.utils import DistributedDataParallelKwargs

    from affectllm.training import build as B
    from affectllm.training.checkpointing import (
        latest_checkpoint,
        load_training_checkpoint,
        save_training_checkpoint,
    )
    from affectllm.training.data import (
        Collator,
        EpochBatches,
        batches_per_epoch,
        epoch_order,
        holdout_split,
        load_split,
        make_loader,
    )
    from affectllm.training.evaluate import eval_loss, generate_rows, label_scores
    from affectllm.training.feature_cache import CacheStats, open_cache
    from affectllm.training.features import batch_tower_outputs

    t_start = time.time()
    out = cfg.out_dir
    train_path, eval_path = _data_paths(cfg)
    ckpt = latest_checkpoint(out) if resume else None
    if resume and ckpt is None:
        echo(f"--resume: no checkpoint under {out}/checkpoints; starting from step 0")
    if not resume and latest_checkpoint(out) is not None:
        raise ConfigError(f"{out} already holds checkpoints of a run; pass --resume to continue it, or set "
                          "output_dir (or delete the folder) to start over")
    writer = None
    if cfg.train.tensorboard:
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:
            raise ConfigError("train.tensorboard is on but tensorboard is not installed; pip install tensorboard "
                              "or set train.tensorboard=false") from e

    # several processes and no GPU (`accelerate launch --multi_gpu --num_processes N` or `torchrun` on a CPU
    # machine): gloo data parallel on CPU; accelerate's own `--cpu` flag starts a single process without mpirun
    multi_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
    accel = Accelerator(mixed_precision=_mixed_precision(cfg), gradient_accumulation_steps=1, cpu=multi_cpu,
                        kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
    device = accel.device
    if not accel.is_main_process:  # one process speaks (and logs, and saves): rank 0
        echo = _silent
    if device.type == "cpu" and cfg.train.cpu_threads:
        torch.set_num_threads(int(cfg.train.cpu_threads))
    if cfg.train.deterministic and device.type == "cuda":
        torch.use_deterministic_algorithms(True, warn_only=True)
    out.mkdir(parents=True, exist_ok=True)
    if accel.is_main_process:
        (out / "recipe.json").write_text(json.dumps(cfg.to_dict(), indent=1))
    if cfg.train.tensorboard and accel.is_main_process:
        writer = SummaryWriter(str(out / "tensorboard"))

    # --- data ---------------------------------------------------------------------------------------------
    tasks = cfg.data.tasks or (["alignment"] if cfg.stage == "alignment" else None)
    train_ds, report = load_split(train_path, tasks, cfg.data.limit, cfg.data.check_media)
    eval_ds = None
    load_skipped = report.invalid_rows
    if eval_path is not None:
        eval_ds, ev_report = load_split(eval_path, tasks, None, cfg.data.check_media)
        load_skipped += ev_report.invalid_rows
    else:
        train_ds, eval_ds = holdout_split(train_ds, cfg.data.eval_fraction, cfg.seed)
    bs, world = cfg.train.batch_size, accel.num_processes
    n_batches = batches_per_epoch(len(train_ds), bs, world)
    if n_batches < world:
        raise ConfigError(f"{train_path}: {len(train_ds)} usable rows make {n_batches} batch(es) of "
                          f"train.batch_size={bs}, fewer than the {world} process(es); lower train.batch_size")

    # --- model, optimizer, schedule -------------------------------------------------------------------------
    model, processor = B.build_model(cfg, device)
    groups = B.set_trainable(model, cfg.stage)
    if cfg.model.gradient_checkpointing:
        model.gradient_checkpointing_enable()
    trainable, frozen = B.count_parameters(model)
    optimizer = torch.optim.AdamW(B.param_groups(groups, cfg), lr=cfg.optim.lr, betas=tuple(cfg.optim.betas),
                                  eps=cfg.optim.eps, weight_decay=cfg.optim.weight_decay)
    scheduler = B.make_scheduler(optimizer, cfg, cfg.train.max_steps)
    cues = {"auto": bool(model.config.use_cues), "on": True, "off": False}[cfg.data.cues]
    experts, cue_desc = None, None
    if cues:
        from affectllm.engine import experts_for

        experts = experts_for(model)
        cue_desc = {"whisper": experts.whisper_name, "faces": experts.faces}
        if cfg.data.voice_head:  # e.g. a fold head that never heard the held-out speakers (train/make_starter.sh)
            from affectllm.perception.voice import VoiceExpert
            from affectllm.utils.fingerprint import sha256_file

            head = cfg.resolve(cfg.data.voice_head)
            experts._voice = VoiceExpert.load(head)
            cue_desc["voice_head"] = sha256_file(head)[:16]  # new head, new cache
    cache = None
    if cfg.cache.enabled:
        from affectllm.utils.paths import cache_dir

        root = Path(cfg.cache.dir) if cfg.cache.dir else cache_dir("features")
        cache = open_cache(model, processor, root, cue_desc)
    collator = Collator(processor, cache, experts, alignment=cfg.stage == "alignment", max_length=cfg.data.max_length)

    progress: dict[str, Any] = {"epoch": 0, "batch": 0, "skipped": 0, "skipped_ids": [], "samples": 0,
                                "cache": CacheStats().__dict__}
    step = 0
    if ckpt is not None:
        progress = load_training_checkpoint(ckpt, model, optimizer, scheduler)
        step = progress.pop("step")
        echo(f"resumed from {ckpt} (step {step}, epoch {progress['epoch']}, batch {progress['batch']})")
    model.train()
    ds_plugin = getattr(accel.state, "deepspeed_plugin", None)
    if ds_plugin is not None:  # our loop accumulates itself; DeepSpeed needs the micro-batch size spelled out
        ds_plugin.deepspeed_config.update({"train_micro_batch_size_per_gpu": bs, "gradient_accumulation_steps": 1,
                                           "train_batch_size": bs * world})
    model, optimizer = accel.prepare(model, optimizer)
    inner = accel.unwrap_model(model)
    trainables = [p for ps in groups.values() for p in ps]
    metrics = MetricsLog(out / "metrics.jsonl", step if ckpt is not None else None) if accel.is_main_process else None
    totals = CacheStats(**progress["cache"])
    writes_base = totals.writes
    echo(f"{cfg.name}: stage {cfg.stage}, {len(train_ds)} train rows ({load_skipped} skipped at load), "
         f"{len(eval_ds) if eval_ds is not None else 0} eval rows; trainable {trainable:,} / frozen {frozen:,} "
         f"parameters; {world} process(es) on {device}, mixed precision {accel.mixed_precision}")

    def run_eval() -> dict[str, Any]:
        if eval_ds is None or len(eval_ds) == 0:
            return {}
        res = eval_loss(inner, eval_ds, collator, cache, device, bs, cfg.train.eval_max_samples, accel.autocast)
        if cfg.train.eval_generate:
            gen_collator = Collator(processor, cache, experts, alignment=cfg.stage == "alignment",
                                    max_length=cfg.data.max_length, prompt_only=True)
            sub = eval_ds.select(range(min(len(eval_ds), cfg.train.eval_max_samples)))
            res.update(label_scores(generate_rows(inner, sub, gen_collator, cache, device, bs)))
        return res

    # --- loop ---------------------------------------------------------------------------------------------
    ga, max_steps, last_eval, last_saved = cfg.train.grad_accum, cfg.train.max_steps, {}, step
    micro, step_loss, step_samples, t_step = 0, 0.0, 0, time.time()
    t_loop = t_step
    done = step >= max_steps
    while not done and (cfg.train.epochs is None or progress["epoch"] < cfg.train.epochs):
        order = epoch_order(len(train_ds), cfg.seed, progress["epoch"])
        loader = make_loader(EpochBatches(train_ds, order, bs, collator, progress["batch"], accel.process_index,
                                          world), cfg.data.num_workers)
        for batch in loader:
            progress["batch"] += world
            progress["skipped"] += len(batch.skipped)
            progress["skipped_ids"] = (progress["skipped_ids"] + [rid for rid, _ in batch.skipped])[:200]
            totals.add(batch.cache)
            if len(batch):
                towers = batch_tower_outputs(inner, batch, cache, device)
                totals.writes = writes_base + (cache.stats.writes if cache is not None else 0)
                text = {k: v.to(device) for k, v in batch.text.items()}
                with accel.autocast():
                    loss = answer_loss(model, text, towers) / ga
            else:  # every row of the batch was unusable: a zero step keeps processes in lock-step
                loss = sum(p.sum() for p in trainables) * 0.0
            micro += 1
            if micro % ga and len(batch):
                with accel.no_sync(model):
                    accel.backward(loss)
            else:
                accel.backward(loss)
            step_loss += float(loss.detach()) * ga
            step_samples += len(batch) * world
            if micro % ga:
                continue
            if cfg.optim.max_grad_norm:
                accel.clip_grad_norm_(trainables, cfg.optim.max_grad_norm)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad(set_to_none=True)
            step += 1
            progress["samples"] += step_samples
            if world > 1:  # the logged loss is the global batch's, as one process with grad_accum x world logs
                step_loss = float(accel.reduce(torch.tensor(step_loss, device=device), reduction="mean"))
            now = time.time()
            rec = {"step": step, "epoch": progress["epoch"], "loss": round(step_loss / ga, 6),
                   "lr": scheduler.get_last_lr()[-1], "lr_projector": scheduler.get_last_lr()[0],
                   "samples_per_s": round(step_samples / max(now - t_step, 1e-9), 3),
                   "cache_hit_rate": round(batch.cache.hit_rate, 4), "skipped": progress["skipped"],
                   "elapsed_s": round(now - t_loop, 3)}
            micro, step_loss, step_samples, t_step = 0, 0.0, 0, now
            if cfg.train.eval_every and step % cfg.train.eval_every == 0:
                last_eval = run_eval()
                rec.update(last_eval)
            if cfg.train.save_every and step % cfg.train.save_every == 0 and step < max_steps:
                progress["cache"] = totals.__dict__
                if accel.is_main_process:
                    save_training_checkpoint(out, step, inner, processor, optimizer, scheduler, progress,
                                             cfg.train.keep_last)
                last_saved = step
                accel.wait_for_everyone()
            if metrics is not None and (step % cfg.train.log_every == 0 or step == max_steps or "eval_loss" in rec):
                metrics.write(rec)
                if writer is not None:
                    for k, v in rec.items():
                        if isinstance(v, (int, float)) and k != "step":
                            writer.add_scalar(k, v, step)
            if step >= max_steps:
                done = True
                break
        else:
            progress["epoch"] += 1
            progress["batch"] = 0
            continue
        if progress["batch"] >= n_batches:  # the step that ended the run also ended the epoch
            progress["epoch"] += 1
            progress["batch"] = 0

    # --- end ----------------------------------------------------------------------------------------------
    if not cfg.train.eval_every or not last_eval:
        last_eval = run_eval()
        if metrics is not None and last_eval:
            metrics.write({"step": step, **last_eval})
    progress["cache"] = totals.__dict__
    summary: dict[str, Any] = {}
    if accel.is_main_process:
        from affectllm.model.checkpoint import save_checkpoint
        from affectllm.training.plots import plot_loss

        if step != last_saved:
            save_training_checkpoint(out, step, inner, processor, optimizer, scheduler, progress, cfg.train.keep_last)
        save_checkpoint(inner, processor, out / "adapter", include_tokenizer=inner.config.text_model is None,
                        trained=True)
        metrics.close()
        plot_loss(out / "metrics.jsonl", out / "loss.png", title=cfg.name)
        wall = time.time() - t_start
        summary = {"name": cfg.name, "stage": cfg.stage, "steps": step, "epochs_completed": progress["epoch"],
                   "train_rows": len(train_ds), "eval_rows": len(eval_ds) if eval_ds is not None else 0,
                   "skipped_at_load": load_skipped, "skipped_in_epochs": progress["skipped"],
                   "skipped_ids": sorted(set(progress["skipped_ids"]))[:50], "cache": {**totals.__dict__,
                   "hit_rate": round(totals.hit_rate, 4)}, "trainable_params": trainable, "frozen_params": frozen,
                   "eval": last_eval, "wall_s": round(wall, 2), "adapter": str(out / "adapter")}
        (out / "summary.json").write_text(json.dumps(summary, indent=1))
        echo(_summary_text(summary))
    if writer is not None:
        writer.close()
    accel.wait_for_everyone()
    accel.end_training()
    return summary


def _silent(_: str) -> None:
    pass


def answer_loss(model, text: dict[str, torch.Tensor], towers) -> torch.Tensor:
    """Mean cross-entropy over assistant tokens, with the LM head applied only where a target follows.

    Same value as the causal-LM loss with ``labels`` (mean over non-ignored next-token targets), but the head
    (262k x 640 for Gemma-3) runs on K answer positions instead of all L: [B, K, V] logits, not [B, L, V].
    """
    labels = text["labels"]
    targets = labels[:, 1:]  # [B, L-1]: the token each position must predict
    keep = (targets != -100).any(0).nonzero().flatten()  # [K] positions followed by a target in some row
    out = model(input_ids=text["input_ids"], attention_mask=text["attention_mask"], tower_outputs=towers,
                logits_to_keep=keep)
    logits = out.logits.float()  # [B, K, V]
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), targets[:, keep].reshape(-1),
                                             ignore_index=-100)


def _summary_text(s: dict[str, Any]) -> str:
    lines = [f"done: {s['steps']} steps, {s['epochs_completed']} epoch(s) completed in {s['wall_s']} s",
             f"rows skipped: {s['skipped_at_load']} at load, {s['skipped_in_epochs']} during epochs"
             + (f" (e.g. {', '.join(s['skipped_ids'][:5])})" if s["skipped_ids"] else ""),
             f"feature cache: {s['cache']['hits']} hits, {s['cache']['misses']} misses, "
             f"{s['cache']['invalid']} invalid entries recomputed (hit rate {s['cache']['hit_rate']:.0%})"]
    if s["eval"]:
        lines.append("eval: " + ", ".join(f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}"
                                          for k, v in s["eval"].items()))
    lines.append(f"adapter: {s['adapter']}")
    return "\n".join(lines)
