"""The starter instruction set: everything the embedded default can be trained on without internet.

Real, labelled speech from ``../shared/corpora`` (RAVDESS, EmoDB, CASIA; split by speaker, see
``affectllm.instruct.labelled_corpora``), the labelled face crops of ``../shared/media/faces``, plus a few
synthetic clips made here and marked ``synthetic`` in every row:

- ``espeak``: English sentences written for each emotion, spoken by espeak-ng with emotion-typical rate,
  pitch and loudness (the words carry the emotion; prosody carries arousal);
- ``espeak+face``: short videos pairing a labelled face photo (still frames) with a synthetic sentence of the
  same emotion;
- ``corpus+face``: the same face photos paired with a real training-speaker corpus clip of the same class, so
  the language model sees face, voice and words measured together and learns to cite all three (the corpora
  are audio only, and the only labelled faces offline are the four photos).

Each row's target is ``grounded_report``: labels, valence, arousal and an explanation composed from the cues
the experts measured on that clip. Held-out rows (the clips of held-out speakers) are never trained on.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from affectllm.media.writing import write_clip

SENTENCES: dict[str, list[str]] = {
    "neutral": ["The meeting is on Tuesday at three o'clock.", "The train leaves from platform four.",
                "Please put the files on the second shelf.", "The report has twelve pages in total.",
                "The shop opens at nine in the morning.", "We need two more chairs for the table.",
                "The bus stops at the corner of the street.", "The form goes in the blue folder."],
    "calm": ["Everything is fine, take your time and relax.", "It is a quiet evening and I feel at peace.",
             "Let's sit down and breathe slowly together.", "There is no hurry, we can rest here a while.",
             "The lake is still and the air is soft and warm.", "I am comfortable and content right now.",
             "Just relax, everything will be all right.", "We have the whole afternoon to rest."],
    "happy": ["I can't believe it, we won the game!", "This is the best day of my life, I'm so happy!",
              "Wonderful news, she said yes!", "I love this place, it makes me so glad!",
              "We did it, I am thrilled and delighted!", "What a great party, I'm having so much fun!",
              "Thank you so much, this gift is amazing!", "I'm so happy to see you again!"],
    "sad": ["I miss her so much, nothing feels right anymore.", "He is gone and I will never see him again.",
            "I failed again, I feel so empty and alone.", "It breaks my heart to say goodbye.",
            "Nobody came to my birthday, I just want to cry.", "I lost my job today and I feel hopeless.",
            "Our old dog died this morning, I'm so sad.", "I am sorry, I feel so lonely without you."],
    "angry": ["This is completely unfair, I am furious!", "How dare you lie to me again!",
              "Stop it right now, I hate this!", "You broke it and you don't even care, I'm so angry!",
              "I told you a hundred times, this is outrageous!", "Get out of my room, I'm sick of you!",
              "That is unacceptable, I am really mad!", "Don't you ever speak to me like that again!"],
    "fearful": ["Please don't go in there, I'm scared.", "Did you hear that noise? I'm afraid someone is here.",
                "I'm terrified, what if we don't make it?", "Help me, something is following us!",
                "I'm so nervous, my hands are shaking.", "Something is wrong, I'm really frightened.",
                "Don't leave me alone in the dark, I'm afraid.", "I'm worried something terrible will happen."],
    "disgusted": ["Ugh, that smells disgusting.", "Gross, there is a hair in my soup.",
                  "That is revolting, I can't even look at it.", "Yuck, the milk has gone sour.",
                  "How disgusting, the floor is covered in slime.", "Eww, don't touch that, it's filthy.",
                  "That's nasty, the fridge is full of mould.", "Ugh, I feel sick just thinking about it."],
    "surprised": ["Wow, I did not expect that at all!", "What? You're here? I can't believe it!",
                  "Oh my goodness, really? That's a surprise!", "No way, you bought a house?",
                  "Whoa, where did that come from?", "Really? She's the winner? Amazing!",
                  "Oh, I had no idea you could sing!", "Wait, what? It's already finished?"],
}
# espeak-ng settings per emotion: (words per minute, pitch 0-99, amplitude 0-200)
PROSODY = {"neutral": (165, 50, 100), "calm": (135, 40, 70), "happy": (185, 72, 140), "sad": (115, 28, 60),
           "angry": (190, 55, 190), "fearful": (205, 78, 110), "disgusted": (140, 38, 120),
           "surprised": (180, 88, 160)}
VOICES = ["en-us", "en-gb", "en-us+f3", "en-gb+f4"]
HELDOUT_SENTENCES = 2  # the last two sentences of each emotion are held out
CANVAS_H, CANVAS_W = 360, 480  # the synthetic face videos' frames


@dataclass
class StarterSample:
    id: str
    kind: str  # audio | video | image
    path: Path
    label: str
    source: str
    split: str  # train | heldout
    synthetic: bool
    meta: dict = field(default_factory=dict)


def _espeak(text: str, voice: str, emotion: str, out: Path) -> None:
    wpm, pitch, amp = PROSODY[emotion]
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise RuntimeError("espeak-ng is needed for the synthetic part of the starter set: "
                           "`apt-get install espeak-ng` (Debian/Ubuntu) or `brew install espeak-ng`")
    subprocess.run([exe, "-v", voice, "-s", str(wpm), "-p", str(pitch), "-a", str(amp), "-w", str(out), text],
                   check=True, capture_output=True)


def synth_speech(out_dir: Path) -> Iterator[StarterSample]:
    out_dir.mkdir(parents=True, exist_ok=True)
    for emotion, sentences in SENTENCES.items():
        for i, text in enumerate(sentences):
            heldout = i >= len(sentences) - HELDOUT_SENTENCES
            voices = VOICES[:1] if heldout else VOICES[i % 2::2]  # 2 voices per train sentence
            for voice in voices:
                sid = f"espeak-{emotion}-{i}-{voice.replace('+', '_')}"
                path = out_dir / f"{sid}.wav"
                if not path.exists():
                    _espeak(text, voice, emotion, path)
                yield StarterSample(sid, "audio", path, emotion, "synthetic-espeak",
                                    "heldout" if heldout else "train", True, {"text": text, "voice": voice})


def face_crops(shared: Path) -> dict[str, np.ndarray]:
    """The labelled faces of emotion_classification.jpg (label -> RGB crop with some context)."""
    from PIL import Image

    from affectllm.instruct.fixtures import _GRID

    grid = np.asarray(Image.open(shared / "media" / "faces" / "emotion_classification.jpg").convert("RGB"))
    return {label: grid[y0:y1, x0:x1] for _, label, (x0, y0, x1, y1), _ in _GRID}


def write_face_video(face: np.ndarray, wav: Path, out: Path, fps: int = 10) -> None:
    """A still face (placed on a grey background, slightly moving) with the speech of ``wav`` as its audio."""
    import cv2
    import soundfile as sf

    audio, sr = sf.read(str(wav), dtype="float32", always_2d=True)
    audio = audio.mean(1)
    face = cv2.resize(face, (200, int(200 * face.shape[0] / face.shape[1])))
    n_frames = max(1, int(len(audio) / sr * fps))
    # the clips the starter was trained on leave the audio timestamps to the encoder
    write_clip(out, _face_frames(face, n_frames), audio, fps=fps, sample_rate=sr, size=(CANVAS_W, CANVAS_H),
               timestamp_audio=False)


def _face_frames(face: np.ndarray, n_frames: int) -> Iterator[np.ndarray]:
    """``n_frames`` canvases ``[360, 480, 3]``: the face on grey, swaying a few pixels sideways."""
    for i in range(n_frames):
        frame = np.full((CANVAS_H, CANVAS_W, 3), 128, np.uint8)
        dx = int(6 * np.sin(i / 4))
        y0, x0 = 60, 140 + dx
        frame[y0:y0 + face.shape[0], x0:x0 + face.shape[1]] = face[: CANVAS_H - y0, : CANVAS_W - x0]
        yield frame


def synth_face_videos(shared: Path, speech: list[StarterSample], out_dir: Path) -> Iterator[StarterSample]:
    out_dir.mkdir(parents=True, exist_ok=True)
    faces = face_crops(shared)
    for label, face in faces.items():
        for s in [s for s in speech if s.label == label and s.meta["voice"] == VOICES[0]]:
            sid = f"face-{label}-{s.id}"
            path = out_dir / f"{sid}.mp4"
            if not path.exists():
                write_face_video(face, s.path, path)
            yield StarterSample(sid, "video", path, label, "synthetic-espeak+face", s.split, True,
                                {**s.meta, "face": f"emotion_classification.jpg:{label}"})


def face_samples(shared: Path, out_dir: Path) -> Iterator[StarterSample]:
    """The four labelled face crops (real photos; the only labelled faces offline), trained on."""
    from PIL import Image

    faces_dir = out_dir / "faces"
    faces_dir.mkdir(parents=True, exist_ok=True)
    for label, crop in face_crops(shared).items():
        path = faces_dir / f"{label}.png"
        h, w = crop.shape[:2]
        canvas = np.full((h * 2, w * 2, 3), 128, np.uint8)  # context around the tight crop helps the detector
        canvas[h // 2:h // 2 + h, w // 2:w // 2 + w] = crop
        Image.fromarray(canvas).save(path)
        yield StarterSample(f"face-{label}", "image", path, label, "faces", "train", False)


def corpus_samples(corpora: Path, max_train: int | None, max_heldout: int | None,
                   seed: int = 0) -> tuple[list[StarterSample], dict]:
    """The real labelled clips of ``corpora/labels.csv``, split by speaker (``labelled_corpora``).

    held-out = the speakers of fold ``HELDOUT_FOLD``, train = every other speaker; each side is capped to a
    (corpus, class)-balanced subset. Returns the samples and a description of the split (speakers, counts).
    """
    from affectllm.instruct.labelled_corpora import (
        FOLDS,
        HELDOUT_FOLD,
        balanced_cap,
        heldout_speakers,
        read_labels,
        split_by_speaker,
    )

    rows = read_labels(corpora)
    train, held = split_by_speaker(rows, HELDOUT_FOLD, FOLDS)
    train_c, held_c = balanced_cap(train, max_train, seed), balanced_cap(held, max_heldout, seed)
    out = []
    for split, chosen in (("train", train_c), ("heldout", held_c)):
        for r in chosen:
            path = corpora / r["path"]
            sid = f"{r['corpus']}-{Path(r['path']).with_suffix('').as_posix().replace('/', '-')}"
            out.append(StarterSample(sid, "audio", path, r["label"], r["corpus"], split, False,
                                     {"speaker": r["speaker"], "licence": r.get("licence", "")}))
    info = {"folds": FOLDS, "heldout_fold": HELDOUT_FOLD, "heldout_speakers": heldout_speakers(rows),
            "available": {"train": len(train), "heldout": len(held)},
            "used": {"train": len(train_c), "heldout": len(held_c)}}
    return out, info


def face_speech_samples(shared: Path, corpus: list[StarterSample], out_dir: Path,
                        per_face: int) -> list[StarterSample]:
    """Up to ``per_face`` videos per labelled face photo, each with the speech of a training-speaker corpus clip of
    the same class (corpora taken in turn); marked synthetic (a composite of two real recordings)."""
    if per_face <= 0:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    out: list[StarterSample] = []
    for label, face in face_crops(shared).items():
        same_class = [s for s in corpus if s.split == "train" and s.label == label]
        for s in take_in_turn(same_class, lambda x: x.source, per_face):
            sid = f"face-{label}-{s.id}"
            path = out_dir / f"{sid}.mp4"
            if not path.exists():
                write_face_video(face, s.path, path)
            out.append(StarterSample(sid, "video", path, label, "corpus+face", "train", True,
                                     {**s.meta, "face": f"emotion_classification.jpg:{label}", "speech": s.id}))
    return out


def synthetic_samples(out_dir: Path, shared: Path, n: int) -> list[StarterSample]:
    """``n`` synthetic training rows (espeak speech and face videos, one class after another); none held out.

    The real corpora now carry the speech; a few synthetic rows are kept for what the corpora lack: faces
    with sound (every corpus clip is audio only) and English words that carry the emotion.
    """
    if n <= 0:
        return []
    speech = [s for s in synth_speech(out_dir / "espeak") if s.split == "train"]
    videos = [v for v in synth_face_videos(shared, speech, out_dir / "videos") if v.split == "train"]
    return take_in_turn([*videos, *speech], lambda x: x.label, n)  # videos first: faces are what corpora lack


def take_in_turn(samples: list[StarterSample], group: Callable[[StarterSample], str],
                 n: int) -> list[StarterSample]:
    """Up to ``n`` samples, one from each group (sorted by name) in turn, each group in its given order."""
    groups: dict[str, list[StarterSample]] = {}
    for s in samples:
        groups.setdefault(group(s), []).append(s)
    picked: list[StarterSample] = []
    while len(picked) < n and any(groups.values()):
        for name in sorted(groups):
            if groups[name] and len(picked) < n:
                picked.append(groups[name].pop(0))
    return picked
