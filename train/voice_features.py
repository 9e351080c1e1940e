"""Pooled Whisper-encoder features of every clip in ``../shared/corpora``, extracted once and cached.

Used by ``train/train_voice_expert.py`` and ``bench/quality.py``. Features of every encoder block (and the final
output) are kept, so the layer the head reads can be chosen by speaker-independent validation without
re-encoding. The cache file is keyed by the Whisper weights' fingerprint and is resumable (saved every 50 clips).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

from affectllm.instruct.labelled_corpora import read_labels


def extract(corpora: Path, cache: Path, whisper: str = "base", limit: int | None = None,
            log_every: int = 25) -> tuple[list[dict[str, str]], np.ndarray, list[int]]:
    """(rows, features ``[N, L, 2D]`` float32, layers) for the clips of ``labels.csv``; cached in ``cache``."""
    import torch

    from affectllm.media import load_audio
    from affectllm.offline.whisper_convert import whisper_fingerprint
    from affectllm.perception.asr import Transcriber
    from affectllm.perception.voice import encode_layers

    rows = read_labels(corpora)[:limit]
    tr = Transcriber(whisper)
    layers = list(range(len(tr.model.encoder.blocks) + 1))  # every block + the final output
    file = cache / f"voice_features_{whisper}_{whisper_fingerprint(tr.model)}.npz"
    done: dict[str, np.ndarray] = {}
    if file.is_file():
        with np.load(file) as z:
            done = dict(zip(z["paths"].tolist(), z["features"]))
    todo = [r for r in rows if r["path"] not in done]
    order = np.random.default_rng(0).permutation(len(todo))  # corpora interleaved: partial caches are usable
    todo = [todo[i] for i in order]
    print(f"[features] {len(rows) - len(todo)} cached, {len(todo)} to encode -> {file}", flush=True)
    t0 = time.perf_counter()
    torch.set_num_threads(1)  # 2 shared cores: one thread is 4x faster than two here

    def save() -> None:
        cache.mkdir(parents=True, exist_ok=True)
        tmp = file.with_suffix(".tmp.npz")
        np.savez(tmp, paths=np.array(list(done)), features=np.stack(list(done.values())))
        tmp.replace(file)

    for i, r in enumerate(todo, 1):
        audio = load_audio(corpora / r["path"], sr=16000)
        feats = encode_layers(tr.model.encoder, audio, layers)
        done[r["path"]] = np.stack([feats[k] for k in layers])  # [L, 2D]
        if i % log_every == 0 or i == len(todo):
            rate = (time.perf_counter() - t0) / i
            print(f"[features] {i}/{len(todo)}  {rate:.2f} s/clip  eta {rate * (len(todo) - i) / 60:.1f} min",
                  flush=True)
        if i % 50 == 0 or i == len(todo):
            save()
    feats = np.stack([done[r["path"]] for r in rows])  # [N, L, 2D]
    return rows, feats, layers


if __name__ == "__main__":  # python train/voice_features.py CORPORA CACHE  (extraction only)
    from affectllm.paths import cache_dir

    root = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).resolve().parents[1].parent / "shared/corpora"
    out = Path(sys.argv[2]) if len(sys.argv) > 2 else cache_dir("voice_expert")
    extract(root, out)
