"""AffectLLMForConditionalGeneration: frozen towers -> projector -> (LoRA-tuned) causal language model.

Data path (read ``__init__`` and ``forward`` top to bottom): the processor expanded each media item into
exactly ``num_tokens(m)`` placeholder tokens; ``forward`` embeds the text, encodes each modality with its frozen
tower, projects to LLM-sized tokens and writes them into the placeholder slots with ``masked_scatter``.

Persistence: ``save_pretrained`` writes the config and, as safetensors, only what cannot be rebuilt from a
named source: the projector, the LoRA weights, and any tower or LLM that was built from a config with random
weights (tests). ``self_contained=True`` writes the towers and the LLM too.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import torch
from torch import nn
from transformers import AutoModelForImageTextToText, GenerationConfig, GenerationMixin, PreTrainedModel

from affectllm.model.configuration_affectllm import MODALITIES, AffectLLMConfig
from affectllm.model.language_model import apply_lora, build_language_model, is_quantized
from affectllm.model.projector import build_projector
from affectllm.model.towers import TowerOutput, build_tower
from affectllm.utils.fingerprint import read_fingerprint, write_fingerprint

WEIGHTS_NAME = "model.safetensors"
# media inputs consumed only at prefill; generate() must not pass them again once the cache holds them
MEDIA_KWARGS = ("pixel_values", "pixel_mask", "video_timestamps", "input_values", "input_values_mask",
                "tower_outputs")


class AffectLLMPreTrainedModel(PreTrainedModel):
    config_class = AffectLLMConfig
    base_model_prefix = "affectllm"
    supports_gradient_checkpointing = True
    _supports_sdpa = True
    _supports_flash_attn = True
    _no_split_modules: list[str] = []

    def _init_weights(self, module: nn.Module) -> None:
        """Sub-modules initialise themselves (towers and LLM are loaded, the projector has its own init)."""


class AffectLLMForConditionalGeneration(AffectLLMPreTrainedModel, GenerationMixin):
    def __init__(self, config: AffectLLMConfig, load_weights: bool = True, dtype: torch.dtype | None = None,
                 quantization: str | None = None, llm_kwargs: dict[str, Any] | None = None) -> None:
        super().__init__(config)
        # step 0: frozen towers, one per configured modality (None where the modality is not configured)
        skip = set(config.weights_included)
        self.vision_tower = self._tower("vision", load_weights and "vision" not in skip)
        self.audio_tower = self._tower("audio", load_weights and "audio" not in skip)
        self.whisper_tower = self._tower("whisper", load_weights and "whisper" not in skip)
        # step 1: the language model (frozen; LoRA adapters below are its only trainable part)
        llm, self.llm_from_source = build_language_model(
            config, load_weights and "language_model" not in skip, dtype, quantization, llm_kwargs)
        llm.requires_grad_(False)
        if config.text_config is None or config.text_model is not None:
            config.text_config = llm.config
        self.quantized = is_quantized(quantization)
        self.quantization_kind = quantization if quantization not in (None, "none") else None
        llm_hidden = llm.config.get_text_config().hidden_size
        # step 2: the projector (trainable)
        dims = {m: t.output_dim for m in MODALITIES if (t := self.tower(m)) is not None}
        self.multi_modal_projector = build_projector(config.projector, dims, llm_hidden)
        # step 3: LoRA on the LLM only
        self.language_model = apply_lora(llm, config.lora, self.quantized) if config.lora.enabled else llm
        self.generation_config = _greedy_generation_config(llm)
        self.checkpoint_fingerprint: str | None = None  # sha256 of the folder it was loaded from (fingerprint.py)
        self.post_init()
        if dtype is not None and not self.quantized:
            self.to(dtype)

    def _tower(self, modality: str, load_weights: bool):
        spec = self.config.spec(modality)
        return None if spec is None else build_tower(modality, spec, load_weights=load_weights)

    @property
    def placeholder_ids(self) -> dict[str, int]:
        """modality -> placeholder token id (declared in the config; ``builder.bind`` sets it from the tokenizer)."""
        return self.config.placeholder_token_ids

    @property
    def trained(self) -> bool:
        """Whether the projector and LoRA were trained (the config's declared state, saved with the checkpoint)."""
        return bool(self.config.trained)

    def tower(self, modality: str):
        return getattr(self, f"{modality}_tower")

    # --- embeddings -------------------------------------------------------------------------------
    def base_language_model(self):
        """The causal LM under the peft wrapper (or the LM itself without LoRA)."""
        lm = self.language_model
        return lm.get_base_model() if hasattr(lm, "get_base_model") else lm

    def tie_weights(self, *args: Any, **kwargs: Any) -> None:
        """Only the language model has tied weights, and it ties them itself."""
        if hasattr(self, "language_model"):
            self.base_language_model().tie_weights()

    def get_input_embeddings(self) -> nn.Module:
        return self.language_model.get_input_embeddings()

    def set_input_embeddings(self, value: nn.Module) -> None:
        self.language_model.set_input_embeddings(value)

    def get_output_embeddings(self) -> nn.Module:
        return self.language_model.get_output_embeddings()

    @property
    def fingerprint(self) -> str:
        """Identifies towers + LLM (named by the config) + all bytes of the weights; part of evaluation caches and
        report metadata. A loaded checkpoint uses the fingerprint stored at save time (affectllm/utils/fingerprint.py);
        a model built in memory hashes its trainable tensors in full."""
        import hashlib

        from affectllm.utils.fingerprint import tensors_fingerprint

        weights = self.checkpoint_fingerprint or tensors_fingerprint(
            (n, p) for n, p in self.named_parameters() if p.requires_grad)
        config = json.dumps(self.config.to_diff_dict(), sort_keys=True, default=str)
        quant = getattr(self, "quantization_kind", None)  # a quantised load answers differently: its own id
        dtype = next(self.language_model.parameters()).dtype  # and so does one in another precision
        extra = (f"\0{quant}" if quant else "") + (f"\0{dtype}" if dtype != torch.float32 else "")
        return hashlib.sha256(f"{config}\0{weights}{extra}".encode()).hexdigest()[:16]

    # --- public feature API -----------------------------------------------------------------------
    def encode_media(self, pixel_values=None, pixel_mask=None, video_timestamps=None, input_values=None,
                     input_values_mask=None) -> dict[str, TowerOutput]:
        """Run the frozen towers; the result can be cached and passed back as ``tower_outputs``."""
        out: dict[str, TowerOutput] = {}
        if pixel_values is not None and self.vision_tower is not None:
            out["vision"] = self.vision_tower(pixel_values, pixel_mask, video_timestamps)
        if input_values is not None:
            if self.audio_tower is not None:
                out["audio"] = self.audio_tower(input_values, input_values_mask)
            if self.whisper_tower is not None:
                out["whisper"] = self.whisper_tower(input_values, input_values_mask)
        return out

    def get_video_features(self, pixel_values, pixel_mask=None, video_timestamps=None) -> torch.Tensor:
        """Frames or face crops [B, T, C, H, W] -> LLM tokens [B, n_vision, D_llm]."""
        return self.multi_modal_projector("vision", self.vision_tower(pixel_values, pixel_mask, video_timestamps))

    def get_audio_features(self, input_values, input_values_mask=None) -> torch.Tensor:
        """16 kHz audio [B, S] -> speech-SSL LLM tokens [B, n_audio, D_llm]."""
        return self.multi_modal_projector("audio", self.audio_tower(input_values, input_values_mask))

    def get_whisper_features(self, input_values, input_values_mask=None) -> torch.Tensor:
        """16 kHz audio [B, S] -> Whisper-encoder LLM tokens [B, n_whisper, D_llm]."""
        return self.multi_modal_projector("whisper", self.whisper_tower(input_values, input_values_mask))

    # --- forward ----------------------------------------------------------------------------------
    def forward(self, input_ids: torch.LongTensor | None = None, attention_mask: torch.Tensor | None = None,
                pixel_values: torch.Tensor | None = None, pixel_mask: torch.Tensor | None = None,
                video_timestamps: torch.Tensor | None = None, input_values: torch.Tensor | None = None,
                input_values_mask: torch.Tensor | None = None,
                tower_outputs: dict[str, TowerOutput] | None = None, inputs_embeds: torch.Tensor | None = None,
                labels: torch.LongTensor | None = None, logits_to_keep: int | torch.Tensor = 0, **kwargs: Any):
        if inputs_embeds is None:
            # step 1: embed the text; placeholder ids (outside the LLM vocabulary) are embedded as id 0
            placeholder = self._placeholder_mask(input_ids)  # [B, L]
            inputs_embeds = self.get_input_embeddings()(input_ids.masked_fill(placeholder, 0))  # [B, L, D]
            # step 2: frozen towers (or cached features) -> projector -> placeholder slots
            if tower_outputs is None:
                tower_outputs = self.encode_media(pixel_values, pixel_mask, video_timestamps, input_values,
                                                  input_values_mask)
            projected = self.multi_modal_projector.project_all(
                {m: out.to(inputs_embeds.device) for m, out in tower_outputs.items()})  # {group: [N, Q, D]}
            for group, tid in self.placeholder_ids.items():
                if group not in projected and bool((input_ids == tid).any()):
                    raise ValueError(f"the text holds {group} placeholders but the media give no {group} tokens "
                                     "(a batch mixing items with and without video or audio?)")
            for modality, feats in projected.items():
                slots = input_ids == self.placeholder_ids.get(modality, -1)  # [B, L]
                n_slots = int(slots.sum())
                if n_slots == 0:
                    continue
                if feats.shape[0] * feats.shape[1] != n_slots:
                    raise ValueError(
                        f"{modality}: the text holds {n_slots} placeholder tokens but {feats.shape[0]} media item(s) "
                        f"give {feats.shape[0] * feats.shape[1]}; build inputs with AffectLLMProcessor")
                inputs_embeds = inputs_embeds.masked_scatter(slots.unsqueeze(-1).expand_as(inputs_embeds),
                                                             feats.to(inputs_embeds.dtype))
            if labels is not None:
                labels = labels.masked_fill(placeholder, -100)
        # step 3: the language model (loss on answer tokens: labels are -100 elsewhere)
        if kwargs.get("position_ids") is None and attention_mask is not None and attention_mask.dim() == 2:
            # left padding: positions count real tokens only, so a batched row equals the same row alone
            positions = (attention_mask.long().cumsum(-1) - 1).clamp(min=0)  # [B, L_total]
            kwargs["position_ids"] = positions[:, -inputs_embeds.shape[1]:]
        if isinstance(logits_to_keep, torch.Tensor) or logits_to_keep:  # int 0 = all positions (the LM default)
            kwargs["logits_to_keep"] = logits_to_keep
        return self.language_model(inputs_embeds=inputs_embeds, attention_mask=attention_mask, labels=labels,
                                   **kwargs)

    def _placeholder_mask(self, input_ids: torch.Tensor) -> torch.Tensor:
        mask = torch.zeros_like(input_ids, dtype=torch.bool)
        for tid in self.placeholder_ids.values():
            mask |= input_ids == tid
        return mask

    def prepare_inputs_for_generation(self, *args, is_first_iteration: bool | None = False, **kwargs):
        media = {k: kwargs.pop(k) for k in MEDIA_KWARGS if k in kwargs}
        model_inputs = super().prepare_inputs_for_generation(*args, is_first_iteration=is_first_iteration, **kwargs)
        for k in MEDIA_KWARGS:
            model_inputs.pop(k, None)
        if is_first_iteration or not kwargs.get("use_cache", True):
            model_inputs.update(media)
        return model_inputs

    # --- gradient checkpointing: the LLM is the only deep trainable stack -------------------------
    def gradient_checkpointing_enable(self, gradient_checkpointing_kwargs: dict | None = None) -> None:
        kwargs = gradient_checkpointing_kwargs or {"use_reentrant": False}
        self.language_model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)

    def gradient_checkpointing_disable(self) -> None:
        self.language_model.gradient_checkpointing_disable()

    # --- inference speed: LoRA merged into the LLM's weights ----------------------------------------
    def lora_merged(self) -> bool:
        from peft.tuners.tuners_utils import BaseTunerLayer

        return any(isinstance(m, BaseTunerLayer) and m.merged for m in self.language_model.modules())

    def merge_lora(self) -> bool:
        """Fold the LoRA deltas into the LLM's weights (no LoRA compute per token); False when not possible.

        The LoRA tensors are kept, so an adapter checkpoint saves as before; a 4-bit LLM is left as it is.
        """
        if not self.config.lora.enabled or self.quantized or self.lora_merged():
            return False
        self.language_model.merge_adapter()
        return True

    # --- persistence ------------------------------------------------------------------------------
    def saved_parts(self, self_contained: bool = False) -> list[str]:
        """Which whole components go into the checkpoint (besides projector + LoRA, always saved)."""
        parts = [m for m in MODALITIES if (t := self.tower(m)) is not None and (self_contained or not t.source_loaded)]
        if self_contained or not self.llm_from_source:
            parts.append("language_model")
        return parts

    def checkpoint_state_dict(self, self_contained: bool = False,
                              full_state: dict[str, torch.Tensor] | None = None) -> dict[str, torch.Tensor]:
        """The tensors a checkpoint stores: projector, LoRA and the unsourced parts, tied weights once.

        ``full_state``: the whole model's state gathered elsewhere (FSDP: ``accelerator.get_state_dict``), used
        in place of this process's own tensors, which are only shards then; names and ties come from the model.
        """
        parts = self.saved_parts(self_contained)
        prefixes = tuple(f"{p}_tower." if p in MODALITIES else f"{p}." for p in parts)
        state, seen = {}, set()
        own = self.state_dict(keep_vars=full_state is not None)
        for name, tensor in own.items():
            keep = (name.startswith("multi_modal_projector.") or "lora_" in name or name.startswith(prefixes))
            mark = tensor.data_ptr() if full_state is None else id(tensor)  # a shard's storage says nothing of ties
            if not keep or mark in seen:  # tied weights are stored once
                continue
            seen.add(mark)
            if full_state is not None and name not in full_state:
                raise KeyError(f"{name}: missing from the gathered state dict (was it gathered from another model?)")
            src = tensor if full_state is None else full_state[name]
            state[name] = src.detach().contiguous().cpu()
        return state

    def save_pretrained(self, save_directory: str | os.PathLike, self_contained: bool = False,
                        state_dict: dict[str, torch.Tensor] | None = None, **kwargs: Any) -> None:
        """config.json + generation_config.json + model.safetensors (projector, LoRA, unsourced parts).

        ``state_dict``: the full model state gathered from sharded processes (FSDP), written instead of this
        process's tensors."""
        from safetensors.torch import save_file

        if self.quantized and self_contained:
            raise ValueError("self_contained=True cannot store a 4-bit LLM; load without quantization to export")
        out = Path(save_directory)
        out.mkdir(parents=True, exist_ok=True)
        self.config.weights_included = self.saved_parts(self_contained)
        self.config.save_pretrained(out)
        self.generation_config.save_pretrained(out)
        tmp = out / (WEIGHTS_NAME + ".tmp")
        # a merged LoRA (load(merge_lora=True)) is taken out of LLM weights that are saved, so it is not applied twice
        unmerge = "language_model" in self.config.weights_included and self.lora_merged()
        if unmerge:
            self.language_model.unmerge_adapter()
        try:
            save_file(self.checkpoint_state_dict(self_contained, state_dict), str(tmp), metadata={"format": "pt"})
        finally:
            if unmerge:
                self.language_model.merge_adapter()
        tmp.replace(out / WEIGHTS_NAME)
        write_fingerprint(out)  # all bytes hashed once, stored beside the weights (save_checkpoint redoes it last)

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path: str | os.PathLike, *args: Any, dtype=None,
                        quantization: str | None = None, device: str | torch.device | None = None,
                        config_override: AffectLLMConfig | None = None,
                        **kwargs: Any) -> AffectLLMForConditionalGeneration:
        """Rebuild towers and LLM from the config's sources, then load the saved weights."""
        from safetensors.torch import load_file

        folder = Path(pretrained_model_name_or_path)
        if not (folder / "config.json").exists():
            folder = _download_snapshot(str(pretrained_model_name_or_path))
        config = config_override or AffectLLMConfig.from_pretrained(folder)
        model = cls(config, dtype=dtype, quantization=quantization, **kwargs)
        state = load_file(str(folder / WEIGHTS_NAME))
        result = model.load_state_dict(state, strict=False)
        if result.unexpected_keys:
            raise ValueError(f"{folder / WEIGHTS_NAME}: {len(result.unexpected_keys)} weights do not fit this "
                             f"model (e.g. {result.unexpected_keys[:3]}); was it saved by another config?")
        model.tie_weights()
        model.checkpoint_fingerprint = read_fingerprint(folder)
        if device is not None and not model.quantized:
            model.to(device)
        model.eval()
        return model


def _greedy_generation_config(llm) -> GenerationConfig:
    gen = GenerationConfig.from_dict(llm.generation_config.to_dict()) if llm.generation_config else GenerationConfig()
    gen.do_sample = False
    gen.temperature = None
    gen.top_p = None
    gen.top_k = None
    return gen


def _download_snapshot(repo_id: str) -> Path:
    """A hub id: fetch the (small) checkpoint folder with huggingface_hub; offline this fails clearly."""
    try:
        from huggingface_hub import snapshot_download

        return Path(snapshot_download(repo_id))
    except Exception as e:  # noqa: BLE001
        raise FileNotFoundError(f"{repo_id}: not a local AffectLLM checkpoint folder (no config.json) and the hub "
                                f"could not provide it ({type(e).__name__}). Pass a folder written by "
                                "save_pretrained.") from e


AutoModelForImageTextToText.register(AffectLLMConfig, AffectLLMForConditionalGeneration, exist_ok=True)
