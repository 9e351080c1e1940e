"""Build the starter instruction set: real corpora split by speaker, the labelled faces, a few marked synthetic rows.

    python instruct_data/build_starter.py --voice-head FOLD_HEAD [--corpora ../shared/corpora] [--out DIR]
        [--max-train-rows 200] [--max-heldout-rows 54] [--synthetic 16] [--face-speech 8] [--limit N]

Writes DIR/train.jsonl, DIR/heldout.jsonl and DIR/composition.json (default DIR:
``$AFFECTLLM_HOME/instruct/starter``). Held-out rows are the clips of one speaker fold
(``affectllm.instruct.labelled_corpora``: HELDOUT_FOLD), train rows every other speaker's; both are capped to a
(corpus, class)-balanced subset (the LLM stage is the slow one: ~25 s per 4-row step on 2 cores). Every target is
a grounded report whose explanation reasons over the cues measured on the clip (``affectllm.instruct.reasoning``:
each channel cited, conflicts weighed, missing channels said, varied phrasings) by the same
experts the model sees at inference, with ``--voice-head``: a voice head trained WITHOUT the held-out speakers
(``train/train_voice_expert.py --fold-head 0``), so no cue comes from a head that heard a held-out label.
What is synthetic is recorded per row (``meta.synthetic``): espeak rows, and the ``corpus+face`` rows that pair a
labelled face photo with a training speaker's clip of the same class (``--face-speech`` per face) so the
explanation learns to cite the face when there is one.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections import Counter
from pathlib import Path

from affectllm.defaults import DEFAULT_PROMPT
from affectllm.instruct.grounded import EMOTIONS
from affectllm.instruct.io import write_jsonl
from affectllm.instruct.reasoning import grounded_explanation
from affectllm.instruct.starter import corpus_samples, face_samples, face_speech_samples, synthetic_samples
from affectllm.paths import cache_dir, shared_dir
from affectllm.report import format_report

PLACEHOLDER = {"audio": "<audio>", "video": "<video>", "image": "<image>"}
MAX_TRAIN_ROWS = 200  # + 4 faces + 32 face+speech + 16 synthetic = 252 rows: ~1.3 epochs of 80 steps x 4
MAX_HELDOUT_ROWS = 54  # ~18 per corpus, 2-3 clips per (corpus, class) cell of the held-out speakers
SYNTHETIC_ROWS = 16
FACE_SPEECH_ROWS = 8  # per labelled face photo (4): 32 rows with face, voice and words together


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--shared", type=Path, default=shared_dir())
    parser.add_argument("--corpora", type=Path, default=None, help="default: SHARED/corpora")
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--voice-head", type=Path, required=True,
                        help="voice-expert safetensors trained without the held-out speakers (a fold head)")
    parser.add_argument("--max-train-rows", type=int, default=MAX_TRAIN_ROWS)
    parser.add_argument("--max-heldout-rows", type=int, default=MAX_HELDOUT_ROWS)
    parser.add_argument("--synthetic", type=int, default=SYNTHETIC_ROWS, help="synthetic training rows kept")
    parser.add_argument("--face-speech", type=int, default=FACE_SPEECH_ROWS,
                        help="videos per labelled face photo with a same-class training-speaker clip's speech")
    parser.add_argument("--limit", type=int, default=None,
                        help="smoke run: at most N train and N held-out corpus rows, 1 face, 1 synthetic row")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    if args.shared is None:
        print("error: ../shared not found; pass --shared PATH or set AFFECTLLM_SHARED", file=sys.stderr)
        return 1
    corpora = (args.corpora or args.shared / "corpora").resolve()  # rows name their media absolutely
    if not args.voice_head.is_file():
        print(f"error: {args.voice_head}: no voice head; make one with `python train/train_voice_expert.py "
              f"--fold-head 0 --head-out {args.voice_head}`", file=sys.stderr)
        return 1
    out = args.out or cache_dir("instruct", "starter")
    out.mkdir(parents=True, exist_ok=True)
    max_train, max_held, n_synth = args.max_train_rows, args.max_heldout_rows, args.synthetic
    per_face = args.face_speech
    if args.limit is not None:
        max_train, max_held, n_synth = min(max_train, args.limit), min(max_held, args.limit), min(n_synth, 1)
        per_face = min(per_face, 1)

    from affectllm.perception.pipeline import Experts, perceive
    from affectllm.perception.voice import VoiceExpert

    experts = Experts(whisper="base")
    experts._voice = VoiceExpert.load(args.voice_head)  # never heard the held-out speakers
    real, split_info = corpus_samples(corpora, max_train, max_held, args.seed)
    faces = list(face_samples(args.shared, out))[: 1 if args.limit is not None else None]
    paired = face_speech_samples(args.shared, real, out / "videos", per_face)[: 1 if args.limit is not None else None]
    samples = [*real, *faces, *paired, *synthetic_samples(out, args.shared, n_synth)]
    rows: dict[str, list[dict]] = {"train": [], "heldout": []}
    t0 = time.perf_counter()
    for i, s in enumerate(samples):
        p = perceive(s.path, experts=experts, num_frames=8)
        names, valence, arousal = EMOTIONS[s.label]
        explanation = grounded_explanation(p, s.label, key=s.id)  # the composer's; phrasings picked by the id
        rows[s.split].append({
            "id": s.id, s.kind: str(s.path),
            "conversations": [{"role": "user", "content": f"{PLACEHOLDER[s.kind]}\n{DEFAULT_PROMPT}"},
                              {"role": "assistant", "content": format_report(names, explanation, valence, arousal)}],
            "task": "describe", "source": s.source, "labels": names, "valence": valence, "arousal": arousal,
            "description": explanation, "split": s.split,
            "meta": {"synthetic": s.synthetic, "class": s.label, "corpus": s.source, **s.meta},
        })
        print(f"[{i + 1}/{len(samples)}] {s.split:7s} {s.id}: {s.label} | {p.transcript!r} "
              f"({(time.perf_counter() - t0) / (i + 1):.1f} s/clip)", flush=True)
    for split, r in rows.items():
        write_jsonl(out / f"{split}.jsonl", r)
    composition = {split: {"rows": len(r), "by_source": dict(Counter(x["source"] for x in r)),
                           "by_class": dict(Counter(x["meta"]["class"] for x in r)),
                           "synthetic": sum(x["meta"]["synthetic"] for x in r)} for split, r in rows.items()}
    composition["split"] = {**split_info, "voice_head": args.voice_head.name,
                            "perceive_s_per_clip": round((time.perf_counter() - t0) / max(len(samples), 1), 2)}
    (out / "composition.json").write_text(json.dumps(composition, indent=2))
    print(json.dumps({"out": str(out), **composition}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
