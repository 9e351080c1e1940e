"""Weights fingerprint: all bytes of every saved tensor, hashed once at save time and stored in the checkpoint."""

from __future__ import annotations

import json

import torch

from affectllm.checkpoint import load_checkpoint, save_checkpoint
from affectllm.fingerprint import FINGERPRINT_FILE, compute_fingerprint, read_fingerprint
from affectllm.testing import tiny_model_and_processor


def test_saved_fingerprint_is_read_back_and_covers_every_byte(tmp_path):
    model, proc = tiny_model_and_processor(seed=0)
    save_checkpoint(model, proc, tmp_path / "a")
    stored = json.loads((tmp_path / "a" / FINGERPRINT_FILE).read_text())
    assert stored == compute_fingerprint(tmp_path / "a") and "model.safetensors" in stored["files"]
    loaded, _ = load_checkpoint(tmp_path / "a")
    assert loaded.checkpoint_fingerprint == stored["sha256"]
    assert loaded.fingerprint == load_checkpoint(tmp_path / "a")[0].fingerprint  # stable across loads

    # one element far past the first 2,048 bytes of its tensor changes the fingerprint
    name, p = max(((n, p) for n, p in model.named_parameters() if p.requires_grad), key=lambda kv: kv[1].numel())
    assert p.numel() * p.element_size() > 4096, name
    before = model.fingerprint
    with torch.no_grad():
        p.view(-1)[-1] += 1.0
    assert model.fingerprint != before  # in memory: every byte of the trainable tensors
    save_checkpoint(model, proc, tmp_path / "b")
    assert read_fingerprint(tmp_path / "b") != stored["sha256"]
    assert load_checkpoint(tmp_path / "b")[0].fingerprint != loaded.fingerprint


def test_checkpoint_without_fingerprint_file_is_hashed_on_load(tmp_path):
    model, proc = tiny_model_and_processor(seed=1)
    save_checkpoint(model, proc, tmp_path)
    stored = read_fingerprint(tmp_path)
    (tmp_path / FINGERPRINT_FILE).unlink()
    assert read_fingerprint(tmp_path) == stored
    assert load_checkpoint(tmp_path)[0].checkpoint_fingerprint == stored


def test_one_file_hash_serves_every_caller(tmp_path):
    import hashlib

    from affectllm.evaluation import io as eval_io
    from affectllm.offline import cachefs
    from affectllm.training.feature_cache import file_sha256
    from affectllm.utils.fingerprint import BLOCK, sha256_file

    data = bytes(range(256)) * (BLOCK // 256 * 2 + 3)  # spans three read blocks
    (tmp_path / "f.bin").write_bytes(data)
    want = hashlib.sha256(data).hexdigest()
    assert sha256_file(tmp_path / "f.bin") == want == file_sha256(tmp_path / "f.bin")
    assert cachefs.sha256_file is eval_io.sha256_file is sha256_file  # old import paths: the same function
