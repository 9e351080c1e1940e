"""Convert face-api's TFJS Tiny Face Detector (uint8-quantised) into PyTorch safetensors, once, and verify it.

    python scripts/convert_faceapi_detector.py [--tarball vladmandic-face-api-1.7.15.tgz] \
        [--out affectllm/assets/faceapi_tiny_face_detector.safetensors]

The sibling of ``convert_faceapi.py`` (the expression net), whose npm-pack, TFJS reader (dequantising
``q * scale + min`` per tensor) and numpy TF ops it imports. Reads ``model/tiny_face_detector_model-weights_manifest.json``
and its ``.bin`` from the tarball, maps every tensor to ``TinyFaceDetectorNet`` (none left over) and checks the
PyTorch network against an independent numpy interpreter of face-api's ``runMobilenet`` (NHWC) on random and
constant images. Writes the safetensors and the MIT licence beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from convert_faceapi import (  # noqa: E402  (the sibling script: its reader and numpy TF ops)
    PACKAGE,
    REPO,
    VERSION,
    np_conv,
    np_separable,
    npm_pack,
    read_tfjs,
    write_licence,
)

MANIFEST = "package/model/tiny_face_detector_model-weights_manifest.json"
DEFAULT_OUT = REPO / "affectllm" / "assets" / "faceapi_tiny_face_detector.safetensors"
SEPARABLE = [f"conv{i}" for i in range(1, 6)]


def to_torch_state(tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """TF layouts (HWIO conv, [H, W, C, 1] depthwise) -> TinyFaceDetectorNet's state dict; every tensor used."""
    state = {"conv0.weight": tf["conv0/filters"].transpose(3, 2, 0, 1), "conv0.bias": tf["conv0/bias"],
             "conv8.weight": tf["conv8/filters"].transpose(3, 2, 0, 1), "conv8.bias": tf["conv8/bias"]}
    used = {"conv0/filters", "conv0/bias", "conv8/filters", "conv8/bias"}
    for c in SEPARABLE:
        state[f"{c}.depthwise.weight"] = tf[f"{c}/depthwise_filter"].transpose(2, 3, 0, 1)  # [C, 1, 3, 3]
        state[f"{c}.pointwise.weight"] = tf[f"{c}/pointwise_filter"].transpose(3, 2, 0, 1)  # [Co, C, 1, 1]
        state[f"{c}.pointwise.bias"] = tf[f"{c}/bias"]
        used |= {f"{c}/depthwise_filter", f"{c}/pointwise_filter", f"{c}/bias"}
    leftover = set(tf) - used
    if leftover:
        raise SystemExit(f"unmapped face-api tensors: {sorted(leftover)}")
    return {k: np.ascontiguousarray(v) for k, v in state.items()}


# ---- independent numpy reference of face-api's runMobilenet (NHWC, from the TF op definitions) ----
def np_maxpool_same(x: np.ndarray, s: int) -> np.ndarray:
    """tf.maxPool(x [H, W, C], [2, 2], [s, s], 'same'): padded cells never win."""
    h, w = x.shape[:2]
    oh, ow = -(-h // s), -(-w // s)
    ph, pw = max((oh - 1) * s + 2 - h, 0), max((ow - 1) * s + 2 - w, 0)
    xp = np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)), constant_values=-np.inf)
    return np.max([xp[i:i + s * oh:s, j:j + s * ow:s] for i in range(2) for j in range(2)], axis=0)


def np_reference(tf: dict[str, np.ndarray], x: np.ndarray) -> np.ndarray:
    """face-api's forward pass for one normalised [S, S, 3] input: the [S/32, S/32, 25] box encodings."""
    leaky = lambda v: np.maximum(v, 0.1 * v)  # noqa: E731
    t = {k: v.astype(np.float64) for k, v in tf.items()}
    out = leaky(np_conv(x, t["conv0/filters"], 1)[1:-1, 1:-1] + t["conv0/bias"])  # "valid" = "same" less a ring
    for c in SEPARABLE:
        out = np_maxpool_same(out, 2)
        out = leaky(np_separable(out, t[f"{c}/depthwise_filter"], t[f"{c}/pointwise_filter"], t[f"{c}/bias"], 1))
    out = np_maxpool_same(out, 1)
    return out @ t["conv8/filters"][0, 0] + t["conv8/bias"]


def verify(tf: dict[str, np.ndarray], state: dict[str, np.ndarray], size: int = 128) -> float:
    """Max |encoding_torch - encoding_numpy| over a few images; raises if above 1e-3 (encodings are logits)."""
    import torch

    sys.path.insert(0, str(REPO))
    from affectllm.perception.faceapi_detector import MEAN_RGB, TinyFaceDetectorNet

    model = TinyFaceDetectorNet().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (size, size, 3)).astype(np.float64), np.full((size, size, 3), 128.0),
              np.clip(rng.normal(128, 60, (size, size, 3)), 0, 255)]
    worst = 0.0
    for img in images:
        x = (img - np.array(MEAN_RGB)) / 255.0
        ref = np_reference(tf, x)
        with torch.no_grad():
            ours = model(torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None])[0].permute(1, 2, 0)
        worst = max(worst, float(np.abs(ours.double().numpy() - ref).max()))
    if worst > 1e-3:
        raise SystemExit(f"PyTorch and numpy reference disagree: max |Δ encoding| = {worst:.2e}")
    return worst


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tarball", type=Path, help="an existing vladmandic-face-api-1.7.15.tgz (else npm pack)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as tmp:
        tarball = args.tarball or npm_pack(Path(tmp))
        digest = hashlib.sha256(tarball.read_bytes()).hexdigest()
        tf, licence = read_tfjs(tarball, MANIFEST)
    state = to_torch_state(tf)
    worst = verify(tf, state)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata={
        "source": f"npm {PACKAGE}@{VERSION} model/tiny_face_detector_model.bin",
        "tarball_sha256": digest,
        "verified_max_abs_encoding_diff": f"{worst:.3e}",
    })
    write_licence(args.out.parent, licence)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); max |Δ encoding| vs numpy reference {worst:.2e}")


if __name__ == "__main__":
    main()
