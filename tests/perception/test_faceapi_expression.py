"""face-api's expression net in PyTorch: TF semantics, the shipped weights, the pooled face expert on real faces."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from affectllm.media import Frames, load_frames, load_image
from affectllm.perception.expression import EXPRESSION_CLASSES, FaceExperts, combine_probs
from affectllm.perception.faceapi_expression import (
    FACEAPI_CLASSES,
    MEAN_RGB,
    FaceApiExpert,
    FaceExpressionNet,
    default_weights_path,
    preprocess,
)
from affectllm.perception.faces import FaceTrack, HaarFaceDetector, detect_faces, track_main_face

REPO = Path(__file__).resolve().parents[2]


def _script():
    spec = importlib.util.spec_from_file_location("convert_faceapi", REPO / "scripts" / "convert_faceapi.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def expert() -> FaceApiExpert:
    return FaceApiExpert.load()


def _tf_from_torch(model: FaceExpressionNet) -> dict[str, np.ndarray]:
    """Back to face-api's TF tensor names and layouts, for the numpy reference."""
    sd = {k: v.double().numpy() for k, v in model.state_dict().items()}
    tf = {}
    for b in range(4):
        for c in range(4):
            p, q = f"dense{b}/conv{c}", f"dense{b}.conv{c}"
            if b == c == 0:
                tf[f"{p}/filters"], tf[f"{p}/bias"] = sd[f"{q}.conv.weight"].transpose(2, 3, 1, 0), sd[f"{q}.conv.bias"]
            else:
                tf[f"{p}/depthwise_filter"] = sd[f"{q}.depthwise.weight"].transpose(2, 3, 0, 1)
                tf[f"{p}/pointwise_filter"] = sd[f"{q}.pointwise.weight"].transpose(2, 3, 1, 0)
                tf[f"{p}/bias"] = sd[f"{q}.pointwise.bias"]
    tf["fc/weights"], tf["fc/bias"] = sd["fc.weight"].T, sd["fc.bias"]
    return tf


def test_weights_shipped_with_licence(expert: FaceApiExpert) -> None:
    from safetensors import safe_open

    path = default_weights_path()
    assert 1_000_000 < path.stat().st_size < 1_500_000
    licence = (path.parent / "FACEAPI_LICENSE.txt").read_text()
    assert "MIT License" in licence and "vladmandic/face-api" in licence
    with safe_open(str(path), "np") as f:
        meta = f.metadata()
    assert "face-api@1.7.15" in meta["source"] and float(meta["verified_max_abs_prob_diff"]) < 1e-5
    assert sum(p.numel() for p in expert.model.parameters()) == 323_687  # the sum of the TFJS manifest's tensor sizes


def test_first_dense_block_matches_numpy_tf_reference(expert: FaceApiExpert) -> None:
    """dense0 (strided 3×3 conv + three separable convs, TF "same" padding) written out in numpy."""
    script = _script()
    tf = _tf_from_torch(expert.model)
    rng = np.random.default_rng(3)
    x = (rng.integers(0, 256, (112, 112, 3)) - np.array(MEAN_RGB)) / 255.0

    def sep(c, v, s=1):
        return script.np_separable(v, tf[f"dense0/conv{c}/depthwise_filter"], tf[f"dense0/conv{c}/pointwise_filter"],
                                    tf[f"dense0/conv{c}/bias"], s)

    out1 = np.maximum(script.np_conv(x, tf["dense0/conv0/filters"], 2) + tf["dense0/conv0/bias"], 0)
    out2 = sep(1, out1)
    out3 = sep(2, np.maximum(out1 + out2, 0))
    out4 = sep(3, np.maximum(out1 + out2 + out3, 0))
    reference = np.maximum(out1 + out2 + out3 + out4, 0)  # [56, 56, 32]
    with torch.no_grad():
        ours = expert.model.dense0(torch.from_numpy(x).float().permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    assert ours.shape == (56, 56, 32)
    np.testing.assert_allclose(ours.numpy(), reference, atol=1e-4)


def test_whole_net_matches_numpy_reference(expert: FaceApiExpert) -> None:
    script = _script()
    image = np.random.default_rng(4).integers(0, 256, (112, 112, 3)).astype(np.uint8)
    reference = script.np_reference(_tf_from_torch(expert.model), image.astype(np.float64))  # face-api order
    ours = expert.predict(image[None])[0]  # our class order
    np.testing.assert_allclose(ours, reference[[FACEAPI_CLASSES.index(c) for c in EXPRESSION_CLASSES]], atol=1e-5)


def test_preprocess_pads_to_square_centred() -> None:
    crop = np.full((50, 100, 3), 200, np.uint8)
    x = preprocess(crop[None])  # [1, 3, 112, 112]
    assert tuple(x.shape) == (1, 3, 112, 112)
    top_row, middle = x[0, 0, 0, 56].item(), x[0, 0, 56, 56].item()
    assert top_row == pytest.approx(-MEAN_RGB[0] / 255, abs=1e-6)  # zero padding above the centred crop
    assert middle == pytest.approx((200 - MEAN_RGB[0]) / 255, abs=1e-6)
    with pytest.raises(ValueError, match="RGB face crops"):
        preprocess(np.zeros((1, 48, 48), np.uint8))


def test_outputs_shapes_order_and_empty_input(expert: FaceApiExpert) -> None:
    crops = np.random.default_rng(0).integers(0, 256, (3, 120, 120, 3), dtype=np.uint8)
    probs = expert.predict(crops)
    assert probs.shape == (3, 7)
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    np.testing.assert_allclose(expert.predict(crops[:1]), probs[:1], atol=1e-6)  # batch-independent
    raw = torch.softmax(expert.model(preprocess(crops)), -1).numpy()  # face-api order
    assert np.allclose(probs[:, EXPRESSION_CLASSES.index("neutral")], raw[:, 0], atol=1e-6)
    assert expert.predict(np.zeros((0, 112, 112, 3), np.uint8)).shape == (0, 7)


def test_combine_probs_rules() -> None:
    a = np.array([[0.9, 0.1, 0, 0, 0, 0, 0]], np.float32)
    b = np.array([[0.1, 0.9, 0, 0, 0, 0, 0]], np.float32)
    np.testing.assert_allclose(combine_probs([a, b], "mean")[0, :2], [0.5, 0.5], atol=1e-6)
    geo = combine_probs([a, np.array([[0.5, 0.5, 0, 0, 0, 0, 0]], np.float32)], "geometric")[0]
    ratio = np.sqrt(0.9 * 0.5) / np.sqrt(0.1 * 0.5)
    assert geo[0] / geo[1] == pytest.approx(ratio, rel=1e-4) and geo.sum() == pytest.approx(1.0, abs=1e-6)
    with pytest.raises(ValueError, match="unknown combination rule"):
        combine_probs([a], "max")


def test_pooled_expert_on_labelled_faces(shared: Path) -> None:
    """The numbers in assets/face_experts.md (on Haar boxes): pooled 4/4 on the grid, RAVDESS neutral at 0.96
    (mini-X 0.61)."""
    experts = FaceExperts.load()
    image = load_image(shared / "media/faces/emotion_classification.jpg")
    boxes = detect_faces(image, HaarFaceDetector())
    frames = Frames(np.stack([image] * 4), np.zeros(4))
    pooled, per, idx = experts.predict_track(frames, FaceTrack(list(boxes), np.zeros(4)))
    assert pooled.shape == (4, 7) and set(per) == {"mini_xception", "faceapi"} and idx.tolist() == [0, 1, 2, 3]
    truth = {"top-left": "surprise", "top-right": "happy", "bottom-left": "sad", "bottom-right": "angry"}
    got = {("top" if b.center[1] < 500 else "bottom") + "-" + ("left" if b.center[0] < 500 else "right"):
           EXPRESSION_CLASSES[int(p.argmax())] for b, p in zip(boxes, pooled, strict=True)}
    assert got == truth
    faceapi_right = sum(EXPRESSION_CLASSES[int(p.argmax())] == truth[k] for k, p in zip(got, per["faceapi"]))
    assert faceapi_right == 2  # face-api alone: happy and sad right, surprise->sad, angry->happy

    clip = load_frames(shared / "media/ravdess/01-01-01-01-01-01-01.mp4", 8)
    pooled, per, _ = experts.predict_track(clip, track_main_face(clip, HaarFaceDetector()))
    neutral = EXPRESSION_CLASSES.index("neutral")
    assert pooled.mean(0)[neutral] > 0.9 > per["faceapi"].mean(0)[neutral] - 0.1
    assert per["mini_xception"].mean(0)[neutral] < pooled.mean(0)[neutral]


@pytest.mark.slow
def test_conversion_script_reproduces_shipped_weights(tmp_path: Path) -> None:
    """Re-run scripts/convert_faceapi.py (npm pack needs the npm registry) and compare with the shipped file."""
    from safetensors.torch import load_file

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    try:
        tarball = _script().npm_pack(tmp_path)
    except (subprocess.CalledProcessError, SystemExit, OSError) as err:
        pytest.skip(f"face-api tarball not downloadable here: {err}")
    out = tmp_path / "faceapi.safetensors"
    subprocess.run([sys.executable, str(REPO / "scripts/convert_faceapi.py"), "--tarball", str(tarball),
                    "--out", str(out)], check=True)
    fresh, shipped = load_file(str(out)), load_file(str(default_weights_path()))
    assert fresh.keys() == shipped.keys()
    for key in fresh:
        torch.testing.assert_close(fresh[key], shipped[key], rtol=0, atol=0)
