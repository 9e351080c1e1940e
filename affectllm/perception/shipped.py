"""What the shipped face-expression experts share: their class order, the frozen-network base, Keras padding.

``expression`` (mini-Xception) and ``faceapi_expression`` (face-api.js) both build on ``ShippedExpert``; it lives
apart so neither expert imports the other.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

EXPRESSION_CLASSES: tuple[str, ...] = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")


def keras_same_pad(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TF/Keras "same" padding (before, after) along one axis: the odd pixel goes after."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


class ShippedExpert:
    """A frozen face-expression network whose converted weights ship as safetensors in the package."""

    classes: tuple[str, ...] = EXPRESSION_CLASSES
    network: type[nn.Module]
    weights_name: str  # the shipped file, for messages
    convert_script: str  # re-creates the shipped file from a source checkout
    columns: list[int] | None = None  # the network's output columns in ``EXPRESSION_CLASSES`` order (None: same)

    def __init__(self, model: nn.Module, device: str | torch.device = "cpu") -> None:
        self.device = torch.device(device)
        self.model = model.to(self.device).eval().requires_grad_(False)

    @staticmethod
    def weights_path() -> Path:
        raise NotImplementedError

    @classmethod
    def load(cls, device: str | torch.device = "cpu", weights: str | Path | None = None):
        """Build the expert from the shipped safetensors (or ``weights``)."""
        from safetensors.torch import load_file

        path = Path(weights) if weights is not None else cls.weights_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: {cls.weights_name} weights are missing; reinstall affectllm or run "
                                    f"`python {cls.convert_script}` from a source checkout")
        model = cls.network()
        model.load_state_dict(load_file(str(path)), strict=True)
        return cls(model, device)

    @staticmethod
    def prepare(crops_rgb: np.ndarray) -> torch.Tensor:
        """Crops ``[N, H, W, 3]`` uint8 -> the network's input tensor."""
        raise NotImplementedError

    @torch.inference_mode()
    def logits(self, crops_rgb: np.ndarray) -> torch.Tensor:
        """Pre-softmax scores ``[N, 7]`` in ``EXPRESSION_CLASSES`` order."""
        if len(crops_rgb) == 0:
            return torch.zeros(0, len(self.classes))
        out = self.model(self.prepare(crops_rgb).to(self.device)).float().cpu()
        return out if self.columns is None else out[:, self.columns]

    def predict(self, crops_rgb: np.ndarray) -> np.ndarray:
        """Class probabilities ``[N, 7]`` (float32, rows sum to 1) in ``EXPRESSION_CLASSES`` order."""
        return torch.softmax(self.logits(crops_rgb), dim=-1).numpy()
