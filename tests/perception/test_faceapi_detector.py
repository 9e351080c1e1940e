"""face-api's Tiny Face Detector in PyTorch: converted weights, TF semantics, parity with face-api, real faces,
and its place as the default detector (Haar the fallback)."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from affectllm.media import Frames, load_image
from affectllm.media.sampling import load_video_frames
from affectllm.perception import faceapi_detector as fd
from affectllm.perception import faces
from affectllm.perception.faceapi_detector import (
    HAAR_SCALE,
    HAAR_SHIFT_Y,
    TinyFaceDetector,
    TinyFaceDetectorNet,
    tf_resize_bilinear,
)
from affectllm.perception.faces import HaarFaceDetector, make_detector, track_main_face

REPO = Path(__file__).resolve().parents[2]
FIXTURE = REPO / "tests" / "fixtures" / "faceapi_tiny_face_detector.json"


def _script():
    spec = importlib.util.spec_from_file_location("convert_faceapi_detector",
                                                  REPO / "scripts" / "convert_faceapi_detector.py")
    module = importlib.util.module_from_spec(spec)  # type: ignore[arg-type]
    spec.loader.exec_module(module)  # type: ignore[union-attr]
    return module


@pytest.fixture(scope="module")
def detector() -> TinyFaceDetector:
    return TinyFaceDetector.load()


def _tf_from_torch(model: TinyFaceDetectorNet) -> dict[str, np.ndarray]:
    """Back to face-api's TF tensor names and layouts (the converter's inverse)."""
    sd = {k: v.numpy() for k, v in model.state_dict().items()}
    tf = {"conv0/filters": sd["conv0.weight"].transpose(2, 3, 1, 0), "conv0/bias": sd["conv0.bias"],
          "conv8/filters": sd["conv8.weight"].transpose(2, 3, 1, 0), "conv8/bias": sd["conv8.bias"]}
    for i in range(1, 6):
        tf[f"conv{i}/depthwise_filter"] = sd[f"conv{i}.depthwise.weight"].transpose(2, 3, 0, 1)
        tf[f"conv{i}/pointwise_filter"] = sd[f"conv{i}.pointwise.weight"].transpose(2, 3, 1, 0)
        tf[f"conv{i}/bias"] = sd[f"conv{i}.pointwise.bias"]
    return tf


def test_shipped_weights_load_strictly_with_licence_and_are_deterministic(detector: TinyFaceDetector) -> None:
    from safetensors import safe_open

    path = fd.default_weights_path()
    with safe_open(str(path), "np") as f:
        keys, meta = set(f.keys()), f.metadata()
    assert keys == set(TinyFaceDetectorNet().state_dict())  # no leftover, none missing
    assert "face-api@1.7.15" in meta["source"] and float(meta["verified_max_abs_encoding_diff"]) < 1e-3
    assert "tiny_face_detector" in (path.parent / "FACEAPI_LICENSE.txt").read_text()
    # one parameter per uint8 byte of model/tiny_face_detector_model.bin (193,321 bytes)
    assert sum(p.numel() for p in detector.model.parameters()) == 193_321
    x = torch.from_numpy(np.random.default_rng(0).normal(0, 0.5, (1, 3, 416, 416)).astype(np.float32))
    with torch.inference_mode():
        a, b = detector.model(x), detector.model(x)
    assert a.shape == (1, 25, 13, 13) and torch.equal(a, b)


def test_converter_maps_every_tensor_and_rejects_leftovers(detector: TinyFaceDetector) -> None:
    script = _script()
    tf = _tf_from_torch(detector.model)
    state = script.to_torch_state(tf)
    assert all(np.array_equal(state[k], v.numpy()) for k, v in detector.model.state_dict().items())
    with pytest.raises(SystemExit, match="unmapped face-api tensors: \\['conv6/bias'\\]"):
        script.to_torch_state({**tf, "conv6/bias": np.zeros(3, np.float32)})


def test_network_matches_numpy_tf_reference(detector: TinyFaceDetector) -> None:
    """Odd sizes on the way (64 -> 62 -> 31 -> 16 -> 8 -> 4 -> 2) exercise "same" max-pool's bottom/right pad."""
    script = _script()
    x = np.random.default_rng(1).normal(0, 0.5, (64, 64, 3))
    ref = script.np_reference(_tf_from_torch(detector.model), x)  # [2, 2, 25]
    with torch.inference_mode():
        ours = detector.model(torch.from_numpy(x.astype(np.float32)).permute(2, 0, 1)[None])[0].permute(1, 2, 0)
    np.testing.assert_allclose(ours.numpy(), ref, atol=1e-4)


def test_resize_is_tf_legacy_bilinear() -> None:
    """alignCorners=false, halfPixelCenters=false: source pixel = dst * in / out, edges repeat."""
    image = np.array([[0, 100], [200, 40]], np.uint8)[..., None]  # [2, 2, 1]
    out = tf_resize_bilinear(image, 4)[..., 0]
    np.testing.assert_allclose(out[0], [0, 50, 100, 100])
    np.testing.assert_allclose(out[:, 0], [0, 100, 200, 200])
    np.testing.assert_allclose(out[1, 1], (0 + 100 + 200 + 40) / 4)


def test_matches_faceapi_itself(shared: Path) -> None:
    """face-api 1.7.15 in node (TFJS cpu) on 3 photos, from scripts/make_faceapi_detector_fixture.py."""
    fixture = json.loads(FIXTURE.read_text())
    assert fixture["max_abs_box_diff_px"] < 1e-3 and fixture["max_abs_score_diff"] < 1e-5  # as measured then
    for case in fixture["cases"]:
        boxes, scores = TinyFaceDetector.load(input_size=case["input_size"]).raw(load_image(shared / case["image"]))
        theirs = case["faceapi"]
        assert len(boxes) == len(theirs) > 0, case["image"]
        xywh = np.c_[boxes[:, :2], boxes[:, 2:] - boxes[:, :2]]
        np.testing.assert_allclose(xywh, [d["box"] for d in theirs], atol=1e-2)
        np.testing.assert_allclose(scores, [d["score"] for d in theirs], atol=1e-5)


def test_finds_the_portrait_face_with_a_confidence(shared: Path, detector: TinyFaceDetector) -> None:
    image = load_image(shared / "media/faces/grace_hopper.jpg")  # [600, 512, 3]
    (box,) = detector(image)
    assert 0.5 < box.score <= 1.0  # measured 0.915
    (cx, cy) = box.center
    assert 230 < cx < 300 and 180 < cy < 260 and 180 < box.w < 240 and box.w == box.h  # Haar's: (266, 218), 228
    haar = HaarFaceDetector()(image)[0]
    assert box.iou(haar) > 0.7  # the aligned square lies where Haar's does


def test_haar_alignment_is_the_measured_mapping_of_faceapis_box(shared: Path) -> None:
    image = load_image(shared / "media/faces/grace_hopper.jpg")
    raw = TinyFaceDetector.load(haar_aligned=False)
    ((x0, y0, x1, y1),), _ = raw.raw(image)
    side = max(x1 - x0, y1 - y0)
    (plain,) = raw(image)
    (aligned,) = TinyFaceDetector.load()(image)
    assert (plain.x, plain.y, plain.w, plain.h) == (int(x0), int(y0), int(x1 - x0), int(y1 - y0))
    assert aligned.w == pytest.approx(HAAR_SCALE * side, abs=1)
    assert aligned.center[1] == pytest.approx((y0 + y1) / 2 + HAAR_SHIFT_Y * side, abs=1)


def test_blank_and_noise_images_have_no_face(detector: TinyFaceDetector) -> None:
    rng = np.random.default_rng(0)
    for image in (np.zeros((360, 640, 3), np.uint8), np.full((300, 300, 3), 128, np.uint8),
                  rng.integers(0, 30, (120, 160, 3), dtype=np.uint8)):
        assert detector(image) == []
    with pytest.raises(ValueError, match=r"\[H, W, 3\]"):
        detector(np.zeros((10, 10), np.uint8))
    with pytest.raises(ValueError, match="multiple of 32"):
        TinyFaceDetector(detector.model, input_size=400)


def test_tv_clip_where_haar_misses_the_speaker(shared: Path, detector: TinyFaceDetector) -> None:
    """sample_00003462 (718×404, a speaker turned three-quarters): measured tiny 8/8 frames, Haar 1/8."""
    sampling = {"num_frames": 8, "frame_sampling": "uniform"}
    images, ts = load_video_frames(shared / "media/tv/sample_00003462.mp4", sampling, max_side=1280)
    frames = Frames(images=images, timestamps=ts)
    tiny, haar = track_main_face(frames, detector), track_main_face(frames, HaarFaceDetector())
    assert len(tiny.frame_indices) >= 7 and len(haar.frame_indices) <= 2
    assert all(0.5 < b.score <= 1.0 for b in tiny.boxes if b is not None)


def test_default_detector_is_tiny_when_shipped_else_haar(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv(faces.DETECTOR_ENV, raising=False)
    make_detector.cache_clear()
    try:
        assert isinstance(faces.default_detector(), TinyFaceDetector)
        monkeypatch.setenv(faces.DETECTOR_ENV, "haar")
        assert isinstance(faces.default_detector(), HaarFaceDetector)
        monkeypatch.setenv(faces.DETECTOR_ENV, "yolo")
        with pytest.raises(ValueError, match="auto, tiny, haar"):
            faces.default_detector()
        monkeypatch.delenv(faces.DETECTOR_ENV)
        monkeypatch.setattr(fd, "default_weights_path", lambda: tmp_path / "missing.safetensors")
        make_detector.cache_clear()
        assert isinstance(faces.default_detector(), HaarFaceDetector)  # the fallback
        with pytest.raises(FileNotFoundError, match="missing.safetensors: face-api Tiny Face Detector weights"):
            make_detector("tiny")
    finally:
        make_detector.cache_clear()


def test_pipeline_face_evidence_carries_the_detectors_confidence(shared: Path) -> None:
    from affectllm.media import load_frames
    from affectllm.perception.pipeline import Experts, Perception, _faces
    from affectllm.perception.reliability import face_reliability

    fr = load_frames(shared / "media/ravdess/01-01-01-01-01-01-01.mp4", 8)
    p = Perception(source=None, kind="video", frames=fr.images, timestamps=fr.timestamps)
    _faces(p, Experts(whisper=None))
    assert p.face["detector"] == "TinyFaceDetector" and p.face["frames_with_face"] == 8
    assert 0.5 < p.face["detection_score"] <= 1.0
    r, reasons = face_reliability(p.face)
    assert f"detection confidence {p.face['detection_score']:.2f}" in reasons and 0 < r <= p.face["detection_score"]


@pytest.mark.slow
def test_conversion_script_reproduces_shipped_weights(tmp_path: Path) -> None:
    """Re-run scripts/convert_faceapi_detector.py (npm pack needs the npm registry); bit-equal to the shipped file."""
    import shutil
    import subprocess
    import sys

    from safetensors.torch import load_file

    if shutil.which("npm") is None:
        pytest.skip("npm is not installed")
    try:
        tarball = _script().npm_pack(tmp_path)
    except (subprocess.CalledProcessError, SystemExit, OSError) as err:
        pytest.skip(f"face-api tarball not downloadable here: {err}")
    out = tmp_path / "detector.safetensors"
    subprocess.run([sys.executable, str(REPO / "scripts/convert_faceapi_detector.py"), "--tarball", str(tarball),
                    "--out", str(out)], check=True)
    fresh, shipped = load_file(str(out)), load_file(str(fd.default_weights_path()))
    assert fresh.keys() == shipped.keys()
    for key in fresh:
        torch.testing.assert_close(fresh[key], shipped[key], rtol=0, atol=0)
    assert (tmp_path / "FACEAPI_LICENSE.txt").read_text() == (fd.default_weights_path().parent /
                                                              "FACEAPI_LICENSE.txt").read_text()
