"""Face detection (pluggable), the main face across sampled frames, and face crops.

The default detector is face-api's Tiny Face Detector (``faceapi_detector``, shipped weights): on the 8 real TV
clips it finds a face in 0.97 of the sampled frames, OpenCV's frontal Haar cascade in 0.61
(``bench/face_detection.py``). Haar is the fallback when the converted weights are missing, and can be chosen
with ``make_detector("haar")`` or ``AFFECTLLM_FACE_DETECTOR=haar``.

"No face found" is a normal result (an empty track) and is itself evidence for the report. The main face is
the track with the largest summed area over the sampled frames, i.e. large *and* persistent; detections are
linked into tracks by overlap with each track's last box.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np

from affectllm.media.video import Frames
from affectllm.perception.face_box import Box, FaceDetector, check_rgb

__all__ = ["Box", "FaceDetector", "FaceTrack", "HaarFaceDetector", "crop_box", "crop_faces", "default_detector",
           "detect_faces", "make_detector", "track_main_face"]


@lru_cache(maxsize=4)
def _cascade(path: str):  # type: ignore[no-untyped-def]
    import cv2

    cascade = cv2.CascadeClassifier(path)
    if cascade.empty():
        raise FileNotFoundError(
            f"{path}: OpenCV could not load this Haar cascade; install opencv-python-headless>=4.10,<5 "
            "(OpenCV 5 removed the cascades)"
        )
    return cascade


class HaarFaceDetector:
    """OpenCV's frontal-face Haar cascade on a grey, histogram-equalised, downscaled copy of the image."""

    def __init__(
        self,
        cascade_path: str | None = None,
        scale_factor: float = 1.1,
        min_neighbors: int = 5,
        min_size_frac: float = 0.05,
        work_side: int = 480,
    ) -> None:
        import cv2

        self.cascade_path = cascade_path or cv2.data.haarcascades + "haarcascade_frontalface_default.xml"
        self.scale_factor = scale_factor
        self.min_neighbors = min_neighbors
        self.min_size_frac = min_size_frac  # smallest face side, as a fraction of the image's shorter side
        self.work_side = work_side  # detection runs at most at this resolution (speed); boxes map back

    def __call__(self, image_rgb: np.ndarray) -> list[Box]:
        import cv2

        image_rgb = check_rgb(image_rgb)
        height, width = image_rgb.shape[:2]
        scale = min(1.0, self.work_side / max(height, width))
        grey = cv2.cvtColor(np.ascontiguousarray(image_rgb), cv2.COLOR_RGB2GRAY)  # [H, W]
        if scale < 1.0:
            grey = cv2.resize(grey, (round(width * scale), round(height * scale)), interpolation=cv2.INTER_AREA)
        grey = cv2.equalizeHist(grey)
        min_side = max(20, int(self.min_size_frac * min(grey.shape)))
        rects, _, weights = _cascade(self.cascade_path).detectMultiScale3(
            grey, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
            minSize=(min_side, min_side), outputRejectLevels=True,
        )
        boxes = [
            Box(round(x / scale), round(y / scale), round(w / scale), round(h / scale), float(s))
            for (x, y, w, h), s in zip(np.asarray(rects).reshape(-1, 4), np.asarray(weights).reshape(-1), strict=True)
        ]
        return sorted(boxes, key=lambda b: -b.area)


DETECTORS = ("auto", "tiny", "haar")
DETECTOR_ENV = "AFFECTLLM_FACE_DETECTOR"  # one of DETECTORS; unset means "auto"


@lru_cache(maxsize=4)
def make_detector(kind: str = "auto") -> FaceDetector:
    """"tiny": face-api's Tiny Face Detector (its shipped weights must exist); "haar": the OpenCV cascade;
    "auto": tiny when its weights are shipped, else Haar."""
    from affectllm.perception import faceapi_detector

    if kind not in DETECTORS:
        raise ValueError(f"face detector {kind!r}: use one of {', '.join(DETECTORS)} (e.g. {DETECTOR_ENV}=haar)")
    if kind == "haar" or (kind == "auto" and not faceapi_detector.default_weights_path().is_file()):
        return HaarFaceDetector()
    return faceapi_detector.TinyFaceDetector.load()


def default_detector() -> FaceDetector:
    """The detector ``detect_faces`` and ``track_main_face`` use when given none: ``$AFFECTLLM_FACE_DETECTOR``
    or "auto" (see ``make_detector``)."""
    return make_detector(os.environ.get(DETECTOR_ENV, "auto").strip().lower() or "auto")


def detect_faces(image_rgb: np.ndarray, detector: FaceDetector | None = None) -> list[Box]:
    """Faces in one ``[H, W, 3]`` uint8 RGB image, largest first (empty list when none)."""
    return list((detector or default_detector())(image_rgb))


@dataclass
class FaceTrack:
    """The main face's box in each sampled frame (None where it was not found)."""

    boxes: list[Box | None]
    timestamps: np.ndarray  # [T] seconds, as in the Frames it came from
    n_faces: list[int] = field(default_factory=list)  # faces detected per frame (all tracks)

    @property
    def found(self) -> bool:
        return any(b is not None for b in self.boxes)

    @property
    def frame_indices(self) -> np.ndarray:
        """Indices of frames where the main face is present. [T']"""
        return np.asarray([i for i, b in enumerate(self.boxes) if b is not None], dtype=np.int64)

    def __len__(self) -> int:
        return len(self.boxes)


def _linked(a: Box, b: Box, iou_threshold: float) -> bool:
    """Same face in two sampled frames: boxes overlap, or centres are close for the face size."""
    if a.iou(b) >= iou_threshold:
        return True
    (ax, ay), (bx, by) = a.center, b.center
    size = (np.sqrt(a.area) + np.sqrt(b.area)) / 2
    return bool(np.hypot(ax - bx, ay - by) < 0.5 * size and 0.5 < np.sqrt(a.area / max(b.area, 1)) < 2.0)


def track_main_face(frames: Frames, detector: FaceDetector | None = None, iou_threshold: float = 0.3) -> FaceTrack:
    """Detect faces in every frame, link them into tracks and keep the largest, most persistent one."""
    detect = detector or default_detector()
    n = len(frames)
    tracks: list[dict[int, Box]] = []  # frame index -> box
    counts: list[int] = []
    for i in range(n):
        found = list(detect(frames.images[i]))
        counts.append(len(found))
        taken: set[int] = set()
        for box in sorted(found, key=lambda b: -b.area):
            best, best_iou = None, -1.0
            for k, track in enumerate(tracks):
                if k in taken:
                    continue
                last = track[max(track)]
                if _linked(last, box, iou_threshold) and last.iou(box) > best_iou:
                    best, best_iou = k, last.iou(box)
            if best is None:
                tracks.append({i: box})
                taken.add(len(tracks) - 1)
            else:
                tracks[best][i] = box
                taken.add(best)
    if not tracks:
        return FaceTrack([None] * n, np.asarray(frames.timestamps), counts)
    main = max(tracks, key=lambda t: (sum(b.area for b in t.values()), len(t)))
    return FaceTrack([main.get(i) for i in range(n)], np.asarray(frames.timestamps), counts)


def crop_box(image: np.ndarray, box: Box, size: int, margin: float, interpolation: str = "auto") -> np.ndarray:
    """Square crop centred on ``box``, side ``max(w, h) * (1 + 2 * margin)``, zero-padded, resized. [S, S, ...]

    ``interpolation``: "auto" (area when shrinking, else bilinear), "area" or "linear".
    """
    import cv2

    cx, cy = box.center
    side = max(box.w, box.h) * (1.0 + 2.0 * margin)
    x0, y0 = int(round(cx - side / 2)), int(round(cy - side / 2))
    s = max(1, int(round(side)))
    h, w = image.shape[:2]
    pad = ((max(0, -y0), max(0, y0 + s - h)), (max(0, -x0), max(0, x0 + s - w)), (0, 0))
    patch = image[max(0, y0):min(h, y0 + s), max(0, x0):min(w, x0 + s)]
    if any(p for pair in pad[:2] for p in pair):
        patch = np.pad(patch, pad)
    if interpolation == "auto":
        interpolation = "area" if s > size else "linear"
    interp = {"area": cv2.INTER_AREA, "linear": cv2.INTER_LINEAR}[interpolation]
    return cv2.resize(np.ascontiguousarray(patch), (size, size), interpolation=interp)


def crop_faces(
    frames: Frames, track: FaceTrack, size: int = 224, margin: float = 0.1
) -> tuple[np.ndarray, np.ndarray]:
    """Crops of the main face: (``[T', size, size, 3]`` uint8 RGB, frame indices ``[T']``); T' may be 0."""
    idx = track.frame_indices
    crops = [crop_box(frames.images[i], track.boxes[i], size, margin) for i in idx]  # type: ignore[arg-type]
    if not crops:
        return np.zeros((0, size, size, 3), dtype=np.uint8), idx
    return np.stack(crops), idx
