"""AffectGPT's media rules as AffectLLM options: frame indices, 2-s audio clips, face-variant sentence."""

from __future__ import annotations

import numpy as np
import pytest
import torch


def test_frame_indices_follow_their_uniform_sampling():
    from affectllm.compat.affectgpt import frame_indices

    assert frame_indices(100).tolist() == [0, 12, 25, 37, 50, 62, 75, 87]  # arange(0, 100, 12.5).astype(int)
    assert frame_indices(5).tolist() == [0, 1, 2, 3, 4, 4, 4, 4]  # short video: last frame repeated
    with pytest.raises(ValueError):
        frame_indices(0)


def test_short_audio_padded_to_one_clip():
    from affectllm.compat.affectgpt import clip_waveform

    short = clip_waveform(torch.ones(8000), clip_mean=False)  # 0.5 s -> zero-padded to 2 s, 8 identical clips
    assert short.shape == (8, 32000) and bool((short == short[0]).all()) and float(short[0, 8000:].abs().sum()) == 0


def test_squash_resize_keeps_no_aspect():
    from affectllm.media_inputs import preprocess_frames

    frames = np.zeros((2, 90, 160, 3), np.uint8)
    out = preprocess_frames(frames, {"image_size": 224, "resize": "squash"})
    assert out.shape == (2, 3, 224, 224)


def test_face_variant_differs_in_one_sentence():
    from affectllm.compat.affectgpt import media_template

    frame, face = media_template("frame"), media_template("face")
    assert face.replace(" and extract faces from these frames", "") == frame
    with pytest.raises(ValueError):
        media_template("crops")


def test_openface_npy_layout(tmp_path):
    from affectllm.compat.affectgpt import load_openface_faces

    np.save(tmp_path / "f.npy", np.zeros((12, 112, 112, 3), np.uint8))
    video = load_openface_faces(tmp_path / "f.npy")
    assert video["frames"].shape == (12, 112, 112, 3) and video["audio"] is None
    np.save(tmp_path / "bad.npy", np.zeros((12, 112, 112), np.uint8))
    with pytest.raises(ValueError, match="OpenFace"):
        load_openface_faces(tmp_path / "bad.npy")
