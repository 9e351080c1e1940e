"""Vision towers: open_clip (any model), HF CLIP / SigLIP, and the mini-Xception face-expression net.

Input: ``pixel_values [B, T, C, H, W]`` (frames or face crops, already normalised by the processor),
``pixel_mask [B, T]`` (True = real frame) and ``timestamps [B, T]`` seconds. Output: ``TowerOutput`` with
``features [B, T*N, D]`` where N is patch tokens per frame ("patch") or 1 ("pooled").
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import torch

from affectllm.model.towers.base import FrozenTower, TowerOutput
from affectllm.utils.paths import cache_dir


class VisionTower(FrozenTower):
    """Shared frame flattening; subclasses implement ``encode_frames(x [N, C, H, W]) -> [N, n, D]``."""

    def __init__(self, spec) -> None:
        super().__init__()
        self.spec = spec

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    @torch.no_grad()
    def forward(self, pixel_values: torch.Tensor, pixel_mask: torch.Tensor | None = None,
                timestamps: torch.Tensor | None = None) -> TowerOutput:
        b, t = pixel_values.shape[:2]
        if pixel_mask is None:
            pixel_mask = torch.ones(b, t, dtype=torch.bool, device=pixel_values.device)
        if timestamps is None:
            timestamps = torch.arange(t, device=pixel_values.device, dtype=torch.float32).expand(b, t)
        flat = pixel_values.flatten(0, 1).to(self.device, self.dtype)  # [B*T, C, H, W]
        keep = pixel_mask.flatten().to(flat.device)
        feats = torch.zeros(b * t, *self._token_shape(), device=flat.device, dtype=self.dtype)
        if keep.any():
            feats[keep] = self.encode_frames(flat[keep]).to(self.dtype)  # [N_real, n, D]
        n = feats.shape[1]
        features = feats.view(b, t * n, -1)  # [B, T*n, D]
        mask = pixel_mask.to(flat.device).repeat_interleave(n, dim=1)  # [B, T*n]
        times = timestamps.to(flat.device, torch.float32).repeat_interleave(n, dim=1)  # [B, T*n]
        return TowerOutput(features, mask, times)

    def _token_shape(self) -> tuple[int, int]:
        return (self.tokens_per_frame, self.output_dim)

    def fingerprint_payload(self) -> dict:
        return {"tower": type(self).__name__, **self.spec.to_dict()}


def import_open_clip():
    """open_clip, which only towers of type ``open_clip`` need: an ImportError naming the extra when missing."""
    try:
        import open_clip
    except ImportError as err:
        raise ImportError("this model's vision tower has type 'open_clip', which needs open_clip_torch: "
                          "pip install 'affectllm[clip]' (or give the tower type 'hf' with a CLIP/SigLIP id)") from err
    return open_clip


class OpenClipVisionTower(VisionTower):
    """open_clip's visual tower; patch tokens ``[N, n_patches(+cls), width]`` or pooled ``[N, 1, embed_dim]``."""

    def __init__(self, spec, load_weights: bool = True) -> None:
        super().__init__(spec)
        open_clip = import_open_clip()

        name = spec.model
        if spec.arch is not None:
            name = _register_open_clip_arch(spec.model or "affectllm-vision", spec.arch)
        if name is None:
            raise ValueError("vision tower (open_clip): give `model` (e.g. 'ViT-L-14') or an `arch` dict")
        pretrained = spec.pretrained if load_weights else None
        try:
            # the default device (cpu; meta inside `with torch.device("meta")` for --dry-run builds)
            model = open_clip.create_model(name, pretrained=pretrained, device=torch.get_default_device())
        except RuntimeError as e:
            raise RuntimeError(
                f"open_clip could not load {name!r} with pretrained={pretrained!r}: {e}. Offline, pass a local "
                "checkpoint path as `pretrained`, or drop `pretrained` for random weights (tests)."
            ) from e
        self.visual = model.visual
        self.visual.output_tokens = True
        self.source_loaded = pretrained is not None
        self.tokens_per_frame, self.output_dim = self._probe_shape()
        self.freeze()

    def _probe_shape(self) -> tuple[int, int]:
        size = self.spec.image_size
        with torch.no_grad():
            pooled, tokens = self.visual(torch.zeros(1, 3, size, size))
        if self.spec.tokens == "pooled":
            return 1, pooled.shape[-1]
        return tokens.shape[1], tokens.shape[-1]

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        pooled, tokens = self.visual(x)
        return pooled.unsqueeze(1) if self.spec.tokens == "pooled" else tokens


class HFVisionTower(VisionTower):
    """An HF CLIP / SigLIP vision model (``AutoModel``; the ``vision_model`` part of a dual encoder)."""

    def __init__(self, spec, load_weights: bool = True) -> None:
        super().__init__(spec)
        from transformers import AutoConfig, AutoModel

        if spec.model is not None and load_weights:
            model = AutoModel.from_pretrained(spec.model)
            self.source_loaded = True
        else:
            if spec.arch is None:
                raise ValueError("vision tower (hf): give `model` (id or path) or an `arch` config dict")
            arch = dict(spec.arch)
            model = AutoModel.from_config(AutoConfig.for_model(arch.pop("model_type"), **arch))
        self.vision = getattr(model, "vision_model", model)
        cfg = self.vision.config
        self.output_dim = cfg.hidden_size
        if spec.tokens == "projected":  # CLIP get_image_features: visual_projection(pooled) [N, projection_dim]
            self.projection = model.visual_projection
            self.output_dim = self.projection.out_features
        n_patches = (cfg.image_size // cfg.patch_size) ** 2
        self.tokens_per_frame = 1 if spec.tokens in ("pooled", "projected") else n_patches + _has_cls(cfg)
        self.freeze()

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        out = self.vision(pixel_values=x)
        if self.spec.tokens == "projected":
            return self.projection(out.pooler_output).unsqueeze(1)
        if self.spec.tokens == "pooled":
            return out.pooler_output.unsqueeze(1)
        return out.last_hidden_state


class FERVisionTower(VisionTower):
    """The mini-Xception face-expression network: its last feature map, pooled (1 token per face crop) or as
    a 3x3 grid (9 tokens, ``tokens="patch"``). Input: grey 48x48 crops scaled to [-1, 1]."""

    def __init__(self, spec, load_weights: bool = True) -> None:
        super().__init__(spec)
        from affectllm.perception.expression import ExpressionExpert, MiniXception

        self.net = ExpressionExpert.load().model if load_weights else MiniXception()
        self.source_loaded = load_weights
        self.tokens_per_frame = 1 if spec.tokens == "pooled" else 9
        self.output_dim = self.net.classifier.in_channels
        self.freeze()

    def encode_frames(self, x: torch.Tensor) -> torch.Tensor:
        fmap = self.net.feature_map(x)  # [N, 128, 3, 3]
        if self.spec.tokens == "pooled":
            return fmap.mean(dim=(2, 3)).unsqueeze(1)  # [N, 1, 128]
        return fmap.flatten(2).transpose(1, 2)  # [N, 9, 128]


def _has_cls(cfg) -> int:
    return 0 if "siglip" in type(cfg).__name__.lower() else 1


def _register_open_clip_arch(name: str, arch: dict) -> str:
    """open_clip builds models from registered JSON configs: register ``arch`` under a content-hashed name."""
    open_clip = import_open_clip()

    digest = hashlib.sha256(json.dumps(arch, sort_keys=True).encode()).hexdigest()[:12]
    reg_name = f"{name}-{digest}"
    folder = cache_dir("open_clip_configs")
    path = Path(folder) / f"{reg_name}.json"
    if not path.exists():
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(arch))
        tmp.replace(path)
    if reg_name not in open_clip.list_models():
        open_clip.add_model_config(path)
    return reg_name


def build_vision_tower(spec, load_weights: bool = True) -> VisionTower:
    kinds = {"open_clip": OpenClipVisionTower, "hf": HFVisionTower, "fer": FERVisionTower}
    if spec.type not in kinds:
        raise ValueError(f"vision tower type {spec.type!r} unknown; choose one of {sorted(kinds)}")
    return kinds[spec.type](spec, load_weights=load_weights)
