"""Synthetic instruction sets for tests and benchmarks: random images and noise audio written as real files.

Each sample gets its own random image (PNG) and audio clip (16 kHz WAV) and a distinct target label written
with ``format_report``, so a model can only answer right by looking at / listening to the media.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from affectllm.report import format_report

LABELS = ("happy", "sad", "angry", "neutral", "calm", "surprised", "fearful", "worried", "disgusted", "bored",
          "anxious", "nervous", "proud", "relieved", "excited", "frustrated")
PROMPT = "Which emotions does the person show?"


def write_synthetic_set(folder: str | Path, n: int = 16, seed: int = 0, image_size: int = 32,
                        seconds: float = 0.5, labels: tuple[str, ...] = LABELS, name: str = "train.jsonl",
                        explanation: str = "synthetic") -> Path:
    """Write ``n`` samples (media under ``folder/media``) and ``folder/name``; returns the JSONL path."""
    import soundfile as sf
    from PIL import Image

    folder = Path(folder)
    media = folder / "media"
    media.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        label = labels[i % len(labels)]
        # distinct by design: a random base colour with a random stripe pattern, a random tone with noise
        base = rng.integers(0, 256, 3)
        stripes = (np.arange(image_size) // rng.integers(2, 9) % 2)[:, None, None] * rng.integers(-80, 80, 3)
        img = np.clip(base + stripes + rng.normal(0, 8, (image_size, image_size, 3)), 0, 255).astype(np.uint8)
        Image.fromarray(img).save(media / f"s{i:03d}.png")
        t = np.arange(int(seconds * 16000)) / 16000
        wav = 0.3 * np.sin(2 * np.pi * rng.uniform(100, 2000) * t) + rng.normal(0, 0.02, t.shape)
        wav = wav.astype(np.float32)
        sf.write(media / f"s{i:03d}.wav", wav, 16000)
        rows.append({
            "id": f"synthetic/s{i:03d}/ov_labels", "audio": f"media/s{i:03d}.wav", "image": f"media/s{i:03d}.png",
            "task": "ov_labels", "source": "synthetic", "labels": [label],
            "conversations": [{"role": "user", "content": f"<audio>\n<image>\n{PROMPT}"},
                              {"role": "assistant", "content": format_report([label], explanation)}],
        })
    path = folder / name
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path
