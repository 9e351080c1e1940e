"""A face box and the detector protocol: what every face detector returns, apart from any one detector.

``faces`` (tracking, crops, the Haar cascade) and ``faceapi_detector`` (face-api's Tiny Face Detector) both use
these, so neither imports the other at module level.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np


@dataclass(frozen=True)
class Box:
    """A face box in pixels of the frame it was found in; ``score`` is the detector's confidence."""

    x: int
    y: int
    w: int
    h: int
    score: float = 1.0

    @property
    def area(self) -> int:
        return self.w * self.h

    @property
    def center(self) -> tuple[float, float]:
        return self.x + self.w / 2, self.y + self.h / 2

    def iou(self, other: Box) -> float:
        """Intersection over union of two boxes."""
        ix = max(0, min(self.x + self.w, other.x + other.w) - max(self.x, other.x))
        iy = max(0, min(self.y + self.h, other.y + other.h) - max(self.y, other.y))
        inter = ix * iy
        union = self.area + other.area - inter
        return inter / union if union > 0 else 0.0


class FaceDetector(Protocol):
    """Anything that maps an ``[H, W, 3]`` uint8 RGB image to face boxes."""

    def __call__(self, image_rgb: np.ndarray) -> list[Box]: ...


def check_rgb(image_rgb: np.ndarray) -> np.ndarray:
    """The image as an array, or ValueError naming the shape when it is not ``[H, W, 3]``."""
    image_rgb = np.asarray(image_rgb)
    if image_rgb.ndim != 3 or image_rgb.shape[2] != 3 or image_rgb.size == 0:
        raise ValueError(f"expected an [H, W, 3] RGB image, got shape {image_rgb.shape}")
    return image_rgb
