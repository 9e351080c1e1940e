"""Model + processor from a recipe, and which parameters each stage trains.

Stage ``alignment`` trains the projector only (LoRA frozen: its B matrices start at zero, so a fresh adapter
adds nothing); stage ``instruct`` trains the projector and the LoRA adapters. Towers and the base LLM are
always frozen. Parameter groups give LoRA and projector their own learning rates.
"""

from __future__ import annotations

from typing import Any

import torch

from affectllm.training.config import TrainConfig


def affect_config(cfg: TrainConfig):
    """The AffectLLMConfig a recipe names (no weights touched)."""
    from affectllm.model.configuration_affectllm import AffectLLMConfig

    src = cfg.model.source
    if src == "tiny":
        from affectllm.model.tiny import tiny_config

        config = tiny_config(**cfg.model.options)
    elif src == "default":
        from affectllm.model.defaults import default_config

        config = default_config()
        if cfg.model.text_model:
            from affectllm.model.defaults import LLM_BACKBONES

            config.text_model = LLM_BACKBONES.get(cfg.model.text_model, cfg.model.text_model)
    elif src == "config":
        config = AffectLLMConfig(**cfg.model.config)
    else:
        config = AffectLLMConfig.from_pretrained(str(cfg.resolve(cfg.model.path)))
    if cfg.model.lora:
        lora = dict(config.lora_config)
        lora.update(cfg.model.lora)
        config.lora_config = lora
    if cfg.data.num_frames is not None and config.vision_config is not None:
        config.vision_config = {**config.vision_config, "num_frames": int(cfg.data.num_frames)}
    return config


def resolve_dtype(name: str, device: torch.device) -> torch.dtype:
    from affectllm.loading import resolve_dtype as _resolve

    return _resolve(name, device)


def build_model(cfg: TrainConfig, device: torch.device | None = None):
    """(model, processor) for the recipe; random parts are seeded by ``cfg.seed`` so rebuilding is identical."""
    from affectllm.model.builder import build_processor, model_from_config

    device = device or torch.device("cpu")
    torch.manual_seed(cfg.seed)
    dtype = resolve_dtype(cfg.model.dtype, device)
    quant = None if cfg.model.quantization in (None, "none") else cfg.model.quantization
    if cfg.model.source == "checkpoint" and not cfg.model.lora and cfg.data.num_frames is None:
        from affectllm.model.checkpoint import load_checkpoint

        model, processor = load_checkpoint(str(cfg.resolve(cfg.model.path)), dtype=dtype, quantization=quant)
    else:
        config = affect_config(cfg)
        processor = build_processor(config, _tokenizer(cfg, config))
        model = model_from_config(config, processor, dtype=dtype, quantization=quant)
    if cfg.model.init_from:
        from affectllm.training.checkpointing import load_trainable_weights

        load_trainable_weights(model, cfg.resolve(cfg.model.init_from))  # tensors only: the binding stands
    return model, processor


def _tokenizer(cfg: TrainConfig, config) -> Any:
    if cfg.model.source == "tiny":
        from affectllm.model.tiny import tiny_tokenizer

        return tiny_tokenizer()
    from transformers import AutoTokenizer

    from affectllm.model.language_model import resolve_text_model

    name = cfg.model.tokenizer or config.text_model
    if name is None:
        raise ValueError(f"{cfg.source_file or 'recipe'}: the model has no text_model to take a tokenizer from; "
                         "set model.tokenizer to a tokenizer id or folder")
    return AutoTokenizer.from_pretrained(resolve_text_model(name))


def set_trainable(model, stage: str) -> dict[str, list[torch.nn.Parameter]]:
    """Freeze everything but the stage's parts; returns {"projector": [...], "lora": [...]} (trainable only)."""
    model.requires_grad_(False)
    groups: dict[str, list[torch.nn.Parameter]] = {"projector": [], "lora": []}
    for name, p in model.named_parameters():
        if name.startswith("multi_modal_projector."):
            p.requires_grad_(True)
            groups["projector"].append(p)
        elif "lora_" in name and stage == "instruct":
            p.requires_grad_(True)
            groups["lora"].append(p)
    if not groups["projector"] and not groups["lora"]:
        raise ValueError("nothing to train: the model has no projector or LoRA parameters")
    for ps in groups.values():  # trainable weights stay float32 under bf16/fp16 autocast
        for p in ps:
            if p.dtype != torch.float32:
                p.data = p.data.float()
    return groups


def param_groups(groups: dict[str, list[torch.nn.Parameter]], cfg: TrainConfig) -> list[dict[str, Any]]:
    out = []
    if groups["projector"]:
        out.append({"params": groups["projector"], "lr": cfg.optim.projector_lr or cfg.optim.lr,
                    "name": "projector"})
    if groups["lora"]:
        out.append({"params": groups["lora"], "lr": cfg.optim.lr, "name": "lora"})
    return out


def count_parameters(model) -> tuple[int, int]:
    """(trainable, frozen) parameter counts (tied weights counted once)."""
    seen, trainable, frozen = set(), 0, 0
    for p in model.parameters():
        if id(p) in seen:
            continue
        seen.add(id(p))
        n = p.numel() * (2 if _is_4bit(p) else 1)
        if p.requires_grad:
            trainable += n
        else:
            frozen += n
    return trainable, frozen


def _is_4bit(p: torch.Tensor) -> bool:
    return type(p).__name__ == "Params4bit"


def make_scheduler(optimizer, cfg: TrainConfig, total_steps: int):
    """Warm-up then cosine / linear decay to ``min_lr_ratio`` (or constant), as a LambdaLR."""
    import math

    warm, floor, kind = cfg.optim.warmup_steps, cfg.optim.min_lr_ratio, cfg.optim.scheduler

    def factor(step: int) -> float:
        if warm and step < warm:
            return (step + 1) / warm
        if kind == "constant":
            return 1.0
        t = min(1.0, (step - warm) / max(1, total_steps - warm))
        decay = 0.5 * (1 + math.cos(math.pi * t)) if kind == "cosine" else 1 - t
        return floor + (1 - floor) * decay

    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
