"""Feature cache: hit, miss, invalidation on a tower-fingerprint change, corrupt and mismatched entries."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from affectllm.training.feature_cache import CacheEntry, FeatureCache, ItemFeatures
from affectllm.training.samples import ItemSpec


def _files(tmp_path: Path) -> list[ItemSpec]:
    (tmp_path / "a.wav").write_bytes(b"RIFF-audio-bytes")
    (tmp_path / "a.png").write_bytes(b"PNG-image-bytes")
    return [ItemSpec("audio", audio=str(tmp_path / "a.wav"), anchor="audio"),
            ItemSpec("image", visual=str(tmp_path / "a.png"), anchor="image")]


def _entry() -> CacheEntry:
    g = torch.Generator().manual_seed(0)
    audio = ItemFeatures("audio", False, True, {"audio": (torch.randn(7, 32, generator=g), torch.ones(7, dtype=torch.bool),
                                                           torch.arange(7.0))})
    image = ItemFeatures("image", True, False, {"vision": (torch.randn(5, 64, generator=g), torch.ones(5, dtype=torch.bool),
                                                            torch.zeros(5))})
    return CacheEntry([audio, image], cues=["Speech: none recognised"])


def _cache(root: Path, fp: str = "f1", dims: dict | None = None) -> FeatureCache:
    return FeatureCache(root, {"audio": fp, "vision": "v1"}, dims or {"audio": 32, "vision": 64}, {"frames": 4})


def test_miss_then_hit_roundtrips_exactly(tmp_path):
    specs = _files(tmp_path)
    cache = _cache(tmp_path / "c")
    key = cache.key(specs)
    assert cache.get(key) is None and cache.stats.misses == 1
    cache.put(key, _entry())
    got = cache.get(key)
    assert cache.stats.hits == 1 and cache.stats.hit_rate == 0.5
    want = _entry()
    assert got.cues == want.cues and [i.kind for i in got.items] == ["audio", "image"]
    for g, w in zip(got.items, want.items):
        assert (g.has_vision, g.has_audio) == (w.has_vision, w.has_audio)
        for m in w.outputs:
            assert all(torch.equal(x, y) for x, y in zip(g.outputs[m], w.outputs[m]))


def test_key_changes_with_content_fingerprint_and_settings(tmp_path):
    specs = _files(tmp_path)
    base = _cache(tmp_path / "c").key(specs)
    assert _cache(tmp_path / "c", fp="f2").key(specs) != base  # another tower
    other = FeatureCache(tmp_path / "c", {"audio": "f1", "vision": "v1"}, {"audio": 32, "vision": 64}, {"frames": 8})
    assert other.key(specs) != base  # other preprocessing
    (tmp_path / "a.wav").write_bytes(b"RIFF-other-audio")  # other content, same path
    assert _cache(tmp_path / "c").key(specs) != base


def test_fingerprint_change_invalidates(tmp_path):
    specs = _files(tmp_path)
    old = _cache(tmp_path / "c", fp="f1")
    key = old.key(specs)
    old.put(key, _entry())
    new = _cache(tmp_path / "c", fp="f2")
    assert new.get(new.key(specs)) is None  # a new key: miss, recompute
    # a stale entry found under the key the new tower asks for is detected and deleted, never used
    path = new.path(key)
    assert new.get(key) is None and new.stats.invalid == 1 and not path.exists()


@pytest.mark.parametrize("damage", ["truncate", "flip", "garbage"])
def test_corrupt_entries_are_deleted_and_missed(tmp_path, damage):
    specs = _files(tmp_path)
    cache = _cache(tmp_path / "c")
    key = cache.key(specs)
    path = cache.put(key, _entry())
    raw = bytearray(path.read_bytes())
    if damage == "truncate":
        path.write_bytes(bytes(raw[: len(raw) // 2]))
    elif damage == "flip":
        raw[-3] ^= 0xFF  # inside the tensor data: only the checksum notices
        path.write_bytes(bytes(raw))
    else:
        path.write_bytes(b"not a safetensors file")
    assert cache.get(key) is None
    assert cache.stats.invalid == 1 and cache.stats.hits == 0 and not path.exists()
    cache.put(key, _entry())  # recomputed and written again: usable
    assert cache.get(key) is not None


def test_width_mismatch_is_invalid(tmp_path):
    specs = _files(tmp_path)
    writer = _cache(tmp_path / "c")
    key = writer.key(specs)
    writer.put(key, _entry())
    reader = _cache(tmp_path / "c", dims={"audio": 48, "vision": 64})  # a tower of another width
    assert reader.get(key) is None and reader.stats.invalid == 1


@pytest.mark.slow
def test_extract_then_train_hits_and_tower_change_misses(tmp_path):
    from affectllm.training import load_config
    from affectllm.training.extract import extract_features
    from affectllm.training.synthetic import write_synthetic_set

    data = write_synthetic_set(tmp_path / "data", n=8, seed=2)
    over = [f"data.train={data}", f"cache.dir={tmp_path / 'cache'}", "model.options.whisper=false"]
    cfg = load_config("train/configs/tiny-test.yaml", over)
    quiet = dict(echo=lambda s: None)
    first = extract_features(cfg, data, **quiet)
    assert (first["rows"], first["written"], first["hits"]) == (8, 8, 0)
    again = extract_features(cfg, data, **quiet)
    assert (again["written"], again["hits"]) == (0, 8)
    # another seed -> other random tower weights -> other fingerprints: everything is recomputed
    changed = extract_features(load_config("train/configs/tiny-test.yaml", over + ["seed=1"]), data, **quiet)
    assert (changed["written"], changed["hits"]) == (8, 0)
