"""The training loop: one recipe -> a trained adapter, on CPU, one GPU or many (accelerate).

Flow: validate the recipe -> load the data (bad rows reported and skipped) -> build the model, freeze what the
stage does not train -> optimizer (param groups) + warm-up/decay schedule -> [resume exactly from the newest
checkpoint] -> loop over seeded epoch orders with gradient accumulation; every step appends a line to
``OUTDIR/metrics.jsonl``; evaluation and atomic checkpoints at their cadence -> ``OUTDIR/adapter`` (the trained
projector + LoRA as an AffectLLM checkpoint), ``OUTDIR/loss.png`` and ``OUTDIR/summary.json``.
``train`` runs these as the named steps of a ``TrainingRun`` (one method each; the loop is ``run_epoch`` ->
``micro_step`` / ``optimizer_step`` / ``after_step``).
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
from affectllm.training.run_log import MetricsLog, summary_text

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


def train(cfg: TrainConfig, resume: bool = False, echo: Callable[[str], None] = print) -> dict[str, Any]:
    """Run the recipe; returns the summary dict (also written to OUTDIR/summary.json)."""
    run = TrainingRun(cfg, resume, echo)  # step 1: recipe paths, run folder, accelerator
    run.load_data()  # step 2: train / eval rows
    run.build_model()  # step 3: model (stage's parts trainable), optimizer, schedule
    run.build_collator()  # step 4: cue experts, feature cache, collator
    run.restore()  # step 5: progress, exactly from the newest checkpoint when resuming
    run.prepare()  # step 6: accelerate's wrapping, the metrics log
    run.loop()  # step 7: epochs of accumulated optimizer steps, with eval and checkpoints at their cadence
    return run.finish()  # step 8: last eval, adapter, loss.png, summary.json


class TrainingRun:
    """One run of a recipe as named steps, called in order by ``train``; the loop's state lives on the instance.

    The order of the steps is the order of every seeded draw (model init, holdout split, epoch orders), so it is
    what makes a resumed run bit-identical to an uninterrupted one: keep it.
    """

    def __init__(self, cfg: TrainConfig, resume: bool, echo: Callable[[str], None]) -> None:
        from accelerate import Accelerator
        from accelerate.utils import DistributedDataParallelKwargs

        from affectllm.training.checkpointing import latest_checkpoint
        from affectllm.training.sharding import enable_cpu_fsdp, is_sharded

        self.t_start = time.time()
        self.cfg, self.out = cfg, cfg.out_dir
        out = self.out
        self.train_path, self.eval_path = _data_paths(cfg)
        self.ckpt = latest_checkpoint(out) if resume else None
        if resume and self.ckpt is None:
            echo(f"--resume: no checkpoint under {out}/checkpoints; starting from step 0")
        if not resume and latest_checkpoint(out) is not None:
            raise ConfigError(f"{out} already holds checkpoints of a run; pass --resume to continue it, or set "
                              "output_dir (or delete the folder) to start over")
        self.writer = None
        if cfg.train.tensorboard:
            try:
                from torch.utils.tensorboard import SummaryWriter
            except ImportError as e:
                raise ConfigError("train.tensorboard is on but tensorboard is not installed; pip install "
                                  "tensorboard or set train.tensorboard=false") from e

        # several processes and no GPU (`accelerate launch --multi_gpu --num_processes N` or `torchrun` on a CPU
        # machine): gloo data parallel on CPU; accelerate's own `--cpu` flag starts a single process without mpirun
        multi_cpu = not torch.cuda.is_available() and int(os.environ.get("WORLD_SIZE", "1") or 1) > 1
        self.accel = accel = Accelerator(
            mixed_precision=_mixed_precision(cfg), gradient_accumulation_steps=1, cpu=multi_cpu,
            kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)])
        enable_cpu_fsdp(accel)  # `--use_fsdp` on a CPU machine: accelerate's FSDP2 path over gloo (sharding.py)
        self.sharded = is_sharded(accel)  # FSDP / DeepSpeed: every process saves and loads (accelerate's state)
        self.device = accel.device
        self.echo = echo if accel.is_main_process else _silent  # one process speaks (and logs, and saves): rank 0
        if self.device.type == "cpu" and cfg.train.cpu_threads:
            torch.set_num_threads(int(cfg.train.cpu_threads))
        if cfg.train.deterministic and self.device.type == "cuda":
            torch.use_deterministic_algorithms(True, warn_only=True)
        out.mkdir(parents=True, exist_ok=True)
        if accel.is_main_process:
            (out / "recipe.json").write_text(json.dumps(cfg.to_dict(), indent=1))
        if cfg.train.tensorboard and accel.is_main_process:
            self.writer = SummaryWriter(str(out / "tensorboard"))

    def load_data(self) -> None:
        """The training rows (bad rows reported and skipped) and the eval rows (data.eval, else held out)."""
        from affectllm.training.data import batches_per_epoch, holdout_split, load_split

        cfg = self.cfg
        tasks = cfg.data.tasks or (["alignment"] if cfg.stage == "alignment" else None)
        self.train_ds, report = load_split(self.train_path, tasks, cfg.data.limit, cfg.data.check_media)
        self.eval_ds = None
        self.load_skipped = report.invalid_rows
        if self.eval_path is not None:
            self.eval_ds, ev_report = load_split(self.eval_path, tasks, None, cfg.data.check_media)
            self.load_skipped += ev_report.invalid_rows
        else:
            self.train_ds, self.eval_ds = holdout_split(self.train_ds, cfg.data.eval_fraction, cfg.seed)
        self.bs, self.world = cfg.train.batch_size, self.accel.num_processes
        self.n_batches = batches_per_epoch(len(self.train_ds), self.bs, self.world)
        if self.n_batches < self.world:
            raise ConfigError(f"{self.train_path}: {len(self.train_ds)} usable rows make {self.n_batches} batch(es) "
                              f"of train.batch_size={self.bs}, fewer than the {self.world} process(es); lower "
                              "train.batch_size")

    def build_model(self) -> None:
        """The model with the stage's parts trainable, AdamW over their param groups, the warm-up/decay schedule."""
        from affectllm.training import build as B

        cfg = self.cfg
        self.model, self.processor = B.build_model(cfg, self.device)
        self.groups = B.set_trainable(self.model, cfg.stage)
        if cfg.model.gradient_checkpointing:
            self.model.gradient_checkpointing_enable()
        self.trainable, self.frozen = B.count_parameters(self.model)
        self.optimizer = torch.optim.AdamW(B.param_groups(self.groups, cfg), lr=cfg.optim.lr,
                                           betas=tuple(cfg.optim.betas), eps=cfg.optim.eps,
                                           weight_decay=cfg.optim.weight_decay)
        self.scheduler = B.make_scheduler(self.optimizer, cfg, cfg.train.max_steps)

    def build_collator(self) -> None:
        """The cue experts (when the prompt shows cues), the feature cache keyed on them, and the collator."""
        from affectllm.training.data import Collator
        from affectllm.training.feature_cache import open_cache

        cfg, model = self.cfg, self.model
        cues = {"auto": bool(model.config.use_cues), "on": True, "off": False}[cfg.data.cues]
        self.experts, cue_desc = None, None
        if cues:
            from affectllm.engine import experts_for

            self.experts = experts_for(model)
            cue_desc = {"whisper": self.experts.whisper_name, "faces": self.experts.faces}
            if cfg.data.voice_head:  # e.g. a fold head that never heard the held-out speakers (train/make_starter.sh)
                from affectllm.perception.voice import VoiceExpert
                from affectllm.utils.fingerprint import sha256_file

                head = cfg.resolve(cfg.data.voice_head)
                self.experts._voice = VoiceExpert.load(head)
                cue_desc["voice_head"] = sha256_file(head)[:16]  # new head, new cache
        self.cache = None
        if cfg.cache.enabled:
            from affectllm.utils.paths import cache_dir

            root = Path(cfg.cache.dir) if cfg.cache.dir else cache_dir("features")
            self.cache = open_cache(model, self.processor, root, cue_desc)
        self.collator = Collator(self.processor, self.cache, self.experts, alignment=cfg.stage == "alignment",
                                 max_length=cfg.data.max_length)

    def restore(self) -> None:
        """Progress counters from zero, or weights, optimizer, schedule, RNG and counters from the checkpoint.

        A sharded checkpoint (FSDP / DeepSpeed) gives its counters here and its tensors after ``prepare``, once
        the model and optimizer are sharded like the ones that wrote it.
        """
        from affectllm.training import checkpointing as ck
        from affectllm.training.feature_cache import CacheStats

        self.progress: dict[str, Any] = {"epoch": 0, "batch": 0, "skipped": 0, "skipped_ids": [], "samples": 0,
                                         "cache": CacheStats().__dict__}
        self.step = 0
        if self.ckpt is not None:
            try:
                ck.check_resumable(self.ckpt, self.accel)
            except ValueError as e:
                raise ConfigError(str(e)) from e
            if self.sharded:
                self.progress = ck.sharded_progress(self.ckpt)
            else:
                self.progress = ck.load_training_checkpoint(self.ckpt, self.model, self.optimizer, self.scheduler)
            self.step = self.progress.pop("step")
            self.echo(f"resumed from {self.ckpt} (step {self.step}, epoch {self.progress['epoch']}, "
                      f"batch {self.progress['batch']})")

    def prepare(self) -> None:
        """Train mode, accelerate's wrapping (DDP / FSDP / DeepSpeed), the metrics log; says what will train."""
        from affectllm.training.feature_cache import CacheStats
        from affectllm.training.sharding import FSDP, describe, launch_kind

        accel, bs, world = self.accel, self.bs, self.world
        self.model.train()
        ds_plugin = getattr(accel.state, "deepspeed_plugin", None)
        if ds_plugin is not None:  # our loop accumulates itself; DeepSpeed needs the micro-batch size spelled out
            ds_plugin.deepspeed_config.update({"train_micro_batch_size_per_gpu": bs,
                                               "gradient_accumulation_steps": 1, "train_batch_size": bs * world})
        self.model, self.optimizer = accel.prepare(self.model, self.optimizer)
        self.inner = accel.unwrap_model(self.model)
        self.trainables = [p for ps in self.groups.values() for p in ps]
        if launch_kind(accel) == FSDP:  # FSDP2 replaced the parameters by sharded ones (the optimizer follows)
            self.trainables = [p for p in self.inner.parameters() if p.requires_grad]
        if self.ckpt is not None and self.sharded:
            from affectllm.training.checkpointing import load_sharded_checkpoint

            load_sharded_checkpoint(accel, self.ckpt, self.scheduler)
        self.metrics = (MetricsLog(self.out / "metrics.jsonl", self.step if self.ckpt is not None else None)
                        if accel.is_main_process else None)
        self.totals = CacheStats(**self.progress["cache"])
        self.writes_base = self.totals.writes
        n_eval = len(self.eval_ds) if self.eval_ds is not None else 0
        self.echo(f"{self.cfg.name}: stage {self.cfg.stage}, {len(self.train_ds)} train rows ({self.load_skipped} "
                  f"skipped at load), {n_eval} eval rows; trainable {self.trainable:,} / frozen {self.frozen:,} "
                  f"parameters; {world} process(es) on {self.device} ({describe(accel, self.model)}), mixed precision "
                  f"{accel.mixed_precision}")

    def evaluate(self) -> dict[str, Any]:
        """Eval loss on the eval rows, plus label scores of generated answers when train.eval_generate."""
        from affectllm.training.data import Collator
        from affectllm.training.evaluate import eval_loss, generate_rows, label_scores

        cfg, eval_ds = self.cfg, self.eval_ds
        if eval_ds is None or len(eval_ds) == 0:
            return {}
        res = eval_loss(self.inner, eval_ds, self.collator, self.cache, self.device, self.bs,
                        cfg.train.eval_max_samples, self.accel.autocast)
        if cfg.train.eval_generate:
            gen_collator = Collator(self.processor, self.cache, self.experts, alignment=cfg.stage == "alignment",
                                    max_length=cfg.data.max_length, prompt_only=True)
            sub = eval_ds.select(range(min(len(eval_ds), cfg.train.eval_max_samples)))
            res.update(label_scores(generate_rows(self.inner, sub, gen_collator, self.cache, self.device, self.bs)))
        return res

    # --- step 7: the loop ---------------------------------------------------------------------------------
    def loop(self) -> None:
        """Seeded epoch orders until train.max_steps (or train.epochs) is reached."""
        cfg = self.cfg
        self.last_eval: dict[str, Any] = {}
        self.last_saved = self.step
        self.micro, self.step_loss, self.step_samples, self.t_step = 0, 0.0, 0, time.time()
        self.t_loop = self.t_step
        done = self.step >= cfg.train.max_steps
        while not done and (cfg.train.epochs is None or self.progress["epoch"] < cfg.train.epochs):
            done = self.run_epoch()

    def run_epoch(self) -> bool:
        """This epoch's batches from where the progress stands; True once the last step is taken."""
        from affectllm.training.data import EpochBatches, epoch_order, make_loader

        cfg, progress = self.cfg, self.progress
        order = epoch_order(len(self.train_ds), cfg.seed, progress["epoch"])
        loader = make_loader(EpochBatches(self.train_ds, order, self.bs, self.collator, progress["batch"],
                                          self.accel.process_index, self.world), cfg.data.num_workers)
        for batch in loader:
            self.micro_step(batch)
            if self.micro % cfg.train.grad_accum:
                continue
            self.after_step(self.optimizer_step(batch))
            if self.step >= cfg.train.max_steps:
                if progress["batch"] >= self.n_batches:  # the step that ended the run also ended the epoch
                    progress["epoch"] += 1
                    progress["batch"] = 0
                return True
        progress["epoch"] += 1
        progress["batch"] = 0
        return False

    def micro_step(self, batch) -> None:
        """Forward and backward of one batch; a batch with no usable row backs a zero loss (processes stay in step)."""
        from affectllm.training.features import batch_tower_outputs

        accel, progress, ga, world = self.accel, self.progress, self.cfg.train.grad_accum, self.world
        progress["batch"] += world
        progress["skipped"] += len(batch.skipped)
        progress["skipped_ids"] = (progress["skipped_ids"] + [rid for rid, _ in batch.skipped])[:200]
        self.totals.add(batch.cache)
        if len(batch):
            towers = batch_tower_outputs(self.inner, batch, self.cache, self.device)
            self.totals.writes = self.writes_base + (self.cache.stats.writes if self.cache is not None else 0)
            text = {k: v.to(self.device) for k, v in batch.text.items()}
            with accel.autocast():
                loss = answer_loss(self.model, text, towers) / ga
        else:  # every row of the batch was unusable: a zero step keeps processes in lock-step
            loss = sum(p.sum() for p in self.trainables) * 0.0
        self.micro += 1
        if self.micro % ga and len(batch):
            with accel.no_sync(self.model):
                accel.backward(loss)
        else:
            accel.backward(loss)
        self.step_loss += float(loss.detach()) * ga
        self.step_samples += len(batch) * world

    def optimizer_step(self, batch) -> dict[str, Any]:
        """Clip, step optimizer and schedule, count the step; returns its metrics record."""
        cfg, accel = self.cfg, self.accel
        if cfg.optim.max_grad_norm:
            accel.clip_grad_norm_(self.trainables, cfg.optim.max_grad_norm)
        self.optimizer.step()
        self.scheduler.step()
        self.optimizer.zero_grad(set_to_none=True)
        self.step += 1
        self.progress["samples"] += self.step_samples
        if self.world > 1:  # the logged loss is the global batch's, as one process with grad_accum x world logs
            self.step_loss = float(accel.reduce(torch.tensor(self.step_loss, device=self.device), reduction="mean"))
        now = time.time()
        lrs = self.scheduler.get_last_lr()
        rec = {"step": self.step, "epoch": self.progress["epoch"], "loss": round(self.step_loss / cfg.train.grad_accum, 6),
               "lr": lrs[-1], "lr_projector": lrs[0],
               "samples_per_s": round(self.step_samples / max(now - self.t_step, 1e-9), 3),
               "cache_hit_rate": round(batch.cache.hit_rate, 4), "skipped": self.progress["skipped"],
               "elapsed_s": round(now - self.t_loop, 3)}
        self.micro, self.step_loss, self.step_samples, self.t_step = 0, 0.0, 0, now
        return rec

    def after_step(self, rec: dict[str, Any]) -> None:
        """Evaluation and checkpoint at their cadence, then the step's metrics line."""
        cfg, step = self.cfg, self.step
        if cfg.train.eval_every and step % cfg.train.eval_every == 0:
            self.last_eval = self.evaluate()
            rec.update(self.last_eval)
        if cfg.train.save_every and step % cfg.train.save_every == 0 and step < cfg.train.max_steps:
            self.progress["cache"] = self.totals.__dict__
            self.save()
        if self.metrics is not None and (step % cfg.train.log_every == 0 or step == cfg.train.max_steps
                                         or "eval_loss" in rec):
            self.metrics.write(rec)
            if self.writer is not None:
                for k, v in rec.items():
                    if isinstance(v, (int, float)) and k != "step":
                        self.writer.add_scalar(k, v, step)

    def save(self) -> None:
        """The training checkpoint of this step: rank 0 alone (one process, DDP), or every process (sharded)."""
        from affectllm.training.checkpointing import save_sharded_checkpoint, save_training_checkpoint

        keep = self.cfg.train.keep_last
        if self.sharded:
            save_sharded_checkpoint(self.accel, self.out, self.step, self.scheduler, self.progress, keep)
        elif self.accel.is_main_process:
            save_training_checkpoint(self.out, self.step, self.inner, self.processor, self.optimizer, self.scheduler,
                                     self.progress, keep)
        self.last_saved = self.step
        self.accel.wait_for_everyone()

    def row_sources(self) -> dict[str, int]:
        """Training rows per data source (the rows' ``source`` column), for the model card."""
        from collections import Counter

        names = getattr(self.train_ds, "column_names", None) or []
        return dict(Counter(str(s or "unknown") for s in self.train_ds["source"])) if "source" in names else {}

    # --- step 8 -------------------------------------------------------------------------------------------
    def finish(self) -> dict[str, Any]:
        """A last evaluation unless one just ran, the final checkpoint, the adapter, loss.png, summary.json.

        Sharded (FSDP / DeepSpeed): every process saves the checkpoint and gathers the full weights, which rank 0
        writes as the adapter.
        """
        from affectllm.training.sharding import full_state_dict

        cfg, out, accel, inner, progress = self.cfg, self.out, self.accel, self.inner, self.progress
        if not cfg.train.eval_every or not self.last_eval:
            self.last_eval = self.evaluate()
            if self.metrics is not None and self.last_eval:
                self.metrics.write({"step": self.step, **self.last_eval})
        progress["cache"] = self.totals.__dict__
        if self.step != self.last_saved:
            self.save()
        gathered = full_state_dict(accel, self.model) if self.sharded else None  # collective
        summary: dict[str, Any] = {}
        if accel.is_main_process:
            from affectllm.model.checkpoint import save_checkpoint
            from affectllm.training.plots import plot_loss

            save_checkpoint(inner, self.processor, out / "adapter", include_tokenizer=inner.config.text_model is None,
                            trained=True, state_dict=gathered)
            self.metrics.close()
            plot_loss(out / "metrics.jsonl", out / "loss.png", title=cfg.name)
            wall = time.time() - self.t_start
            totals = self.totals
            summary = {"name": cfg.name, "stage": cfg.stage, "steps": self.step,
                       "epochs_completed": progress["epoch"], "train_rows": len(self.train_ds),
                       "eval_rows": len(self.eval_ds) if self.eval_ds is not None else 0,
                       "skipped_at_load": self.load_skipped, "skipped_in_epochs": progress["skipped"],
                       "skipped_ids": sorted(set(progress["skipped_ids"]))[:50],
                       "cache": {**totals.__dict__, "hit_rate": round(totals.hit_rate, 4)},
                       "trainable_params": self.trainable, "frozen_params": self.frozen, "eval": self.last_eval,
                       "wall_s": round(wall, 2), "adapter": str(out / "adapter")}
            (out / "summary.json").write_text(json.dumps(summary, indent=1))
            from affectllm.model.model_card import write_card

            write_card(out / "adapter", inner.config, name=cfg.name, summary=summary, sources=self.row_sources())
            self.echo(summary_text(summary))
        if self.writer is not None:
            self.writer.close()
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
