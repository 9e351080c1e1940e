"""TrainConfig: one training recipe (YAML) as typed dataclasses, with ``section.key=value`` overrides.

Every key is checked before anything heavy loads: an unknown key in the YAML or in an override is an error
that names the file, the key and the closest known key ("did you mean ..."). Values of overrides are parsed
as YAML scalars (``train.max_steps=20``, ``optim.lr=1e-4``, ``data.tasks=[ov_labels,describe]``).

Shape of a recipe (see train/configs/*.yaml and train/README.md)::

    name: starter-cpu
    stage: instruct            # alignment (projector only) | instruct (projector + LoRA)
    model: default             # shorthand for {source: default}; or {source: tiny|default|config|checkpoint, ...}
    data: {train: FILE.jsonl, eval: FILE.jsonl, ...}
    optim: {lr: 2.0e-4, projector_lr: 1.0e-3, ...}
    train: {batch_size: 4, grad_accum: 2, max_steps: 300, ...}
    cache: {enabled: true}
"""

from __future__ import annotations

import dataclasses
import difflib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

STAGES = ("alignment", "instruct")
MODEL_SOURCES = ("tiny", "default", "config", "checkpoint")


class ConfigError(ValueError):
    """A recipe that cannot be used: names the file, the key and the fix."""


@dataclass
class ModelSection:
    """Which AffectLLM to train. ``source``: tiny (affectllm.model.tiny.tiny_config(**options)), default (the
    embedded default), config (an AffectLLMConfig dict in ``config``) or checkpoint (a folder in ``path``)."""

    source: str = "default"
    options: dict[str, Any] = field(default_factory=dict)  # tiny_config keyword arguments
    config: dict[str, Any] | None = None  # AffectLLMConfig fields (towers, projector, text_model, lora)
    path: str | None = None  # checkpoint folder (source: checkpoint)
    init_from: str | None = None  # load projector + LoRA weights from this checkpoint before training
    tokenizer: str | None = None  # tokenizer id/path when it differs from text_model
    text_model: str | None = None  # the language model of source default (gemma | smollm2 | registry:... | path)
    arch: dict[str, Any] | None = None  # offline architecture fallback for --dry-run (see dryrun.py)
    dtype: str = "auto"  # weights dtype of the frozen parts: auto | float32 | bfloat16 | float16
    quantization: str | None = None  # None | 4bit (QLoRA: NF4 base LLM)
    gradient_checkpointing: bool = False
    lora: dict[str, Any] | None = None  # overrides of the config's LoRA spec (r, alpha, dropout, target_modules)


@dataclass
class DataSection:
    """Instruction data (affectllm.instruct schema) and how rows become model inputs."""

    train: str | None = None  # JSONL; relative paths resolve against the recipe file's repository root
    eval: str | None = None  # held-out JSONL (else a deterministic eval_fraction of train)
    eval_fraction: float = 0.0
    tasks: list[str] | None = None  # None: alignment stage -> [alignment]; instruct -> every task
    cues: str = "auto"  # auto (model.config.use_cues) | on | off: expert cue lines in the first user turn
    max_length: int | None = 1024  # tokens; longer prompts lose text from the left, never media or answers
    num_workers: int = 0  # DataLoader workers decoding media
    limit: int | None = None  # use only the first N rows (smoke runs)
    check_media: bool = True  # missing media files are reported by id and skipped at load time
    num_frames: int | None = None  # override the vision spec's frame count
    voice_head: str | None = None  # voice-expert safetensors for the cue lines (default: the shipped head)


@dataclass
class OptimSection:
    lr: float = 2e-4  # LoRA parameters
    projector_lr: float | None = 1e-3  # projector parameters (None: same as lr)
    weight_decay: float = 0.0
    betas: list[float] = field(default_factory=lambda: [0.9, 0.999])
    eps: float = 1e-8
    scheduler: str = "cosine"  # cosine | linear | constant
    warmup_steps: int = 0
    min_lr_ratio: float = 0.1
    max_grad_norm: float | None = 1.0


@dataclass
class LoopSection:
    """The optimisation loop: sizes, precision, logging, evaluation and checkpoint cadence."""

    batch_size: int = 4
    grad_accum: int = 1
    max_steps: int = 100  # optimizer steps
    epochs: int | None = None  # stop after this many epochs if it comes before max_steps
    mixed_precision: str = "auto"  # auto (bf16 on CUDA with bf16, else fp16 on CUDA, else no) | no | bf16 | fp16
    log_every: int = 1
    eval_every: int = 0  # 0: only at the end (when there is eval data)
    eval_max_samples: int = 64
    eval_generate: bool = False  # also generate on the eval split and score labels (needs affectllm.evaluation)
    save_every: int = 0  # 0: only at the end
    keep_last: int = 2
    tensorboard: bool = False
    deterministic: bool = True  # torch.use_deterministic_algorithms(warn_only) on CUDA; seeds always
    cpu_threads: int | None = None  # torch intra-op threads on CPU (1 is fastest for tiny models on busy cores)


@dataclass
class CacheSection:
    enabled: bool = True
    dir: str | None = None  # default: $AFFECTLLM_HOME/features


@dataclass
class TrainConfig:
    name: str = "run"
    stage: str = "instruct"
    seed: int = 0
    output_dir: str | None = None  # default: runs/<name>
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    train: LoopSection = field(default_factory=LoopSection)
    cache: CacheSection = field(default_factory=CacheSection)
    source_file: str | None = None  # the recipe file (set by load_config; relative paths resolve against it)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @property
    def out_dir(self) -> Path:
        return Path(self.output_dir or Path("runs") / self.name)

    def resolve(self, path: str | None) -> Path | None:
        """A path from the recipe: ``cache:REL`` (under the AffectLLM cache), absolute, else relative to the current folder if it exists there, else to
        the repository root above the recipe file (``train/configs/x.yaml`` -> the folder holding ``train``)."""
        if path is None:
            return None
        if path.startswith("cache:"):  # a file under the AffectLLM cache ($AFFECTLLM_HOME, ~/.cache/affectllm)
            from affectllm.utils.paths import cache_dir

            return cache_dir(create=False) / path.removeprefix("cache:")
        p = Path(path).expanduser()
        if p.is_absolute() or p.exists() or self.source_file is None:
            return p
        src = Path(self.source_file).resolve()
        for base in (src.parent, *src.parents):
            if (base / p).exists():
                return base / p
        return p


_SECTIONS = {"model": ModelSection, "data": DataSection, "optim": OptimSection, "train": LoopSection,
             "cache": CacheSection}


def _known(cls: type) -> list[str]:
    return [f.name for f in dataclasses.fields(cls)]


def _unknown(key: str, known: list[str], where: str) -> ConfigError:
    close = difflib.get_close_matches(key, known, n=1, cutoff=0.5)
    hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(known)}"
    return ConfigError(f"{where}: unknown key '{key}'; {hint}")


def _build_section(cls: type, data: Any, where: str) -> Any:
    if data is None:
        return cls()
    if not isinstance(data, dict):
        raise ConfigError(f"{where}: expected a mapping, got {type(data).__name__} ({data!r})")
    known = _known(cls)
    for key in data:
        if key not in known:
            raise _unknown(str(key), known, f"{where}.{key}".lstrip("."))
    return cls(**data)


def config_from_dict(raw: dict[str, Any], where: str = "<recipe>") -> TrainConfig:
    """Typed TrainConfig from a plain dict; unknown keys raise ConfigError naming ``where`` and the key."""
    raw = dict(raw or {})
    if isinstance(raw.get("model"), str):
        raw["model"] = {"source": raw["model"]}
    top = _known(TrainConfig)
    for key in raw:
        if key not in top:
            raise _unknown(str(key), top, where)
    kwargs: dict[str, Any] = {}
    for key, value in raw.items():
        cls = _SECTIONS.get(key)
        kwargs[key] = _build_section(cls, value, f"{where}: {key}") if cls else value
    cfg = TrainConfig(**kwargs)
    _check(cfg, where)
    return cfg


def _check(cfg: TrainConfig, where: str) -> None:
    if cfg.stage not in STAGES:
        raise ConfigError(f"{where}: stage '{cfg.stage}' unknown; use one of {', '.join(STAGES)}")
    if cfg.model.source not in MODEL_SOURCES:
        raise ConfigError(f"{where}: model.source '{cfg.model.source}' unknown; use one of {', '.join(MODEL_SOURCES)}")
    if cfg.model.source == "config" and not cfg.model.config:
        raise ConfigError(f"{where}: model.source is 'config' but model.config is empty; give AffectLLMConfig fields")
    if cfg.model.source == "checkpoint" and not cfg.model.path:
        raise ConfigError(f"{where}: model.source is 'checkpoint'; set model.path to the checkpoint folder")
    if cfg.model.quantization not in (None, "none", "4bit", "8bit"):
        raise ConfigError(f"{where}: model.quantization '{cfg.model.quantization}'; use 4bit, 8bit or leave it out")
    if isinstance(cfg.data.cues, bool):  # YAML reads a bare on/off as a boolean
        cfg.data.cues = "on" if cfg.data.cues else "off"
    if cfg.data.cues not in ("auto", "on", "off"):
        raise ConfigError(f"{where}: data.cues '{cfg.data.cues}'; use auto, on or off")
    if cfg.train.mixed_precision not in ("auto", "no", "bf16", "fp16"):
        raise ConfigError(f"{where}: train.mixed_precision '{cfg.train.mixed_precision}'; use auto, no, bf16 or fp16")
    if cfg.optim.scheduler not in ("cosine", "linear", "constant"):
        raise ConfigError(f"{where}: optim.scheduler '{cfg.optim.scheduler}'; use cosine, linear or constant")
    for sec in ("optim", "train"):  # numbers written as 1e-4 in YAML arrive as strings: accept them
        section = getattr(cfg, sec)
        for f in dataclasses.fields(section):
            value = getattr(section, f.name)
            if isinstance(value, str) and ("float" in str(f.type) or "int" in str(f.type)):
                try:
                    setattr(section, f.name, float(value) if "float" in str(f.type) else int(value))
                except ValueError:
                    raise ConfigError(f"{where}: {sec}.{f.name}={value!r} is not a number") from None
    for name in ("batch_size", "grad_accum", "max_steps"):
        if int(getattr(cfg.train, name)) < 1:
            raise ConfigError(f"{where}: train.{name} must be >= 1")


def parse_override(text: str) -> tuple[list[str], Any]:
    """``section.key=value`` -> (["section", "key"], parsed YAML value)."""
    if "=" not in text:
        raise ConfigError(f"override '{text}': write it as section.key=value (e.g. train.max_steps=20)")
    key, value = text.split("=", 1)
    parts = [p for p in key.strip().split(".") if p]
    if not parts:
        raise ConfigError(f"override '{text}': empty key")
    return parts, _scalar(value)


def _scalar(text: str) -> Any:
    """A YAML value; numbers YAML 1.1 leaves as strings (``1e-4``) become floats."""
    if not text.strip():
        return None
    value = yaml.safe_load(text)
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return value
    return value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Apply dotted overrides to a raw recipe dict, checking every key against the dataclasses."""
    raw = dict(raw)
    if isinstance(raw.get("model"), str):
        raw["model"] = {"source": raw["model"]}
    for text in overrides:
        parts, value = parse_override(text)
        if parts == ["model"] and isinstance(value, str):
            parts, value = ["model", "source"], value
        top = _known(TrainConfig)
        if parts[0] not in top:
            raise _unknown(parts[0], top, f"override '{text}'")
        cls = _SECTIONS.get(parts[0])
        if cls is None:
            if len(parts) != 1:
                raise ConfigError(f"override '{text}': '{parts[0]}' is a value, not a section")
            raw[parts[0]] = value
            continue
        if len(parts) < 2:
            raise ConfigError(f"override '{text}': '{parts[0]}' is a section; name a key ({parts[0]}.KEY=VALUE)")
        known = _known(cls)
        if parts[1] not in known:
            raise _unknown(parts[1], known, f"override '{text}': {parts[0]}")
        node = raw.setdefault(parts[0], {}) or {}
        raw[parts[0]] = node
        for p in parts[1:-1]:  # free-form dicts below a known key (model.options.text=llama)
            node = node.setdefault(p, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override '{text}': '{p}' is not a mapping")
        node[parts[-1]] = value
    return raw


def load_config(path: str | Path, overrides: list[str] | None = None) -> TrainConfig:
    """Read a recipe YAML, apply overrides, validate every key; nothing heavy is imported."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: no such recipe; see train/configs/ for the shipped ones")
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: not valid YAML ({e})") from e
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: a recipe is a YAML mapping of sections (name, stage, model, data, ...)")
    raw = apply_overrides(raw, list(overrides or []))
    cfg = config_from_dict(raw, where=str(path))
    cfg.source_file = str(path)
    return cfg
