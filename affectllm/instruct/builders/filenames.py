"""Corpora whose labels live in the file names: RAVDESS and Berlin EmoDB.

RAVDESS: ``MM-VC-EE-II-SS-RR-AA`` (modality 01 audio-visual / 02 video-only / 03 audio-only, vocal channel 01
speech / 02 song, emotion EE, intensity 01 normal / 02 strong, statement SS, repetition RR, actor AA: odd male,
even female); anything after the seven codes (``_audio``) is ignored. EmoDB: ``SSTTTEV`` (speaker SS, text code
TTT, emotion letter E at the 6th character, version V). Every matching media file under ROOT becomes one sample.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

from affectllm.instruct.builders._index import AUDIO_EXTS, KIND_EXTS
from affectllm.instruct.builders.base import BuildContext, Builder
from affectllm.instruct.compose import SourceSample
from affectllm.instruct.labels import EMODB_EMOTIONS, RAVDESS_EMOTIONS

_RAVDESS_RE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)-(\d\d)(?:[_.-].*)?$")
_RAVDESS_STATEMENTS = {"01": "Kids are talking by the door.", "02": "Dogs are sitting by the door."}
_RAVDESS_ORIGINAL = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry",
                     "06": "fearful", "07": "disgust", "08": "surprised"}

_EMODB_RE = re.compile(r"^(\d\d)([ab]\d\d)([A-Z])([a-z])$")
_EMODB_ORIGINAL = {"W": "anger", "L": "boredom", "E": "disgust", "A": "fear", "F": "happiness",
                   "T": "sadness", "N": "neutral"}
# The ten EmoDB sentences (Burkhardt et al. 2005 documentation).
_EMODB_TEXTS = {
    "a01": "Der Lappen liegt auf dem Eisschrank.",
    "a02": "Das will sie am Mittwoch abgeben.",
    "a04": "Heute abend könnte ich es ihm sagen.",
    "a05": "Das schwarze Stück Papier befindet sich da oben neben dem Holzstück.",
    "a07": "In sieben Stunden wird es soweit sein.",
    "b01": "Was sind denn das für Tüten, die da unter dem Tisch stehen?",
    "b02": "Sie haben es gerade hochgetragen und jetzt gehen sie wieder runter.",
    "b03": "An den Wochenenden bin ich jetzt immer nach Hause gefahren und habe Agnes besucht.",
    "b09": "Ich will das eben wegbringen und dann mit Karl was trinken gehen.",
    "b10": "Die wird auf dem Platz sein, wo wir sie immer hinlegen.",
}
_EMODB_SPEAKERS = {"03": ("male", 31), "08": ("female", 34), "09": ("female", 21), "10": ("male", 32),
                   "11": ("male", 26), "12": ("male", 30), "13": ("female", 32), "14": ("female", 35),
                   "15": ("male", 25), "16": ("female", 31)}


def _media_files(folder: Path, exts: frozenset[str]) -> Iterator[Path]:
    """Media files under ``folder`` in a stable (sorted) order, one folder at a time."""
    if folder.is_file():
        yield folder
        return
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames.sort()
        for name in sorted(filenames):
            if os.path.splitext(name)[1].lower() in exts:
                yield Path(dirpath) / name


def _where(ctx: BuildContext, path: Path) -> str:
    try:
        return path.relative_to(ctx.folder).as_posix()
    except ValueError:
        return str(path)


class RavdessBuilder(Builder):
    name = "ravdess"
    summary = "RAVDESS speech/song clips; emotion, intensity and actor from the file name"
    layout = "any folder tree of MM-VC-EE-II-SS-RR-AA.{wav,mp4} files (e.g. Actor_01/03-01-05-02-01-01-01.wav)"

    def samples(self, ctx: BuildContext) -> Iterator[SourceSample]:
        exts = KIND_EXTS["video"] | AUDIO_EXTS
        for path in _media_files(ctx.root, exts):
            m = _RAVDESS_RE.match(path.stem)
            if not m:
                continue  # not a RAVDESS file name: not part of the corpus
            modality, channel, emo, intensity, statement, repetition, actor = m.groups()
            where = _where(ctx, path)
            if emo not in RAVDESS_EMOTIONS:
                ctx.skip("unknown emotion code", where, path.stem, f"emotion code {emo} is not 01..08")
                continue
            is_video = path.suffix.lower() in KIND_EXTS["video"]
            woman = int(actor) % 2 == 0
            sentence = _RAVDESS_STATEMENTS.get(statement)
            verb = "sings" if channel == "02" else "says"
            level = "strong" if intensity == "02" else "normal"
            explanation = (f'The {"woman" if woman else "man"} {verb} "{sentence}" with {level} emotional '
                           "intensity." if sentence else "")
            yield SourceSample(
                key=path.stem, source=self.name, where=where,
                video=path if is_video else None,
                audio=path if (not is_video or modality == "01") else None,
                subtitle=sentence,
                labels=[RAVDESS_EMOTIONS[emo]], label_set=list(RAVDESS_EMOTIONS.values()),
                explanation=explanation,
                meta={"original_label": _RAVDESS_ORIGINAL[emo], "intensity": level,
                      "vocal_channel": "song" if channel == "02" else "speech", "statement": statement,
                      "repetition": int(repetition), "actor": int(actor), "gender": "female" if woman else "male",
                      "language": "en"},
            )


class EmoDBBuilder(Builder):
    name = "emodb"
    summary = "Berlin EmoDB (German acted speech); emotion = 6th character of the file name"
    layout = "a folder (usually wav/) of SSTTTEV.wav files, e.g. 03a01Wa.wav"

    def samples(self, ctx: BuildContext) -> Iterator[SourceSample]:
        for path in _media_files(ctx.root, AUDIO_EXTS):
            m = _EMODB_RE.match(path.stem)
            if not m:
                continue
            speaker, text_code, emo, version = m.groups()
            where = _where(ctx, path)
            if emo not in EMODB_EMOTIONS:
                ctx.skip("unknown emotion code", where, path.stem, f"emotion letter {emo} is not one of WLEAFTN")
                continue
            gender, age = _EMODB_SPEAKERS.get(speaker, (None, None))
            text = _EMODB_TEXTS.get(text_code)
            who = {"male": "man", "female": "woman"}.get(gender or "", "speaker")
            yield SourceSample(
                key=path.stem, source=self.name, where=where, audio=path, subtitle=text,
                labels=[EMODB_EMOTIONS[emo]], label_set=list(EMODB_EMOTIONS.values()),
                explanation=f'The {who} says in German: "{text}"' if text else "",
                meta={"original_label": _EMODB_ORIGINAL[emo], "speaker": speaker, "gender": gender, "age": age,
                      "text_code": text_code, "version": version, "language": "de"},
            )
