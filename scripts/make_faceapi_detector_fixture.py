"""Run face-api itself (node, TFJS cpu backend) on real images and write its detections as a parity fixture.

    python scripts/make_faceapi_detector_fixture.py [--shared ../shared] [--workdir DIR] \
        [--out tests/fixtures/faceapi_tiny_face_detector.json]

npm-installs ``@tensorflow/tfjs@4.22.0``, ``@tensorflow/tfjs-backend-wasm@4.22.0`` and ``@vladmandic/face-api@1.7.15``
into a temporary folder outside the repo (npm and node must be on PATH), runs ``detectAllFaces`` with
``TinyFaceDetectorOptions({inputSize, scoreThreshold: 0.5})`` on each image of ``IMAGES`` (paths under ``../shared``),
and stores face-api's boxes (pixels, unclipped) and scores beside ours and the max differences, so
``tests/perception/test_faceapi_detector.py`` can check the PyTorch port against face-api without node.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
IMAGES = [("media/faces/12_angry_men.jpg", 416), ("media/faces/solvay_conference.jpg", 608),
          ("media/faces/grace_hopper.jpg", 416)]
NODE_DEPS = ["@tensorflow/tfjs@4.22.0", "@tensorflow/tfjs-backend-wasm@4.22.0", "@vladmandic/face-api@1.7.15"]
DETECT_JS = r"""
const fs = require('fs');
const faceapi = require('@vladmandic/face-api/dist/face-api.node-wasm.js');
const tf = faceapi.tf;
async function main() {
  const [file, W, H, size] = process.argv.slice(2);
  await tf.setBackend('cpu'); await tf.ready();
  await faceapi.nets.tinyFaceDetector.loadFromDisk('node_modules/@vladmandic/face-api/model');
  const t = tf.tensor3d(Int32Array.from(fs.readFileSync(file)), [parseInt(H), parseInt(W), 3], 'int32');
  const opts = new faceapi.TinyFaceDetectorOptions({ inputSize: parseInt(size), scoreThreshold: 0.5 });
  const dets = await faceapi.detectAllFaces(t, opts);
  console.log(JSON.stringify({ backend: tf.getBackend(), version: faceapi.version,
    detections: dets.map((d) => ({ score: d.score, box: [d.box.x, d.box.y, d.box.width, d.box.height] })) }));
}
main();
"""


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    ap.add_argument("--workdir", type=Path, help="an existing folder with the node packages installed")
    ap.add_argument("--out", type=Path, default=REPO / "tests" / "fixtures" / "faceapi_tiny_face_detector.json")
    args = ap.parse_args()
    sys.path.insert(0, str(REPO))
    from affectllm.media import load_image
    from affectllm.perception.faceapi_detector import TinyFaceDetector

    with tempfile.TemporaryDirectory() as tmp:
        work = args.workdir or Path(tmp)
        if not (work / "node_modules" / "@vladmandic" / "face-api").is_dir():
            subprocess.run(["npm", "init", "-y"], cwd=work, check=True, capture_output=True)
            subprocess.run(["npm", "install", "--no-audit", "--no-fund", *NODE_DEPS], cwd=work, check=True)
        (work / "detect.js").write_text(DETECT_JS)
        cases, worst_box, worst_score = [], 0.0, 0.0
        for rel, size in IMAGES:
            image = load_image(args.shared / rel)  # [H, W, 3] uint8
            h, w = image.shape[:2]
            np.ascontiguousarray(image, np.uint8).tofile(work / "image.u8")
            run = subprocess.run(["node", "detect.js", "image.u8", str(w), str(h), str(size)], cwd=work,
                                 check=True, capture_output=True, text=True)
            theirs = json.loads(run.stdout.strip().splitlines()[-1])
            boxes, scores = TinyFaceDetector.load(input_size=size).raw(image)  # x0 y0 x1 y1
            ours = [{"score": float(s), "box": [float(b[0]), float(b[1]), float(b[2] - b[0]), float(b[3] - b[1])]}
                    for b, s in zip(boxes, scores, strict=True)]
            if len(ours) != len(theirs["detections"]):
                raise SystemExit(f"{rel}: face-api found {len(theirs['detections'])} faces, the port {len(ours)}")
            for a, b in zip(ours, theirs["detections"], strict=True):
                worst_box = max(worst_box, float(np.abs(np.subtract(a["box"], b["box"])).max()))
                worst_score = max(worst_score, abs(a["score"] - b["score"]))
            cases.append({"image": rel, "input_size": size, "faceapi": theirs["detections"], "ours": ours})
    fixture = {"faceapi_version": theirs["version"], "tfjs_backend": theirs["backend"], "box_format": "x y w h px",
               "max_abs_box_diff_px": worst_box, "max_abs_score_diff": worst_score, "cases": cases}
    args.out.write_text(json.dumps(fixture, indent=1) + "\n")
    print(f"wrote {args.out}: {sum(len(c['faceapi']) for c in cases)} faces in {len(cases)} images; "
          f"max |Δbox| {worst_box:.2e} px, max |Δscore| {worst_score:.2e}")


if __name__ == "__main__":
    main()
