"""``--dry-run``: build a recipe's model on the meta device (no weights, no download) and estimate its memory.

Every frozen part is built from an architecture config: the recipe's ``model.arch`` block supplies what would
otherwise come from the hub (the LLM's ``text_config``, a HuBERT ``audio_config.arch``, Whisper ``dims``), merged
over the recipe's AffectLLMConfig. Parameters are counted per part (trainable for the stage / frozen), and
memory per device is estimated as: frozen weights at their dtype (4-bit NF4 LLM linears at ~0.53 byte per
parameter with double quantisation), trainable weights + gradients + AdamW moments in float32 (16 bytes per
parameter), and activations for one micro-batch of ``data.max_length`` tokens (Korthikanti et al. 2022:
``s*b*h*(34 + 5*a*s/h)`` bytes per layer at 16 bits, ``2*s*b*h`` with gradient checkpointing) plus float32 logits.
"""

from __future__ import annotations

import copy
from typing import Any

import torch

from affectllm.training.config import TrainConfig

GiB = 1024**3


def arch_config(cfg: TrainConfig):
    """The recipe's AffectLLMConfig with ``model.arch`` merged in, pointing at no weights at all."""
    from affectllm.model.configuration_affectllm import AffectLLMConfig
    from affectllm.training.build import affect_config

    if cfg.model.source == "default" or cfg.model.source == "tiny":
        base = affect_config(cfg).to_dict()
    elif cfg.model.source == "config":
        base = AffectLLMConfig(**copy.deepcopy(cfg.model.config)).to_dict()
        if cfg.model.lora:
            base["lora_config"] = {**base["lora_config"], **cfg.model.lora}
    else:
        base = affect_config(cfg).to_dict()
    arch = copy.deepcopy(cfg.model.arch or {})
    fields = ("vision_config", "audio_config", "whisper_config", "projector_config", "lora_config", "text_config")
    kwargs = {k: base.get(k) for k in fields if k != "text_config"}
    kwargs.update(placeholder_tokens=base.get("placeholder_tokens"), use_cues=base.get("use_cues", True))
    for key, value in arch.items():
        if key not in fields:
            raise ValueError(f"{cfg.source_file}: model.arch.{key} is not a config part; use one of {fields}")
        if key == "text_config":
            continue
        if kwargs.get(key) is None:
            raise ValueError(f"{cfg.source_file}: model.arch.{key} given but the model has no {key}")
        kwargs[key] = {**kwargs[key], **value}
    text = arch.get("text_config")
    if text is None:
        tc = base.get("text_config")
        if tc is None:
            raise ValueError(f"{cfg.source_file}: --dry-run needs the LLM architecture offline: add "
                             "model.arch.text_config (the model's config.json values, with model_type)")
        text = tc
    text = dict(text)
    text.pop("architectures", None)
    return AffectLLMConfig(text_config=text, text_model=None, **kwargs)


def meta_model(cfg: TrainConfig):
    """The recipe's model on the meta device, trainable parts set for the stage."""
    from affectllm.model.builder import set_placeholder_ids
    from affectllm.model.modeling_affectllm import AffectLLMForConditionalGeneration
    from affectllm.training.build import set_trainable

    config = arch_config(cfg)
    vocab = config.text_config.vocab_size
    set_placeholder_ids(config, {m: vocab + i for i, m in enumerate(config.modalities)})
    with torch.device("meta"):
        model = AffectLLMForConditionalGeneration(config, load_weights=False)
    set_trainable(model, cfg.stage)
    return model


def _count(module) -> int:
    return sum(p.numel() for p in {id(p): p for p in module.parameters()}.values()) if module is not None else 0


def parameter_table(model) -> dict[str, dict[str, int]]:
    """Per part: trainable and frozen parameter counts (tied weights once)."""
    parts: dict[str, dict[str, int]] = {}
    seen = set()
    for name, p in model.named_parameters(remove_duplicate=False):
        if id(p) in seen:
            continue
        seen.add(id(p))
        part = name.split(".")[0]
        if part == "language_model" and "lora_" in name:
            part = "lora"
        d = parts.setdefault(part, {"trainable": 0, "frozen": 0})
        d["trainable" if p.requires_grad else "frozen"] += p.numel()
    return parts


def memory_estimate(model, cfg: TrainConfig, num_devices: int = 1, sharded: bool = False) -> dict[str, float]:
    """Bytes per device (GiB) by kind, for one micro-batch (see module docstring)."""
    on_cuda_dtype = 2 if cfg.model.dtype in ("auto", "bfloat16", "bf16", "float16", "fp16") else 4
    per_weight = {"4bit": 0.53, "8bit": 1.03}.get(cfg.model.quantization or "")  # bytes per LLM linear weight
    weights = 0.0
    trainable = 0
    for name, p in {id(p): (n, p) for n, p in model.named_parameters(remove_duplicate=False)}.values():
        if p.requires_grad:
            trainable += p.numel()
            continue
        is_llm_linear = name.startswith("language_model") and p.ndim == 2 and "embed" not in name \
            and "lm_head" not in name
        weights += p.numel() * (per_weight if per_weight and is_llm_linear else on_cuda_dtype)
    text = model.config.text_config
    h, n_layers, heads = text.hidden_size, text.num_hidden_layers, text.num_attention_heads
    s, b = int(cfg.data.max_length or 1024), int(cfg.train.batch_size)
    per_layer = 2 * s * b * h if cfg.model.gradient_checkpointing else s * b * h * (34 + 5 * heads * s / h)
    acts = per_layer * n_layers + 2 * s * b * text.vocab_size * 4  # + float32 logits and their gradient
    states = trainable * 16
    if sharded:  # FSDP2: weights and states sharded over devices; ZeRO-2 shards only states/grads
        weights /= num_devices
        states /= num_devices
    return {"weights": weights / GiB, "trainable_states": states / GiB, "activations": acts / GiB,
            "total": (weights + states + acts) / GiB}


def dry_run(cfg: TrainConfig, devices: tuple[int, ...] = (1, 8)) -> str:
    """The printed dry-run report: parameter counts per part and memory per device for 1 and N GPUs."""
    model = meta_model(cfg)
    table = parameter_table(model)
    trainable = sum(d["trainable"] for d in table.values())
    frozen = sum(d["frozen"] for d in table.values())
    lines = [f"{cfg.name}: stage {cfg.stage}, model source {cfg.model.source}"
             + (f" ({cfg.model.config.get('text_model')})" if cfg.model.config else ""),
             f"{'part':<24}{'trainable':>16}{'frozen':>18}"]
    for part, d in sorted(table.items()):
        lines.append(f"{part:<24}{d['trainable']:>16,}{d['frozen']:>18,}")
    lines.append(f"{'total':<24}{trainable:>16,}{frozen:>18,}")
    q = {"4bit": " (LLM 4-bit NF4)", "8bit": " (LLM 8-bit LLM.int8())"}.get(cfg.model.quantization or "", "")
    lines.append(f"memory per device, micro-batch {cfg.train.batch_size} x {cfg.data.max_length} tokens, "
                 f"gradient checkpointing {'on' if cfg.model.gradient_checkpointing else 'off'}{q}:")
    for n in devices:
        for label, sharded in (("1 GPU / DDP", False),) if n == 1 else (("FSDP2", True), ("DDP", False)):
            m = memory_estimate(model, cfg, n, sharded)
            lines.append(f"  {label if n == 1 else f'{label} x{n}':<14} weights {m['weights']:7.2f} GiB  "
                         f"trainable+grads+Adam {m['trainable_states']:6.2f} GiB  activations "
                         f"{m['activations']:6.2f} GiB  total ~{m['total']:7.2f} GiB")
    return "\n".join(lines)


def dry_run_numbers(cfg: TrainConfig) -> dict[str, Any]:
    """Counts and the single-device estimate as numbers (tests, tools)."""
    model = meta_model(cfg)
    table = parameter_table(model)
    return {"parts": table, "trainable": sum(d["trainable"] for d in table.values()),
            "frozen": sum(d["frozen"] for d in table.values()), "memory": memory_estimate(model, cfg)}
