"""Training AffectLLM: recipes (config), instruction batches (data), the feature cache, exact-resume
checkpoints, the accelerate loop (trainer) and the offline ``--dry-run`` estimate (dryrun).

    from affectllm.training import load_config, train
    train(load_config("train/configs/starter-cpu.yaml", ["train.max_steps=20"]))
"""

from __future__ import annotations

from typing import Any

from affectllm.training.config import ConfigError, TrainConfig, load_config

__all__ = ["ConfigError", "TrainConfig", "load_config", "train", "dry_run"]


def train(cfg: TrainConfig, resume: bool = False, **kwargs: Any) -> dict[str, Any]:
    from affectllm.training.trainer import train as _train

    return _train(cfg, resume=resume, **kwargs)


def dry_run(cfg: TrainConfig) -> str:
    from affectllm.training.dryrun import dry_run as _dry

    return _dry(cfg)
