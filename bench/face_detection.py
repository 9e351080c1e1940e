"""Haar cascade beside face-api's Tiny Face Detector on the 8 real TV clips: how often a face is found, how fast.

    PYTHONPATH=. python bench/face_detection.py [--shared ../shared] [--num-frames 8] [--threads 1] \
        [--detectors haar,tiny416,tiny608] [--crops]

Frames are sampled as ``perceive`` samples them (``media.sampling.load_video_frames`` + ``select_frames``,
uniform, capped at 1280 px). The clips (``media/tv``, unlabelled) are read in place. Per clip and overall:
the share of sampled frames with at least one face, the share with the main face (``track_main_face``, what
the face experts see), faces per frame, the mean detector score, and the mean detector time per frame, every
detector on the same decoded frames in the same run. ``--threads`` pins torch's and OpenCV's thread counts
(both detectors alike) so the timing does not depend on what else the machine runs.

``--crops``: are the tiny detector's boxes usable where the expression experts expect Haar's? On every face both
find (IoU > 0.3; the shared photos, the RAVDESS clip and the TV frames), the median offset and size of Haar's box
relative to face-api's (what ``faceapi_detector.HAAR_SCALE`` / ``HAAR_SHIFT_Y`` were set from), and the face
experts' agreement (same top class, mean max |Δp|) between the Haar crop and the tiny crop, raw and Haar-aligned.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

from affectllm.media import Frames
from affectllm.media.sampling import load_video_frames, select_frames
from affectllm.paths import shared_dir
from affectllm.perception.faces import FaceDetector, HaarFaceDetector, track_main_face


def detectors(names: list[str]) -> dict[str, FaceDetector]:
    from affectllm.perception.faceapi_detector import TinyFaceDetector

    made: dict[str, FaceDetector] = {}
    for name in names:
        if name == "haar":
            made[name] = HaarFaceDetector()
        elif name.startswith("tiny"):
            made[name] = TinyFaceDetector.load(input_size=int(name[4:] or 416))
        else:
            raise SystemExit(f"--detectors: unknown detector {name!r}; use haar, tiny416, tiny608 (tinyN, N % 32 == 0)")
    return made


class _Timed:
    """Wraps a detector, keeping its per-call seconds and face counts (so tracking reuses the same calls)."""

    def __init__(self, detect: FaceDetector) -> None:
        self.detect, self.seconds, self.found, self.scores = detect, [], [], []

    def __call__(self, image: np.ndarray):  # type: ignore[no-untyped-def]
        t0 = time.perf_counter()
        boxes = self.detect(image)
        self.seconds.append(time.perf_counter() - t0)
        self.found.append(len(boxes))
        self.scores += [b.score for b in boxes]
        return boxes


def crop_agreement(shared: Path, tv_frames: list[np.ndarray]) -> None:
    """Print the Haar-vs-tiny box geometry and the face experts' agreement on both detectors' crops."""
    from affectllm.media import load_frames, load_image
    from affectllm.perception.expression import FaceExperts
    from affectllm.perception.faceapi_detector import TinyFaceDetector
    from affectllm.perception.faces import FaceTrack

    haar, raw, aligned = HaarFaceDetector(), TinyFaceDetector.load(haar_aligned=False), TinyFaceDetector.load()
    experts = FaceExperts.load()
    photos = [load_image(f) for f in sorted((shared / "media/faces").glob("*.jpg"))]
    photos += list(load_frames(shared / "media/ravdess/01-01-01-01-01-01-01.mp4", 8).images)

    def probs(image: np.ndarray, box) -> dict[str, np.ndarray]:  # type: ignore[no-untyped-def]
        pooled, per, _ = experts.predict_track(Frames(image[None], np.zeros(1)), FaceTrack([box], np.zeros(1)))
        return {"pooled": pooled[0], **{k: v[0] for k, v in per.items()}}

    geometry, agree = [], {"raw": [], "aligned": []}
    for source, images in (("photo", photos), ("tv", tv_frames)):
        for image in images:
            h_boxes, r_boxes, a_boxes = haar(image), raw(image), aligned(image)
            for hb in h_boxes:
                k = max(range(len(r_boxes)), key=lambda i: hb.iou(r_boxes[i]), default=None)
                if k is None or hb.iou(r_boxes[k]) <= 0.3 or len(a_boxes) != len(r_boxes):
                    continue
                rb = r_boxes[k]
                ab = min(a_boxes, key=lambda b: np.hypot(*np.subtract(b.center, hb.center)))
                side = max(rb.w, rb.h)
                geometry.append(((hb.center[0] - rb.center[0]) / side, (hb.center[1] - rb.center[1]) / side,
                                 hb.w / side))
                if source == "tv":
                    ph = probs(image, hb)
                    for name, box in (("raw", rb), ("aligned", ab)):
                        pt = probs(image, box)
                        agree[name].append({e: (ph[e].argmax() == pt[e].argmax(), np.abs(ph[e] - pt[e]).max())
                                            for e in ph})
    g = np.median(np.asarray(geometry), 0)
    print(f"\nbox geometry over {len(geometry)} faces both found (Haar vs face-api's raw box, medians): "
          f"dx/side {g[0]:+.3f}, dy/side {g[1]:+.3f}, Haar side / tiny side {g[2]:.3f}")
    print(f"face experts on the Haar crop vs the tiny crop, {len(agree['raw'])} TV faces both found "
          "(same top class / mean max |Δp|):")
    for name, rows in agree.items():
        cells = [f"{e} {np.mean([r[e][0] for r in rows]):.2f} / {np.mean([r[e][1] for r in rows]):.3f}"
                 for e in rows[0]] if rows else ["-"]
        print(f"  tiny {name:8s} " + "   ".join(cells))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=shared_dir())
    ap.add_argument("--num-frames", type=int, default=8, help="frames per clip (the vision tower's default is 8)")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads, for both detectors")
    ap.add_argument("--detectors", default="haar,tiny416,tiny608")
    ap.add_argument("--crops", action="store_true", help="also compare the face experts on both detectors' crops")
    args = ap.parse_args()
    if args.shared is None or not (args.shared / "media/tv").is_dir():
        raise SystemExit("media/tv not found; pass --shared PATH (the shared fixtures folder)")
    import cv2
    import torch

    torch.set_num_threads(args.threads)
    cv2.setNumThreads(args.threads)
    names = args.detectors.split(",")
    made = detectors(names)
    print("reproduce: PYTHONPATH=. python bench/face_detection.py --shared SHARED "
          f"--num-frames {args.num_frames} --threads {args.threads} --detectors {args.detectors}"
          + (" --crops" if args.crops else ""))
    clips = sorted((args.shared / "media/tv").glob("*.mp4"))
    sampling = {"num_frames": args.num_frames, "frame_sampling": "uniform"}
    totals = {n: {"frames": 0, "any": 0, "main": 0, "faces": 0, "seconds": [], "scores": []} for n in names}
    tv_frames: list[np.ndarray] = []
    header = f"{'clip':24s} {'size':>9s} " + " ".join(f"{n + ' face/main':>16s} {'ms':>6s}" for n in names)
    print(header)
    for clip in clips:
        images, ts = load_video_frames(clip, sampling, max_side=1280)
        images, ts = select_frames(images, ts, sampling)
        frames = Frames(images=images, timestamps=ts)
        tv_frames += list(images)
        row = f"{clip.stem:24s} {images.shape[2]:>4d}x{images.shape[1]:<4d} "
        for n in names:
            timed = _Timed(made[n])
            for image in images[:1]:  # warm-up (first-call allocations), not timed
                made[n](image)
            track = track_main_face(frames, detector=timed)
            t = totals[n]
            t["frames"] += len(frames)
            t["any"] += sum(k > 0 for k in timed.found)
            t["main"] += len(track.frame_indices)
            t["faces"] += sum(timed.found)
            t["seconds"] += timed.seconds
            t["scores"] += timed.scores
            share = f"{sum(k > 0 for k in timed.found)}/{len(frames)} {len(track.frame_indices)}/{len(frames)}"
            row += f"{share:>16s} {1000 * np.mean(timed.seconds):6.1f} "
        print(row)
    print("\noverall (frames with a face, frames with the main face, faces per frame, mean score, ms per frame):")
    for n in names:
        t = totals[n]
        mean_score = f"{np.mean(t['scores']):.3f}" if t["scores"] else "-"
        print(f"  {n:8s} any face {t['any']}/{t['frames']} = {t['any'] / t['frames']:.2f}   main face "
              f"{t['main']}/{t['frames']} = {t['main'] / t['frames']:.2f}   {t['faces'] / t['frames']:.2f} faces/frame"
              f"   score {mean_score}   {1000 * np.mean(t['seconds']):.1f} ms/frame ({args.threads} thread(s))")
    if args.crops:
        crop_agreement(args.shared, tv_frames)
    sys.stdout.flush()


if __name__ == "__main__":
    main()
