"""On-disk cache of frozen-tower outputs, so that later epochs skip media decoding and the towers.

One entry per row's media bundle, a safetensors file named by its key::

    key = sha256(content sha256 of every media file + how they combine + every tower's fingerprint
                 + preprocessing settings (frames, image size, face mode, sample rate, max seconds) + cue experts)

The entry holds, per media item and modality, ``features [L, D]``, ``mask [L]`` and ``times [L]`` (trailing
padding trimmed), plus JSON metadata: the key, the tower fingerprints, each item's shape (has vision / audio),
the expert cue lines, and a SHA-256 checksum of every tensor byte. A read that finds a truncated file, a bad
checksum, another key, another fingerprint or a feature width the tower does not produce deletes the file and
reports a miss (counted as ``invalid``): a damaged or stale entry is recomputed, never used.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from affectllm.utils.fingerprint import sha256_file

log = logging.getLogger("affectllm.training.cache")
FORMAT = "affectllm-features/1"
_FILE_HASHES: dict[tuple[str, int, int], str] = {}  # (path, size, mtime_ns) -> sha256, per process


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Content hash of a media file, memoised per process by (path, size, mtime)."""
    st = os.stat(path)
    memo = (os.path.abspath(path), st.st_size, st.st_mtime_ns)
    if memo not in _FILE_HASHES:
        _FILE_HASHES[memo] = sha256_file(path)
    return _FILE_HASHES[memo]


@dataclass
class ItemFeatures:
    """One media item's cached tower outputs: modality -> (features [L, D], mask [L] bool, times [L])."""

    kind: str
    has_vision: bool
    has_audio: bool
    outputs: dict[str, tuple[torch.Tensor, torch.Tensor, torch.Tensor]] = field(default_factory=dict)


@dataclass
class CacheEntry:
    items: list[ItemFeatures]
    cues: list[str] = field(default_factory=list)


@dataclass
class CacheStats:
    hits: int = 0
    misses: int = 0
    invalid: int = 0  # corrupt or mismatched entries found, deleted and recomputed
    writes: int = 0

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return self.hits / total if total else 0.0

    def add(self, other: CacheStats) -> None:
        self.hits += other.hits
        self.misses += other.misses
        self.invalid += other.invalid
        self.writes += other.writes


def _checksum(tensors: dict[str, torch.Tensor]) -> str:
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name].detach().contiguous().cpu()
        h.update(name.encode())
        h.update(str(t.dtype).encode() + str(tuple(t.shape)).encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


class FeatureCache:
    """Keyed store of ``CacheEntry`` objects under ``root`` (two-level fan-out of safetensors files)."""

    def __init__(self, root: str | os.PathLike[str], fingerprints: dict[str, str], dims: dict[str, int],
                 settings: dict[str, Any]) -> None:
        self.root = Path(root)
        self.fingerprints = dict(fingerprints)  # modality -> tower fingerprint
        self.dims = dict(dims)  # modality -> feature width D the tower produces
        self.settings = settings  # preprocessing + cue experts (JSON-able)
        self.stats = CacheStats()

    # --- keys ------------------------------------------------------------------------------------------
    def key(self, specs: list) -> str:
        """The entry key of a row's media bundle (``samples.ItemSpec`` list); hashes the files' contents."""
        bundle = [{"kind": s.kind, "visual": s.visual and file_sha256(s.visual),
                   "audio": s.audio and file_sha256(s.audio)} for s in specs]
        payload = {"format": FORMAT, "bundle": bundle, "towers": self.fingerprints, "settings": self.settings}
        return hashlib.sha256(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.safetensors"

    # --- read ------------------------------------------------------------------------------------------
    def get(self, key: str) -> CacheEntry | None:
        """The entry for ``key``; None on a miss. Corrupt or mismatched files are deleted (stats.invalid)."""
        path = self.path(key)
        if not path.is_file():
            self.stats.misses += 1
            return None
        try:
            entry = self._read(path, key)
        except Exception as e:  # noqa: BLE001 - any damage means: drop and recompute
            log.warning("feature cache: %s is unusable (%s); deleting it, the features will be recomputed", path, e)
            path.unlink(missing_ok=True)
            self.stats.invalid += 1
            self.stats.misses += 1
            return None
        self.stats.hits += 1
        return entry

    def _read(self, path: Path, key: str) -> CacheEntry:
        from safetensors import safe_open

        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        if meta.get("format") != FORMAT:
            raise ValueError(f"format {meta.get('format')!r} is not {FORMAT}")
        if meta.get("key") != key:
            raise ValueError("the file holds another key")
        if json.loads(meta.get("fingerprints", "{}")) != self.fingerprints:
            raise ValueError("tower fingerprints differ from the model's")
        if meta.get("checksum") != _checksum(tensors):
            raise ValueError("checksum mismatch")
        items = []
        for i, info in enumerate(json.loads(meta["items"])):
            item = ItemFeatures(info["kind"], bool(info["has_vision"]), bool(info["has_audio"]))
            for m in info["modalities"]:
                feats, mask, times = (tensors[f"{i}.{m}.{n}"] for n in ("features", "mask", "times"))
                if feats.ndim != 2 or feats.shape[1] != self.dims.get(m) or mask.shape != feats.shape[:1] \
                        or times.shape != feats.shape[:1]:
                    raise ValueError(f"item {i} {m}: features {tuple(feats.shape)} do not fit a tower of width "
                                     f"{self.dims.get(m)}")
                item.outputs[m] = (feats, mask.bool(), times)
            items.append(item)
        return CacheEntry(items, json.loads(meta.get("cues", "[]")))

    # --- write -----------------------------------------------------------------------------------------
    def put(self, key: str, entry: CacheEntry) -> Path:
        """Write ``entry`` atomically (temp file in the same folder, fsync, rename)."""
        from safetensors.torch import save_file

        tensors: dict[str, torch.Tensor] = {}
        infos = []
        for i, item in enumerate(entry.items):
            for m, (feats, mask, times) in item.outputs.items():
                tensors[f"{i}.{m}.features"] = feats.detach().contiguous().cpu()
                tensors[f"{i}.{m}.mask"] = mask.detach().to(torch.bool).contiguous().cpu()
                tensors[f"{i}.{m}.times"] = times.detach().float().contiguous().cpu()
            infos.append({"kind": item.kind, "has_vision": item.has_vision, "has_audio": item.has_audio,
                          "modalities": sorted(item.outputs)})
        meta = {"format": FORMAT, "key": key, "fingerprints": json.dumps(self.fingerprints, sort_keys=True),
                "items": json.dumps(infos), "cues": json.dumps(entry.cues), "checksum": _checksum(tensors)}
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            save_file(tensors, str(tmp), metadata=meta)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        self.stats.writes += 1
        return path


def cache_settings(processor, cues: dict[str, Any] | None) -> dict[str, Any]:
    """Everything besides the media and the towers that changes the cached values."""
    return {"vision": processor.vision, "sample_rate": processor.sample_rate,
            "max_audio_seconds": processor.max_audio_seconds, "num_tokens": processor.num_tokens, "cues": cues}


def open_cache(model, processor, root: str | os.PathLike[str], cues: dict[str, Any] | None) -> FeatureCache:
    """A FeatureCache bound to ``model``'s towers (fingerprints and widths) and ``processor``'s settings."""
    from affectllm.model.configuration_affectllm import MODALITIES

    towers = {m: t for m in MODALITIES if (t := model.tower(m)) is not None}
    return FeatureCache(root, {m: t.fingerprint for m, t in towers.items()},
                        {m: int(t.output_dim) for m, t in towers.items()}, cache_settings(processor, cues))
