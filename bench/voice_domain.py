"""How far clips' audio lies from the acted corpora, as the voice expert measures it (``domain_distance``), and
so where fusion's in-domain bound (``perception.reliability.VOICE_IN_DOMAIN``) sits.

    PYTHONPATH=$PWD python bench/voice_domain.py

``domain_distance`` is the RMS z-score of a clip's pooled Whisper features under the shipped voice head's own
standardisation (its training features' mean and std): about 1 for a clip like the acted ones. Printed per
group: the acted corpora from the voice-feature cache (every clip; these are the head's training data, so
they are the in-domain reference), then real clips encoded here: the 8 TV clips in ``../shared/media/tv``, the
README's espeak-ng example clip and JFK's 1961 recording. The bound should lie just above the acted clips'
high percentiles, so in-domain clips keep full trust and the synthetic voice and the old recording lose it.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "train"))


def acted_distances(corpora: Path, expert) -> dict[str, np.ndarray]:
    """``{corpus: [N] distances}`` from the cached features of every acted clip (no re-encoding)."""
    from voice_features import extract

    from affectllm.paths import cache_dir

    rows, feats, _ = extract(corpora, cache_dir("voice_expert"))  # [N, L, 2D]
    x = expert.features_of_blocks(feats)  # [N, 2D * blocks]
    d = np.array([expert.domain_distance(v) for v in x])
    names = np.array([r["corpus"] for r in rows])
    return {c: d[names == c] for c in sorted(set(names))}


def clip_distances(paths: list[Path], expert) -> dict[str, float]:
    """``{file name: distance}`` for real clips, encoded as the pipeline does (the Transcriber's encoder)."""
    from affectllm.media import load_audio
    from affectllm.perception.asr import Transcriber
    from affectllm.perception.voice import encode_layers

    encoder = Transcriber("base").model.encoder
    out = {}
    for p in paths:
        audio = load_audio(p, sr=16000)
        out[p.name] = expert.domain_distance(expert.features(encode_layers(encoder, audio, list(expert.layers))))
    return out


def main(argv: list[str] | None = None) -> int:
    from affectllm.perception.reliability import VOICE_IN_DOMAIN
    from affectllm.perception.voice import VoiceExpert

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--shared", type=Path, default=REPO.parent / "shared")
    args = ap.parse_args(argv)
    expert = VoiceExpert.load()
    print(f"voice head on Whisper-base blocks {'+'.join(map(str, expert.layers))}; "
          f"VOICE_IN_DOMAIN = {VOICE_IN_DOMAIN}")
    print(f"{'group':<28}{'clips':>6}{'median':>8}{'p95':>8}{'max':>8}{'> bound':>9}")
    for corpus, d in acted_distances(args.shared / "corpora", expert).items():
        print(f"{'acted: ' + corpus:<28}{len(d):>6}{np.median(d):>8.2f}{np.percentile(d, 95):>8.2f}{d.max():>8.2f}"
              f"{(d > VOICE_IN_DOMAIN).mean():>9.1%}")
    tv = sorted((args.shared / "media" / "tv").glob("*.mp4"))
    others = [REPO / "affectllm" / "assets" / "examples" / "astronaut.mp4", args.shared / "media" / "speech" / "jfk.flac"]
    for name, d in clip_distances(tv + [p for p in others if p.is_file()], expert).items():
        print(f"{name:<28}{1:>6}{d:>8.2f}{'':>16}{'yes' if d > VOICE_IN_DOMAIN else 'no':>9}")
    print("reproduce: PYTHONPATH=$PWD python bench/voice_domain.py")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
