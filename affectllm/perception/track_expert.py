"""A shipped face-expression network applied to the main face of a clip: crop each frame's box, then predict.

``ExpressionExpert`` (mini-Xception, 48×48) and ``FaceApiExpert`` (face-api.js, 112×112) differ only in their
crop size and margin here; the crop recipe is each network's own (the one its weights were tuned with).
"""

from __future__ import annotations

import numpy as np

from affectllm.media.video import Frames
from affectllm.perception.faces import FaceTrack, crop_box
from affectllm.perception.shipped import ShippedExpert


class TrackExpert(ShippedExpert):
    """``ShippedExpert`` + crops of a ``FaceTrack``: square crops of the detector box at the network's
    ``input_size``, widened by its ``crop_margin``, bilinear."""

    @classmethod
    def crops(cls, frames: Frames, track: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
        """The main face's crops in each frame where it was found: (``[T', S, S, 3]`` uint8, indices ``[T']``)."""
        idx = track.frame_indices
        size, margin = cls.shipped.input_size, cls.shipped.crop_margin
        crops = [crop_box(frames.images[i], track.boxes[i], size, margin, "linear") for i in idx]
        if not crops:
            return np.zeros((0, size, size, 3), dtype=np.uint8), idx
        return np.stack(crops), idx

    def predict_track(self, frames: Frames, track: FaceTrack) -> tuple[np.ndarray, np.ndarray]:
        """Probabilities for the main face in each frame where it was found: (``[T', 7]``, indices ``[T']``)."""
        crops, idx = self.crops(frames, track)
        return self.predict(crops), idx
