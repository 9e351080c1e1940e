"""Convert face-api's TFJS FaceExpressionNet (uint8-quantised) into PyTorch safetensors, once, and verify it.

    python scripts/convert_faceapi.py [--tarball vladmandic-face-api-1.7.15.tgz] \
        [--out affectllm/assets/faceapi_expression.safetensors]

Without ``--tarball`` it runs ``npm pack @vladmandic/face-api@1.7.15`` in a temporary folder (npm must be on
PATH). Reads ``model/face_expression_model-weights_manifest.json`` and its ``.bin`` shards from the tarball,
dequantises as TFJS does (``q * scale + min`` per tensor; unquantised tensors are little-endian float32), maps
every tensor to ``FaceExpressionNet`` (none left over) and checks the PyTorch model against an independent
numpy interpreter of the TF ops (NHWC, "same" padding from the TF definition) on random and constant images.
Writes the safetensors and the MIT licence (``FACEAPI_LICENSE.txt``) beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

import numpy as np

PACKAGE = "@vladmandic/face-api"
VERSION = "1.7.15"
MANIFEST = "package/model/face_expression_model-weights_manifest.json"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "affectllm" / "assets" / "faceapi_expression.safetensors"
LICENCE_FILE = "FACEAPI_LICENSE.txt"


def npm_pack(dest: Path) -> Path:
    """``npm pack @vladmandic/face-api@VERSION`` into ``dest``; the tarball's path."""
    subprocess.run(["npm", "pack", f"{PACKAGE}@{VERSION}"], cwd=dest, check=True, capture_output=True)
    tarballs = sorted(dest.glob(f"vladmandic-face-api-{VERSION}.tgz"))
    if not tarballs:
        raise SystemExit(f"{dest}: npm pack did not produce vladmandic-face-api-{VERSION}.tgz")
    return tarballs[0]


def read_tfjs(tarball: Path, manifest_path: str = MANIFEST) -> tuple[dict[str, np.ndarray], str]:
    """({tensor name: float32 array in TF layout}, licence text) from the npm tarball.

    ``manifest_path``: one of face-api's ``package/model/*-weights_manifest.json`` (default: the expression net's).
    """
    with tarfile.open(tarball) as tar:
        manifest = json.load(tar.extractfile(manifest_path))  # type: ignore[arg-type]
        licence = tar.extractfile("package/LICENSE").read().decode()  # type: ignore[union-attr]
        tensors: dict[str, np.ndarray] = {}
        for group in manifest:
            blob = b"".join(tar.extractfile(f"package/model/{p}").read() for p in group["paths"])  # type: ignore
            offset = 0
            for w in group["weights"]:
                n = int(np.prod(w["shape"]))
                quant = w.get("quantization")
                if quant:
                    if quant["dtype"] != "uint8":
                        raise SystemExit(f"{tarball}: {w['name']} uses {quant['dtype']} quantisation; expected uint8")
                    q = np.frombuffer(blob, np.uint8, n, offset).astype(np.float64)
                    value = q * quant["scale"] + quant["min"]
                    offset += n
                else:
                    if w["dtype"] != "float32":
                        raise SystemExit(f"{tarball}: {w['name']} has dtype {w['dtype']}; expected float32")
                    value = np.frombuffer(blob, "<f4", n, offset).astype(np.float64)
                    offset += 4 * n
                tensors[w["name"]] = value.astype(np.float32).reshape(w["shape"])
            if offset != len(blob):
                raise SystemExit(f"{tarball}: manifest accounts for {offset} bytes of {len(blob)}")
    return tensors, licence


def to_torch_state(tf: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """TF layouts (HWIO conv, [H, W, C, 1] depthwise, [in, out] dense) -> FaceExpressionNet's state dict."""
    state: dict[str, np.ndarray] = {}
    for b in range(4):
        for c in range(4):
            tf_p, pt_p = f"dense{b}/conv{c}", f"dense{b}.conv{c}"
            if b == 0 and c == 0:
                state[f"{pt_p}.conv.weight"] = tf[f"{tf_p}/filters"].transpose(3, 2, 0, 1)
                state[f"{pt_p}.conv.bias"] = tf[f"{tf_p}/bias"]
                continue
            state[f"{pt_p}.depthwise.weight"] = tf[f"{tf_p}/depthwise_filter"].transpose(2, 3, 0, 1)  # [C,1,3,3]
            state[f"{pt_p}.pointwise.weight"] = tf[f"{tf_p}/pointwise_filter"].transpose(3, 2, 0, 1)
            state[f"{pt_p}.pointwise.bias"] = tf[f"{tf_p}/bias"]
    state["fc.weight"] = tf["fc/weights"].T
    state["fc.bias"] = tf["fc/bias"]
    used = {f"dense{b}/conv{c}/{k}" for b in range(4) for c in range(4)
            for k in (("filters", "bias") if b == c == 0 else ("depthwise_filter", "pointwise_filter", "bias"))}
    leftover = set(tf) - used - {"fc/weights", "fc/bias"}
    if leftover:
        raise SystemExit(f"unmapped face-api tensors: {sorted(leftover)}")
    return {k: np.ascontiguousarray(v) for k, v in state.items()}


def write_licence(out_dir: Path, licence: str) -> Path:
    """``FACEAPI_LICENSE.txt`` beside the converted files: which files come from face-api, and its MIT text."""
    path = out_dir / LICENCE_FILE
    path.write_text(
        "The face-expression weights in faceapi_expression.safetensors (files model/face_expression_model*) and the\n"
        "face-detector weights in faceapi_tiny_face_detector.safetensors (files model/tiny_face_detector_model*)\n"
        f"are converted from the npm package {PACKAGE} (version {VERSION}; https://github.com/vladmandic/face-api),\n"
        "a fork of justadudewhohacks/face-api.js. They are distributed under:\n\n" + licence)
    return path


# ---- independent numpy reference (NHWC, written from the TF op definitions) ----
def _same_pad(x: np.ndarray, k: int, s: int) -> np.ndarray:
    h, w = x.shape[:2]
    ph = max((-(-h // s) - 1) * s + k - h, 0)
    pw = max((-(-w // s) - 1) * s + k - w, 0)
    return np.pad(x, ((ph // 2, ph - ph // 2), (pw // 2, pw - pw // 2), (0, 0)))


def np_conv(x: np.ndarray, hwio: np.ndarray, s: int) -> np.ndarray:
    """tf.conv2d(x [H, W, Ci], filters [3, 3, Ci, Co], s, 'same')."""
    xp = _same_pad(x, 3, s)
    oh, ow = -(-x.shape[0] // s), -(-x.shape[1] // s)
    out = np.zeros((oh, ow, hwio.shape[3]))
    for i in range(3):
        for j in range(3):
            out += xp[i:i + s * oh:s, j:j + s * ow:s] @ hwio[i, j]
    return out


def np_separable(x: np.ndarray, dw: np.ndarray, pw: np.ndarray, bias: np.ndarray, s: int) -> np.ndarray:
    """tf.separableConv2d(x, dw [3, 3, C, 1], pw [1, 1, C, Co], s, 'same') + bias."""
    xp = _same_pad(x, 3, s)
    oh, ow = -(-x.shape[0] // s), -(-x.shape[1] // s)
    depth = np.zeros((oh, ow, x.shape[2]))
    for i in range(3):
        for j in range(3):
            depth += xp[i:i + s * oh:s, j:j + s * ow:s] * dw[i, j, :, 0]
    return depth @ pw[0, 0] + bias


def np_reference(tf: dict[str, np.ndarray], image: np.ndarray) -> np.ndarray:
    """face-api's forward pass for one [112, 112, 3] RGB float image (0..255): 7 probabilities, face-api order."""
    relu = lambda v: np.maximum(v, 0.0)  # noqa: E731
    x = (image.astype(np.float64) - np.array([122.782, 117.001, 104.298])) / 255.0
    t = {k: v.astype(np.float64) for k, v in tf.items()}
    for b in range(4):
        p = f"dense{b}"

        def sep(c: int, v: np.ndarray, s: int = 1, p: str = p) -> np.ndarray:
            return np_separable(v, t[f"{p}/conv{c}/depthwise_filter"], t[f"{p}/conv{c}/pointwise_filter"],
                                t[f"{p}/conv{c}/bias"], s)

        out1 = relu(np_conv(x, t[f"{p}/conv0/filters"], 2) + t[f"{p}/conv0/bias"]) if b == 0 else relu(sep(0, x, 2))
        out2 = sep(1, out1)
        out3 = sep(2, relu(out1 + out2))
        out4 = sep(3, relu(out1 + out2 + out3))
        x = relu(out1 + out2 + out3 + out4)
    logits = x.mean(axis=(0, 1)) @ t["fc/weights"] + t["fc/bias"]  # the 7×7 valid average pool on a 7×7 map
    e = np.exp(logits - logits.max())
    return e / e.sum()


def verify(tf: dict[str, np.ndarray], state: dict[str, np.ndarray]) -> float:
    """Max |p_torch - p_numpy| over a few images; raises if above 1e-5."""
    import torch

    sys.path.insert(0, str(REPO))
    from affectllm.perception.faceapi_expression import MEAN_RGB, FaceExpressionNet

    model = FaceExpressionNet().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    rng = np.random.default_rng(0)
    images = [rng.integers(0, 256, (112, 112, 3)).astype(np.float64), np.full((112, 112, 3), 128.0),
              np.clip(rng.normal(128, 60, (112, 112, 3)), 0, 255)]
    worst = 0.0
    for img in images:
        ref = np_reference(tf, img)
        x = torch.from_numpy(((img - np.array(MEAN_RGB)) / 255.0).astype(np.float32)).permute(2, 0, 1)[None]
        with torch.no_grad():
            ours = torch.softmax(model(x), -1)[0].double().numpy()
        worst = max(worst, float(np.abs(ours - ref).max()))
    if worst > 1e-5:
        raise SystemExit(f"PyTorch and numpy reference disagree: max |Δp| = {worst:.2e}")
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
        tf, licence = read_tfjs(tarball)
    state = to_torch_state(tf)
    worst = verify(tf, state)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata={
        "source": f"npm {PACKAGE}@{VERSION} model/face_expression_model.bin",
        "tarball_sha256": digest,
        "verified_max_abs_prob_diff": f"{worst:.3e}",
    })
    write_licence(args.out.parent, licence)
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes); max |Δp| vs numpy reference {worst:.2e}")


if __name__ == "__main__":
    main()
