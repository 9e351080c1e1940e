"""AffectLLMConfig: one composite config for the towers, the projector, the language model and LoRA.

It names every frozen part by what it is (an id, a registry name or a user-given path) and never invents a
machine path. A tower or language model with ``model=None`` is built from its embedded architecture config
with random weights; such parts are then saved with the checkpoint (nothing else could restore them).
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from typing import Any

from transformers import AutoConfig, PretrainedConfig

MODALITIES = ("vision", "audio", "whisper")

# Placeholder tokens: one per modality, each expanded by the processor to that modality's query count.
DEFAULT_PLACEHOLDERS = {"vision": "<|affect_vision|>", "audio": "<|affect_audio|>", "whisper": "<|affect_speech|>"}

# Declared fields that a checkpoint writes only when set: at these values they are left out of config.json,
# so folders saved before they were declared stay byte-identical and keep their fingerprints (eval cache keys).
OMITTED_AT_DEFAULT: dict[str, Any] = {"prompt_style": None, "asr_model": None, "generation_overrides": None,
                                      "anchor_labels": True}


class SpecMixin:
    """Dict round-trip for the small spec dataclasses stored inside the config JSON."""

    @classmethod
    def from_any(cls, value: Any):
        if value is None or isinstance(value, cls):
            return value
        if isinstance(value, dict):
            names = {f.name for f in fields(cls)}
            unknown = set(value) - names
            if unknown:
                raise ValueError(f"{cls.__name__}: unknown keys {sorted(unknown)}; known keys are {sorted(names)}")
            return cls(**value)
        raise TypeError(f"{cls.__name__}: expected a dict, got {type(value).__name__}")

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))


@dataclass
class VisionTowerSpec(SpecMixin):
    """A frozen image encoder applied to sampled frames or to main-face crops.

    type: ``open_clip`` (any open_clip model name; ``pretrained`` = tag or local checkpoint path),
    ``hf`` (HF CLIP / SigLIP vision model id or path) or ``fer`` (the mini-Xception face-expression net).
    ``arch`` is the architecture dict used when no weights are named (open_clip model cfg, HF config dict).
    """

    type: str = "open_clip"
    model: str | None = None
    pretrained: str | None = None
    arch: dict[str, Any] | None = None
    tokens: str = "patch"  # "patch" (all patch tokens) | "pooled" (one vector per frame) | "projected" (hf CLIP
    # get_image_features: the pooled vector through the visual projection, as AffectGPT)
    input: str = "frames"  # "frames" | "faces"
    num_frames: int = 8
    image_size: int = 224
    frame_sampling: str = "uniform"  # "uniform" (bin-centre times) | "affectgpt" (frame indices arange(0, n, n/T))
    resize: str = "crop"  # "crop" (shorter side + centre crop) | "squash" (both sides to image_size, aspect lost)
    image_mean: list[float] = field(default_factory=lambda: [0.48145466, 0.4578275, 0.40821073])
    image_std: list[float] = field(default_factory=lambda: [0.26862954, 0.26130258, 0.27577711])
    grayscale: bool = False

    def __post_init__(self) -> None:
        if self.frame_sampling not in ("uniform", "affectgpt"):
            raise ValueError(f"vision frame_sampling {self.frame_sampling!r}: choose 'uniform' or 'affectgpt'")


@dataclass
class AudioTowerSpec(SpecMixin):
    """A frozen HF speech SSL encoder (HuBERT, wav2vec2, WavLM, ...) loaded through ``AutoModel``."""

    model: str | None = None
    arch: dict[str, Any] | None = None  # HF config dict (needs "model_type") for a random tower
    layers: list[int] | None = None  # hidden-state indices averaged; None = last layer
    stride: int = 1  # keep every n-th frame (temporal down-sampling before the projector)
    normalize: bool = True  # zero-mean unit-variance waveform, as wav2vec2 feature extractors do
    max_seconds: float = 60.0
    clips: int = 0  # >0: that many evenly spaced clips of clip_seconds, normalised jointly, one vector each
    clip_seconds: float = 2.0
    clip_spacing: str = "ends"  # clip starts: "ends" i*(dur-s)/(clips-1) (last clip ends at the end) |
    # "pytorchvideo" i*(dur-s)/clips (ConstantClipsPerVideoSampler, AffectGPT)
    clip_mean: bool = False  # remove each clip's own mean before the joint normalisation (AffectGPT)
    last_layer: str = "hidden_states"  # what layer -1 means: "hidden_states" (as transformers returns it) |
    # "last_hidden_state" (the encoder output; after a stable-layer-norm model's final norm, as transformers 4.x)

    def __post_init__(self) -> None:
        if self.clip_spacing not in ("ends", "pytorchvideo"):
            raise ValueError(f"audio clip_spacing {self.clip_spacing!r}: choose 'ends' or 'pytorchvideo'")
        if self.last_layer not in ("hidden_states", "last_hidden_state"):
            raise ValueError(f"audio last_layer {self.last_layer!r}: choose 'hidden_states' or 'last_hidden_state'")


@dataclass
class WhisperTowerSpec(SpecMixin):
    """openai-whisper's audio encoder: a registry name ("base", "tiny.en"), a checkpoint path, or random ``dims``."""

    model: str | None = None
    dims: dict[str, int] | None = None  # whisper.model.ModelDimensions fields for a random tower
    stride: int = 2  # average-pool encoder frames (20 ms each) by this factor
    max_seconds: float = 120.0


@dataclass
class ProjectorSpec(SpecMixin):
    """How tower features become LLM tokens.

    ``qformer``: learnable queries per modality cross-attend (transformers' BLIP-2 Q-Former) to that tower's
    features plus time and modality embeddings; ``attention_pool``: one token per modality (as AffectGPT);
    ``mlp``: features pooled to ``num_queries`` time slots, then a two-layer MLP (LLaVA style);
    ``affectgpt``: converted AffectGPT checkpoints (affectllm.model.projector_affectgpt).
    """

    type: str = "qformer"
    num_queries: dict[str, int] = field(default_factory=lambda: {"vision": 32, "audio": 16, "whisper": 16})
    hidden_size: int = 768
    num_layers: int = 2
    num_heads: int = 8
    intermediate_size: int | None = None
    dropout: float = 0.1
    time_scale: float = 10.0  # seconds -> embedding "position" units (0.1 s resolution)


@dataclass
class LoraSpec(SpecMixin):
    """LoRA on the language model only (peft). ``target_modules`` None = all attention and MLP projections."""

    enabled: bool = True
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: list[str] | None = None


DEFAULT_LORA_TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]


class AffectLLMConfig(PretrainedConfig):
    """Composite config: ``vision_config``, ``audio_config``, ``whisper_config`` (each optional),
    ``projector_config``, ``text_config`` (any causal LM config) or ``text_model`` (its id/path), ``lora_config``;
    ``placeholder_token_ids``, ``weights_included`` and ``trained`` declare what a checkpoint holds.

    How the engine reads the model: ``prompt_style`` (None: our renderer; ``"affectgpt"``: a converted AffectGPT
    checkpoint's own user text), ``asr_model`` (the Whisper that transcribes when no Whisper tower is configured),
    ``generation_overrides`` (generation-config fields set on load, e.g. a converted checkpoint's decoding),
    ``anchor_labels`` (a report to the default question starts with the fused experts' top class)."""

    model_type = "affectllm"
    sub_configs = {"text_config": AutoConfig}

    def __init__(
        self,
        vision_config: dict | VisionTowerSpec | None = None,
        audio_config: dict | AudioTowerSpec | None = None,
        whisper_config: dict | WhisperTowerSpec | None = None,
        projector_config: dict | ProjectorSpec | None = None,
        text_config: dict | PretrainedConfig | None = None,
        text_model: str | None = None,
        lora_config: dict | LoraSpec | None = None,
        placeholder_tokens: dict[str, str] | None = None,
        use_cues: bool = True,
        placeholder_token_ids: dict[str, int] | None = None,
        weights_included: list[str] | None = None,
        trained: bool = False,
        prompt_style: str | None = None,
        asr_model: str | None = None,
        generation_overrides: dict[str, Any] | None = None,
        anchor_labels: bool = True,
        **kwargs: Any,
    ) -> None:
        self.vision_config = _spec_dict(VisionTowerSpec, vision_config)
        self.audio_config = _spec_dict(AudioTowerSpec, audio_config)
        self.whisper_config = _spec_dict(WhisperTowerSpec, whisper_config)
        self.projector_config = _spec_dict(ProjectorSpec, projector_config) or ProjectorSpec().to_dict()
        self.lora_config = _spec_dict(LoraSpec, lora_config) or LoraSpec(enabled=False).to_dict()
        if isinstance(text_config, dict):
            text_config = dict(text_config)
            model_type = text_config.pop("model_type", None)
            if model_type is None:
                raise ValueError("text_config needs a 'model_type' (e.g. 'qwen2', 'llama', 'gemma3_text')")
            text_config = AutoConfig.for_model(model_type, **text_config)
        self.text_config = text_config
        self.text_model = text_model
        self.placeholder_tokens = dict(placeholder_tokens or DEFAULT_PLACEHOLDERS)
        self.use_cues = use_cues  # put expert cues (transcript, face expression, prosody) in the prompt
        # the declared contract of a checkpoint (written by save_pretrained / the trainer, read by from_pretrained):
        # the tokenizer ids of the placeholder tokens, the whole components stored in the weights file, and
        # whether the projector + LoRA were trained (False: freshly initialised, output not yet meaningful)
        self.placeholder_token_ids = dict(placeholder_token_ids or {})
        self.weights_included = list(weights_included or [])
        self.trained = bool(trained)
        self.prompt_style = prompt_style
        self.asr_model = asr_model
        self.generation_overrides = dict(generation_overrides) if generation_overrides is not None else None
        self.anchor_labels = bool(anchor_labels)
        # the language model ties its own embeddings; the composite model has nothing to tie
        kwargs["tie_word_embeddings"] = False
        super().__init__(**kwargs)

    # --- serialisation: never a machine path ------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return _without_load_paths(super().to_dict(), self.text_model)

    def to_diff_dict(self) -> dict[str, Any]:
        d = _without_load_paths(super().to_diff_dict(), self.text_model)
        for key, default in OMITTED_AT_DEFAULT.items():
            if key in d and d[key] == default:
                del d[key]
        return d

    # --- typed views -------------------------------------------------------------------------------
    def spec(self, modality: str) -> VisionTowerSpec | AudioTowerSpec | WhisperTowerSpec | None:
        cls = {"vision": VisionTowerSpec, "audio": AudioTowerSpec, "whisper": WhisperTowerSpec}[modality]
        return cls.from_any(getattr(self, f"{modality}_config"))

    @property
    def projector(self) -> ProjectorSpec:
        return ProjectorSpec.from_any(self.projector_config)

    @property
    def lora(self) -> LoraSpec:
        return LoraSpec.from_any(self.lora_config)

    @property
    def modalities(self) -> list[str]:
        """The modalities whose tower is configured, in the fixed order vision, audio, whisper."""
        return [m for m in MODALITIES if getattr(self, f"{m}_config") is not None]

    def num_tokens(self, modality: str) -> int:
        """How many LLM tokens one item of ``modality`` becomes (== placeholder expansion length)."""
        proj = self.projector
        if proj.type in ("attention_pool", "affectgpt"):
            return 1
        return int(proj.num_queries[modality])


def _without_load_paths(d: dict[str, Any], text_model: str | None) -> dict[str, Any]:
    """transformers records in ``_name_or_path`` the folder a (sub-)config was loaded from, e.g. the converted LLM
    under the user's cache: a machine path that must not travel in a saved checkpoint. It is replaced by the
    language model's id (``text_model``) or dropped; loading never reads it."""
    if _is_machine_path(d.get("_name_or_path")):
        del d["_name_or_path"]
    tc = d.get("text_config")
    if isinstance(tc, dict) and _is_machine_path(tc.get("_name_or_path")):
        if text_model and not _is_machine_path(text_model):
            tc["_name_or_path"] = text_model  # e.g. "registry:gemma-3-270m"
        else:
            del tc["_name_or_path"]
    return d


def _is_machine_path(value: Any) -> bool:
    """An absolute POSIX / home / UNC / Windows-drive path (a hub id or registry name is not)."""
    if not isinstance(value, str):
        return False
    return value.startswith(("/", "~", "\\")) or (len(value) > 2 and value[1] == ":" and value[2] in "\\/")


def _spec_dict(cls: type[SpecMixin], value: Any) -> dict[str, Any] | None:
    spec = cls.from_any(value)
    return None if spec is None else spec.to_dict()


AutoConfig.register("affectllm", AffectLLMConfig, exist_ok=True)
