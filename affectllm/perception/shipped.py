"""What the shipped face networks share: the class order, the frozen-network base, TF/Keras layer semantics.

``expression`` (mini-Xception) and ``faceapi_expression`` (face-api.js) both build on ``ShippedExpert``, each
declaring its network, input recipe and weights in one ``ShippedNetwork``; the TF "same" padding, separable conv
and max-pool below also serve ``faceapi_detector``. It lives apart so no network module imports another (and
none imports ``faces``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from affectllm.utils.paths import asset_path

EXPRESSION_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def keras_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF/Keras "same" padding (before, after) along one axis: the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def tf_same_pad2d(x: torch.Tensor, kernel: int, stride: int) -> torch.Tensor:
    """Pad ``[N, C, H, W]`` with zeros the way TF "same" does (the odd pixel goes bottom/right)."""
    top, bottom = keras_same_pad(x.shape[-2], kernel, stride)
    left, right = keras_same_pad(x.shape[-1], kernel, stride)
    return F.pad(x, (left, right, top, bottom))


class TFSeparableConv(nn.Module):
    """tf.separableConv2d (3×3 depthwise carrying the stride, then 1×1 pointwise) + bias, "same" padding."""

    def __init__(self, cin: int, cout: int, stride: int = 1) -> None:
        super().__init__()
        self.stride = stride
        self.depthwise = nn.Conv2d(cin, cin, 3, stride=stride, groups=cin, bias=False)
        self.pointwise = nn.Conv2d(cin, cout, 1, bias=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, Cin, H, W] -> [N, Cout, ceil(H/s), ceil(W/s)]
        return self.pointwise(self.depthwise(tf_same_pad2d(x, 3, self.stride)))


class KerasSameMaxPool2d(nn.Module):
    """MaxPool2d with Keras "same" padding (asymmetric, padded cells never win)."""

    def __init__(self, kernel: int = 3, stride: int = 2) -> None:
        super().__init__()
        self.kernel, self.stride = kernel, stride

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # [N, C, H, W] -> [N, C, ceil(H/s), ceil(W/s)]
        top, bottom = keras_same_pad(x.shape[-2], self.kernel, self.stride)
        left, right = keras_same_pad(x.shape[-1], self.kernel, self.stride)
        x = F.pad(x, (left, right, top, bottom), value=float("-inf"))
        return F.max_pool2d(x, self.kernel, self.stride)


@dataclass(frozen=True)
class ShippedNetwork:
    """One shipped expert's declaration: its network, how crops become its input, and its weights file."""

    network: type[nn.Module]
    prepare: Callable[[np.ndarray], torch.Tensor]  # crops [N, H, W, 3] uint8 -> the network's input tensor
    input_size: int  # the side of the square crops it reads
    weights_file: str  # under affectllm/assets/
    weights_name: str  # for messages
    convert_script: str  # re-creates the shipped file from a source checkout
    crop_margin: float = 0.0  # widening of the detector box before cropping
    columns: list[int] | None = None  # the network's output columns in ``EXPRESSION_CLASSES`` order (None: same)

    def weights_path(self) -> Path:
        return asset_path(self.weights_file)


class ShippedExpert:
    """A frozen face-expression network whose converted weights ship as safetensors in the package."""

    classes: tuple[str, ...] = EXPRESSION_CLASSES
    shipped: ShippedNetwork

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)

    @classmethod
    def load(cls, device: str | torch.device = "cpu", weights: str | Path | None = None):
        """Build the expert from the shipped safetensors (or ``weights``)."""
        from safetensors.torch import load_file

        net = cls.shipped
        path = Path(weights) if weights is not None else net.weights_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {net.weights_name} weights are missing; reinstall affectllm or run "
                                    f"`python {net.convert_script}` from a source checkout")
        model = net.network()
        model.load_state_dict(load_file(str(path)), strict=True)
        return cls(model, device)

    @torch.inference_mode()
    def logits(self, crops_rgb: np.ndarray) -> torch.Tensor:
        """Pre-softmax scores ``[N, 7]`` in ``EXPRESSION_CLASSES`` order."""
        if len(crops_rgb) == 0:
            return torch.zeros(0, len(self.classes))
        columns = self.shipped.columns
        out = self.model(self.shipped.prepare(crops_rgb).to(self.device)).float().cpu()
        return out if columns is None else out[:, columns]

    def predict(self, crops_rgb: np.ndarray) -> np.ndarray:
        """Class probabilities ``[N, 7]`` (float32, rows sum to 1) in ``EXPRESSION_CLASSES`` order."""
        return torch.softmax(self.logits(crops_rgb), dim=-1).numpy()
