"""Haar cascade beside face-api's Tiny Face Detector on the 8 real TV clips: how often a face is found, how fast.

    PYTHONPATH=. python bench/face_detection.py [--shared ../shared] [--num-frames 8] [--threads 1] \
        [--detectors haar,tiny416,tiny608]

Frames are sampled as ``perceive`` samples them (``media.sampling.load_video_frames`` + ``select_frames``,
uniform, capped at 1280 px). The clips (``media/tv``, unlabelled) are read in place. Per clip and overall:
the share of sampled frames with at least one face, the share with the main face (``track_main_face``, what
the face experts see), faces per frame, the mean detector score, and the mean detector time per frame, every
detector on the same decoded frames in the same run. ``--threads`` pins torch's and OpenCV's thread counts
(both detectors alike) so the timing does not depend on what else the machine runs.
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=shared_dir())
    ap.add_argument("--num-frames", type=int, default=8, help="frames per clip (the vision tower's default is 8)")
    ap.add_argument("--threads", type=int, default=1, help="torch and OpenCV threads, for both detectors")
    ap.add_argument("--detectors", default="haar,tiny416,tiny608")
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
          f"--num-frames {args.num_frames} --threads {args.threads} --detectors {args.detectors}")
    clips = sorted((args.shared / "media/tv").glob("*.mp4"))
    sampling = {"num_frames": args.num_frames, "frame_sampling": "uniform"}
    totals = {n: {"frames": 0, "any": 0, "main": 0, "faces": 0, "seconds": [], "scores": []} for n in names}
    header = f"{'clip':24s} {'size':>9s} " + " ".join(f"{n + ' face/main':>16s} {'ms':>6s}" for n in names)
    print(header)
    for clip in clips:
        images, ts = load_video_frames(clip, sampling, max_side=1280)
        images, ts = select_frames(images, ts, sampling)
        frames = Frames(images=images, timestamps=ts)
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
    sys.stdout.flush()


if __name__ == "__main__":
    main()
