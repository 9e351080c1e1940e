"""Make the example clip shipped in affectllm/assets/examples/ (the README's first command captions it), offline.

Picture: the public-domain NASA portrait of astronaut Eileen Collins, as shipped in scikit-image's sample data
(``skimage/data/astronaut.png``; "No known copyright restrictions, released into the public domain"), cropped to
her head and shoulders with a slow zoom. Speech: one sentence synthesised by espeak-ng (``apt-get install
espeak-ng``; its output is not covered by its GPL). Encoded with PyAV's bundled FFmpeg (MPEG-4 Part 2 video,
AAC audio), a few seconds and well under 400 kB.

    python scripts/make_example_clip.py [--face astronaut.png] [--out affectllm/assets/examples/astronaut.mp4]

Without ``--face`` the picture is taken from scikit-image if installed; else download its wheel once
(``pip download scikit-image --no-deps``) and pass ``--face`` with ``skimage/data/astronaut.png`` from inside it.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

from affectllm.media.writing import write_clip

ROOT = Path(__file__).resolve().parent.parent
TEXT = "We did it! The landing was perfect, and I am so happy to be back home with all of you."
FPS = 12
SIZE = 256  # output frames [SIZE, SIZE, 3]
CROP = (96, 0, 352, 256)  # head and shoulders in the 512 × 512 portrait (left, top, right, bottom)
SR = 16000


def load_face(path: Path | None) -> Image.Image:
    if path is not None:
        return Image.open(path).convert("RGB")
    try:
        from skimage import data
    except ImportError:
        sys.exit("scikit-image is not installed: pass --face PATH/TO/skimage/data/astronaut.png (see --help)")
    return Image.fromarray(data.astronaut()).convert("RGB")


def speak(text: str, wav: Path) -> np.ndarray:
    """espeak-ng → 16 kHz mono float32 [S]."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        sys.exit("espeak-ng not found: apt-get install espeak-ng")
    subprocess.run([exe, "-v", "en-us", "-s", "150", "-p", "60", "-w", str(wav), text], check=True)
    audio, sr = sf.read(wav, dtype="float32", always_2d=True)
    audio = audio.mean(axis=1)
    if sr != SR:  # linear resampling is plenty for a demo voice
        t = np.arange(int(len(audio) * SR / sr)) * (sr / SR)
        audio = np.interp(t, np.arange(len(audio)), audio).astype(np.float32)
    return audio


def frames(face: Image.Image, n: int) -> list[np.ndarray]:
    """A slow zoom into the crop: n frames [SIZE, SIZE, 3] uint8."""
    left, top, right, bottom = CROP
    out = []
    for i in range(n):
        z = 0.08 * i / max(n - 1, 1)  # up to 8 % closer
        dx, dy = (right - left) * z / 2, (bottom - top) * z / 2
        box = (left + dx, top + dy * 0.5, right - dx, bottom - dy * 1.5)
        out.append(np.asarray(face.resize((SIZE, SIZE), Image.BICUBIC, box=box)))
    return out


def encode(path: Path, video: list[np.ndarray], audio: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    write_clip(path, video, audio, fps=FPS, sample_rate=SR, size=(SIZE, SIZE), video_codec="mpeg4",
               video_bit_rate=300_000, audio_bit_rate=32_000, bitexact=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--face", type=Path, default=None, help="the astronaut portrait (skimage/data/astronaut.png)")
    ap.add_argument("--out", type=Path, default=ROOT / "affectllm" / "assets" / "examples" / "astronaut.mp4")
    ap.add_argument("--text", default=TEXT)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        audio = speak(args.text, Path(tmp) / "speech.wav")
    audio = np.concatenate([np.zeros(SR // 4, np.float32), audio, np.zeros(SR // 4, np.float32)])  # 0.25 s pads
    n = int(np.ceil(len(audio) / SR * FPS))
    encode(args.out, frames(load_face(args.face), n), audio)
    print(f"{args.out}: {len(audio) / SR:.1f} s, {n} frames, {args.out.stat().st_size / 1000:.0f} kB")


if __name__ == "__main__":
    main()
