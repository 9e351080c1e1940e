"""Second face detector: face-api's Tiny Face Detector (vladmandic/face-api 1.7.15, MIT) in PyTorch.

A Tiny-YOLOv2 with depthwise-separable convolutions (face-api's ``TinyFaceDetector`` = ``TinyYolov2Base`` with
``withSeparableConvs``, ``isFirstLayerConv2d``, filter sizes 3-16-32-64-128-256-512). Its batch norms are already
folded into each conv's bias in the TFJS weights. Read from face-api's source (``src/tinyYolov2``,
``src/tinyFaceDetector``, ``src/dom/NetInput.ts``):

- input: the RGB image zero-padded at the bottom/right to a square (``padToSquare``, not centred), resized to
  ``input_size`` (a multiple of 32; 416 default) with TF's legacy bilinear (no half-pixel centres), minus the
  mean RGB (117.001, 114.697, 97.404), divided by 255;
- network: conv0 3×3 "valid" + bias, leaky 0.1 → maxpool 2/2 "same" → [separable 3×3 (pad 1) + bias, leaky 0.1
  → maxpool] for 32, 64, 128, 256 → separable 512 → maxpool 2/1 "same" → 1×1 conv to 5 anchors × 5 values;
  416 → 414 → 207 → 104 → 52 → 26 → 13 cells (608 → 19);
- decoding per cell and anchor: score ``sigmoid(t_s)``, centre ``(col + sigmoid(t_x)) / cells``, size
  ``exp(t_w) * anchor_w / cells``, each times ``input_size / resized side`` to undo the padding, then NMS at
  IoU 0.4 and boxes clipped at the image borders (face-api's ``clipAtImageBorders``, floored).

``TinyFaceDetector`` implements ``faces.FaceDetector``: ``Box.score`` is face-api's detection score in (0, 1].
Parity with face-api itself (node, TFJS cpu backend, ``scripts/make_faceapi_detector_fixture.py``): 10 faces in
3 photos, max |Δbox| 2.6e-5 px, max |Δscore| 8.8e-7 (``tests/fixtures/faceapi_tiny_face_detector.json``).

Its boxes sit lower and larger than the Haar cascade's (they span brows to chin, Haar's forehead to mouth).
The expression experts and ``reliability.FACE_MIN_SIZE`` were tuned on Haar boxes, so by default
(``haar_aligned``) each box is mapped to the square Haar would draw: side ``HAAR_SCALE * max(w, h)``, centre
moved up by ``-HAAR_SHIFT_Y * max(w, h)``, the medians over 58 faces both detectors found (IoU > 0.3) in the
shared photos, the RAVDESS clip and the TV clips (``bench/face_detection.py --crops`` measures it). ``raw`` is
face-api's output untouched.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from affectllm.perception.face_box import Box, check_rgb
from affectllm.perception.shipped import KerasSameMaxPool2d, TFSeparableConv
from affectllm.utils.paths import asset_path

WEIGHTS_FILE = "faceapi_tiny_face_detector.safetensors"
MEAN_RGB = (117.001, 114.697, 97.404)
ANCHORS = ((1.603231, 2.094468), (6.041143, 7.080126), (2.882459, 3.518061), (4.266906, 5.178857),
           (9.041765, 10.66308))  # (width, height) in cells
IOU_THRESHOLD = 0.4
SCORE_THRESHOLD = 0.5  # face-api's TinyFaceDetectorOptions default
INPUT_SIZE = 416
CHANNELS = (16, 32, 64, 128, 256, 512)
LEAK = 0.1
HAAR_SCALE = 0.86  # Haar side / max(tiny w, h), median of 58 paired faces
HAAR_SHIFT_Y = -0.152  # (Haar centre y - tiny centre y) / max(tiny w, h), same pairs (x shift: -0.009, ignored)


class TinyFaceDetectorNet(nn.Module):
    """[N, 3, S, S] normalised RGB (S a multiple of 32) -> [N, 25, S/32, S/32] raw box encodings (5 anchors × 5)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv0 = nn.Conv2d(3, CHANNELS[0], 3, bias=True)  # "valid"
        for i in range(1, 6):
            setattr(self, f"conv{i}", TFSeparableConv(CHANNELS[i - 1], CHANNELS[i]))
        self.conv8 = nn.Conv2d(CHANNELS[-1], len(ANCHORS) * 5, 1, bias=True)
        self.pool = KerasSameMaxPool2d(2, 2)
        self.pool_last = KerasSameMaxPool2d(2, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool(F.leaky_relu(self.conv0(x), LEAK))  # [N, 16, S/2 - 1, ...] (416: 414 -> 207)
        for i in range(1, 5):  # 207 -> 104 -> 52 -> 26 -> 13
            x = self.pool(F.leaky_relu(getattr(self, f"conv{i}")(x), LEAK))
        x = self.pool_last(F.leaky_relu(self.conv5(x), LEAK))  # [N, 512, S/32, S/32]
        return self.conv8(x)


def default_weights_path() -> Path:
    """The converted weights shipped inside the package."""
    return asset_path(WEIGHTS_FILE)


def tf_resize_bilinear(image: np.ndarray, size: int, side: int | None = None) -> np.ndarray:
    """``tf.image.resizeBilinear(image, [size, size], alignCorners=false, halfPixelCenters=false)``. [S, S, C] f32

    ``side``: resize the image as if zero-padded at the bottom/right to ``side × side`` first (face-api's
    ``padToSquare``), without building the padded copy."""
    h, w = image.shape[:2]
    side_h, side_w = (side, side) if side is not None else (h, w)
    padded = np.pad(image, ((0, 1), (0, 1), (0, 0)))  # one zero row / column stands for all the padding

    def axis(n: int, real: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        src = np.arange(size, dtype=np.float64) * (n / size)
        lo = np.floor(src).astype(np.int64)
        hi = np.minimum(lo + 1, n - 1)
        frac = (src - lo).astype(np.float32)
        return np.where(lo < real, lo, real), np.where(hi < real, hi, real), frac  # padding -> the zero row

    y0, y1, fy = axis(side_h, h)
    x0, x1, fx = axis(side_w, w)
    top, bottom = padded[y0].astype(np.float32), padded[y1].astype(np.float32)  # [S, W + 1, C]
    rows = top + (bottom - top) * fy[:, None, None]
    left, right = rows[:, x0], rows[:, x1]  # [S, S, C]
    return left + (right - left) * fx[None, :, None]


def preprocess(image_rgb: np.ndarray, input_size: int = INPUT_SIZE) -> tuple[torch.Tensor, tuple[int, int]]:
    """One ``[H, W, 3]`` uint8 RGB image -> (``[1, 3, S, S]`` network input, (resized width, resized height)).

    As face-api's ``NetInput.toBatchTensor(S, isCenterInputs=false)`` (zeros appended bottom / right to a square,
    then resized) + ``normalize`` + ``div(255)``.
    """
    h, w = image_rgb.shape[:2]
    side = max(h, w)
    x = tf_resize_bilinear(image_rgb, input_size, side)  # [S, S, 3]
    x = (x - np.asarray(MEAN_RGB, dtype=np.float32)) / np.float32(255.0)
    scale = input_size / side
    resized = (int(np.round(w * scale)), int(np.round(h * scale)))  # computeReshapedDimensions
    return torch.from_numpy(x).permute(2, 0, 1)[None].contiguous(), resized


def decode(out: torch.Tensor, resized: tuple[int, int], input_size: int, score_threshold: float
           ) -> tuple[torch.Tensor, torch.Tensor]:
    """One image's ``[25, C, C]`` encodings -> (boxes ``[K, 4]`` x0 y0 x1 y1 relative to the image, scores ``[K]``)."""
    cells = out.shape[-1]
    enc = out.permute(1, 2, 0).reshape(cells, cells, len(ANCHORS), 5).double()  # [row, col, anchor, (x y w h s)]
    score = torch.sigmoid(enc[..., 4])
    keep = score > score_threshold
    row, col, anchor = keep.nonzero(as_tuple=True)
    e = enc[keep]  # [K, 5]
    anchors = torch.tensor(ANCHORS, dtype=torch.float64)[anchor]  # [K, 2]
    corr_x, corr_y = input_size / resized[0], input_size / resized[1]
    cx = (col + torch.sigmoid(e[:, 0])) / cells * corr_x
    cy = (row + torch.sigmoid(e[:, 1])) / cells * corr_y
    bw = torch.exp(e[:, 2]) * anchors[:, 0] / cells * corr_x
    bh = torch.exp(e[:, 3]) * anchors[:, 1] / cells * corr_y
    x0, y0 = cx - bw / 2, cy - bh / 2
    return torch.stack([x0, y0, x0 + bw, y0 + bh], 1), score[keep]


class TinyFaceDetector:
    """face-api's Tiny Face Detector as a ``faces.FaceDetector``: boxes in pixels, largest first, score in (0, 1]."""

    def __init__(self, model: TinyFaceDetectorNet, input_size: int = INPUT_SIZE,
                 score_threshold: float = SCORE_THRESHOLD, iou_threshold: float = IOU_THRESHOLD,
                 haar_aligned: bool = True) -> None:
        if input_size % 32:
            raise ValueError(f"input_size {input_size}: face-api's Tiny Face Detector needs a multiple of 32 "
                             "(416 or 608 are its usual sizes)")
        self.model = model.eval().requires_grad_(False)
        self.input_size = input_size
        self.score_threshold = score_threshold
        self.iou_threshold = iou_threshold
        self.haar_aligned = haar_aligned  # squares as Haar draws them (see the module docstring); else face-api's

    @classmethod
    def load(cls, weights: str | Path | None = None, **options: float | bool) -> TinyFaceDetector:
        """The detector from the shipped safetensors (or ``weights``); ``options`` as in ``__init__``."""
        from safetensors.torch import load_file

        path = Path(weights) if weights is not None else default_weights_path()
        if not path.is_file():
            raise FileNotFoundError(f"{path}: face-api Tiny Face Detector weights are missing; reinstall affectllm "
                                    "or run `python scripts/convert_faceapi_detector.py` from a source checkout")
        model = TinyFaceDetectorNet()
        model.load_state_dict(load_file(str(path)), strict=True)
        return cls(model, **options)  # type: ignore[arg-type]

    @torch.inference_mode()
    def raw(self, image_rgb: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """face-api's detections before clipping: (boxes ``[K, 4]`` x0 y0 x1 y1 in pixels, float; scores ``[K]``),
        in NMS order (best first)."""
        from torchvision.ops import nms

        image_rgb = check_rgb(image_rgb)
        h, w = image_rgb.shape[:2]
        x, resized = preprocess(image_rgb, self.input_size)
        out = self.model(x)[0]  # [25, C, C]
        boxes, scores = decode(out, resized, self.input_size, self.score_threshold)
        boxes = boxes * torch.tensor([w, h, w, h], dtype=boxes.dtype)
        keep = nms(boxes, scores, self.iou_threshold)
        return boxes[keep].numpy(), scores[keep].numpy()

    def __call__(self, image_rgb: np.ndarray) -> list[Box]:
        """Faces in one ``[H, W, 3]`` uint8 RGB image, clipped at its borders, largest first ([] when none)."""
        image_rgb = check_rgb(image_rgb)
        h, w = image_rgb.shape[:2]
        found = []
        for (x0, y0, x1, y1), s in zip(*self.raw(image_rgb), strict=True):
            if self.haar_aligned:
                side = max(x1 - x0, y1 - y0)
                cx, cy, half = (x0 + x1) / 2, (y0 + y1) / 2 + HAAR_SHIFT_Y * side, HAAR_SCALE * side / 2
                x0, y0, x1, y1 = cx - half, cy - half, cx + half, cy + half
            cx0, cy0 = max(x0, 0.0), max(y0, 0.0)  # clipAtImageBorders, then floor
            bw, bh = int(np.floor(min(x1 - cx0, w - cx0))), int(np.floor(min(y1 - cy0, h - cy0)))
            if bw > 0 and bh > 0:
                found.append(Box(int(np.floor(cx0)), int(np.floor(cy0)), bw, bh, float(s)))
        return sorted(found, key=lambda b: -b.area)
