"""Second face-expression expert: face-api's FaceExpressionNet (vladmandic/face-api 1.7.15, MIT) in PyTorch.

The network is a small dense-connected depthwise-separable CNN: 112×112 RGB, minus the mean RGB
(122.782, 117.001, 104.298), divided by 255 → four "dense blocks" of four convolutions each (the first of each
block strides 2: 112 → 56 → 28 → 14 → 7; channels 32, 64, 128, 256; every later conv sees the sum of all
earlier outputs in its block) → 7×7 average pool → linear 256 → 7 → softmax. TF "same" padding is matched
exactly (stride-2 convs on even sizes pad only bottom/right). The TFJS weights (uint8 with per-tensor
scale/min) are converted once by ``scripts/convert_faceapi.py`` into ``assets/faceapi_expression.safetensors``.

``FaceApiExpert`` mirrors ``ExpressionExpert``: probabilities come out in ``EXPRESSION_CLASSES`` order
(angry, disgust, fear, happy, sad, surprise, neutral), so both experts can be averaged directly.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from affectllm.perception.shipped import EXPRESSION_CLASSES, ShippedNetwork, TFSeparableConv, tf_same_pad2d
from affectllm.perception.track_expert import TrackExpert
from affectllm.utils.paths import asset_path

INPUT_SIZE = 112
MEAN_RGB = (122.782, 117.001, 104.298)
FEATURE_DIM = 256
WEIGHTS_FILE = "faceapi_expression.safetensors"
FACEAPI_CLASSES: tuple[str, ...] = ("neutral", "happy", "sad", "angry", "fear", "disgust", "surprise")
# column i of our output = column _TO_OURS[i] of face-api's output
_TO_OURS = [FACEAPI_CLASSES.index(c) for c in EXPRESSION_CLASSES]
CROP_MARGIN = 0.0  # the detector box itself, as face-api's extractFaces hands it to the net


class TFConv(nn.Module):
    """tf.conv2d 3×3 with "same" padding + bias (the network's first layer only)."""

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        self.conv = nn.Conv2d(cin, cout, 3, stride=stride, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(tf_same_pad2d(x, 3, self.stride))


class DenseBlock4(nn.Module):
    """face-api ``denseBlock4``: conv0 halves the size; conv_k sees relu(sum of all earlier outputs)."""

    def __init__(self, cin: int, cout: int, first: bool = False) -> None:
        super().__init__()
        self.conv0 = TFConv(cin, cout, 2) if first else TFSeparableConv(cin, cout, 2)
        self.conv1 = TFSeparableConv(cout, cout)
        self.conv2 = TFSeparableConv(cout, cout)
        self.conv3 = TFSeparableConv(cout, cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, Cin, H, W] -> [N, Cout, H/2, W/2]
        out1 = F.relu(self.conv0(x))
        out2 = self.conv1(out1)
        out3 = self.conv2(F.relu(out1 + out2))
        out4 = self.conv3(F.relu(out1 + out2 + out3))
        return F.relu(out1 + out2 + out3 + out4)


class FaceExpressionNet(nn.Module):
    """[N, 3, 112, 112] normalised RGB -> 7 logits in face-api's class order (neutral, happy, ...)."""

    def __init__(self) -> None:
        super().__init__()
        self.dense0 = DenseBlock4(3, 32, first=True)
        self.dense1 = DenseBlock4(32, 64)
        self.dense2 = DenseBlock4(64, 128)
        self.dense3 = DenseBlock4(128, 256)
        self.fc = nn.Linear(FEATURE_DIM, len(FACEAPI_CLASSES))

    def features(self, x: torch.Tensor) -> torch.Tensor:  # [N, 3, 112, 112] -> [N, 256]
        for block in (self.dense0, self.dense1, self.dense2, self.dense3):  # 112 -> 56 -> 28 -> 14 -> 7
            x = block(x)
        return F.avg_pool2d(x, 7, 2).flatten(1)  # "valid" 7×7 pool of a 7×7 map: [N, 256, 1, 1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, 3, 112, 112] -> [N, 7]
        return self.fc(self.features(x))


def default_weights_path() -> Path:
    """The converted weights shipped inside the package."""
    return asset_path(WEIGHTS_FILE)


def preprocess(crops_rgb: np.ndarray) -> torch.Tensor:
    """``[N, H, W, 3]`` uint8 RGB face crops -> ``[N, 3, 112, 112]`` as face-api feeds its net.

    Non-square crops are zero-padded to a square, centred (face-api's ``padToSquare``), then bilinearly resized.
    """
    import cv2

    crops = np.asarray(crops_rgb)
    if crops.ndim != 4 or crops.shape[-1] != 3:
        raise ValueError(f"expected RGB face crops [N, H, W, 3], got shape {crops.shape}")
    out = np.empty((crops.shape[0], INPUT_SIZE, INPUT_SIZE, 3), dtype=np.float32)
    for i, crop in enumerate(crops):
        h, w = crop.shape[:2]
        if h != w:
            side = max(h, w)
            top, left = (side - h) // 2, (side - w) // 2
            crop = np.pad(crop, ((top, side - h - top), (left, side - w - left), (0, 0)))
        if crop.shape[0] != INPUT_SIZE:
            crop = cv2.resize(np.ascontiguousarray(crop), (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_LINEAR)
        out[i] = crop
    out = (out - np.asarray(MEAN_RGB, dtype=np.float32)) / 255.0
    return torch.from_numpy(out).permute(0, 3, 1, 2).contiguous()  # [N, 3, 112, 112]


class FaceApiExpert(TrackExpert):
    """Frozen face-api FaceExpressionNet with numpy-in / numpy-out helpers (same interface as ExpressionExpert)."""

    feature_dim: int = FEATURE_DIM
    name = "faceapi"
    shipped = ShippedNetwork(FaceExpressionNet, preprocess, INPUT_SIZE, WEIGHTS_FILE, "face-api expression",
                             "scripts/convert_faceapi.py", crop_margin=CROP_MARGIN, columns=_TO_OURS)
