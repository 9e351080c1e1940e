"""Conversation corpora with their own annotation layouts: MELD (CSV) and IEMOCAP (EmoEvaluation files).

MELD: ``{train,dev,test}_sent_emo.csv`` with ``Sr No., Utterance, Speaker, Emotion, Sentiment, Dialogue_ID,
Utterance_ID, Season, Episode, StartTime, EndTime``; clips ``dia{D}_utt{U}.mp4`` anywhere under ROOT (the split's
folder is preferred: train_splits/, dev_splits_complete/, output_repeated_splits_test/).

IEMOCAP: ``Session*/dialog/EmoEvaluation/<dialog>.txt`` lines ``[start - end]<TAB>TURN<TAB>emo<TAB>[v, a, d]``,
audio ``Session*/sentences/wav/<dialog>/<turn>.wav``, transcripts ``Session*/dialog/transcriptions/<dialog>.txt``
(``TURN [start-end]: text``). Mapped to the common 4-class protocol: ang -> angry, hap + exc -> happy, neu, sad;
other labels are skipped (counted). Valence and arousal (1..5 ratings) map to [-1, 1] as (x - 3) / 2.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

from affectllm.instruct.builders._index import iter_csv
from affectllm.instruct.builders.base import BuildContext, Builder
from affectllm.instruct.compose import SourceSample
from affectllm.instruct.labels import IEMOCAP4_LABELS, MELD_LABELS, canonical_label

_MELD_FILES = {"train": "train_sent_emo.csv", "dev": "dev_sent_emo.csv", "test": "test_sent_emo.csv"}
# MELD's CSVs carry Windows-1252 punctuation decoded as C1 control characters.
_CP1252_FIX = str.maketrans({"\x91": "'", "\x92": "'", "\x93": '"', "\x94": '"', "\x85": "...", "\x96": "-",
                             "\x97": "-", "\xa0": " "})


def _meld_split(name: str) -> str | None:
    return next((split for split in _MELD_FILES if name.lower().startswith(split)), None)


class MeldBuilder(Builder):
    name = "meld"
    summary = "MELD (Friends utterances): 7 emotion classes + sentiment, clips dia{D}_utt{U}.mp4"
    layout = "train_sent_emo.csv / dev_sent_emo.csv / test_sent_emo.csv and the split folders of mp4 clips"

    def samples(self, ctx: BuildContext) -> Iterator[SourceSample]:
        if ctx.root.is_file():
            files = [(_meld_split(ctx.root.name) or "train", ctx.root)]
        else:
            found = ((split, ctx.locate([name], required=False)) for split, name in _MELD_FILES.items())
            files = [(split, p) for split, p in found if p is not None]
        if not files:
            raise FileNotFoundError(f"{ctx.root}: found no {', '.join(_MELD_FILES.values())}; point --root at "
                                    "the MELD folder (MELD.Raw) or at one of the CSVs")
        need = [["Utterance"], ["Emotion"], ["Dialogue_ID"], ["Utterance_ID"]]
        optional = [["Speaker"], ["Sentiment"], ["Season"], ["Episode"], ["StartTime"], ["EndTime"]]
        for split, path in files:
            for line, row in iter_csv(path, need, optional):
                where = f"{path.name}:{line}"
                try:
                    stem = f"dia{int(row['Dialogue_ID'])}_utt{int(row['Utterance_ID'])}"
                except ValueError:
                    ctx.skip("malformed row", where, None, "Dialogue_ID / Utterance_ID are not integers")
                    continue
                label = canonical_label(row["Emotion"])
                if label not in MELD_LABELS:
                    ctx.skip("unknown label", where, stem, f"emotion {row['Emotion']!r}")
                    continue
                text = " ".join(row["Utterance"].translate(_CP1252_FIX).split()) or None
                speaker = row["Speaker"] or "The speaker"
                video = ctx.find_media(stem, "video", hint=split)
                yield SourceSample(
                    key=f"{split}/{stem}", source=self.name, where=where, video=video, audio=video,
                    subtitle=text, labels=[label], label_set=list(MELD_LABELS),
                    explanation=f'{speaker} says: "{text}"' if text else "", split=split,
                    meta={"original_label": row["Emotion"], "sentiment": row["Sentiment"] or None,
                          "speaker": row["Speaker"] or None, "season": row["Season"] or None,
                          "episode": row["Episode"] or None, "start": row["StartTime"] or None,
                          "end": row["EndTime"] or None},
                )


_IEMOCAP_LINE = re.compile(r"^\[(\d+(?:\.\d+)?) - (\d+(?:\.\d+)?)\]\t(\S+)\t(\S+)\t\[([^\]]*)\]")
_IEMOCAP_TEXT = re.compile(r"^(\S+) \[[^\]]*\]:\s*(.*)$")
_IEMOCAP_4 = {"ang": "angry", "hap": "happy", "exc": "happy", "neu": "neutral", "sad": "sad"}


def _sessions(root: Path) -> list[Path]:
    if (root / "dialog" / "EmoEvaluation").is_dir():
        return [root]
    return sorted(p for p in root.glob("Session*") if (p / "dialog" / "EmoEvaluation").is_dir())


def _transcripts(path: Path) -> dict[str, str]:
    """One dialog's transcript (a few dozen lines): turn name -> text."""
    out: dict[str, str] = {}
    if path.is_file():
        with open(path, encoding="utf-8", errors="replace") as f:
            for line in f:
                m = _IEMOCAP_TEXT.match(line.strip())
                if m:
                    out[m.group(1)] = m.group(2).strip()
    return out


def _rating(x: float) -> float:
    return max(-1.0, min(1.0, (x - 3.0) / 2.0))


class IemocapBuilder(Builder):
    name = "iemocap"
    summary = "IEMOCAP EmoEvaluation labels, 4-class protocol (hap+exc -> happy), valence/arousal from 1..5"
    layout = "IEMOCAP_full_release/ with Session1..5/dialog/EmoEvaluation/*.txt and Session*/sentences/wav/"

    def samples(self, ctx: BuildContext) -> Iterator[SourceSample]:
        sessions = _sessions(ctx.folder)
        if not sessions:
            raise FileNotFoundError(f"{ctx.root}: no Session*/dialog/EmoEvaluation folders; point --root at "
                                    "IEMOCAP_full_release (or one Session folder)")
        for session in sessions:
            for ev in sorted((session / "dialog" / "EmoEvaluation").glob("*.txt")):
                if ev.name.startswith("."):
                    continue
                dialog = ev.stem
                texts = _transcripts(session / "dialog" / "transcriptions" / f"{dialog}.txt")
                yield from self._dialog(ctx, session, ev, dialog, texts)

    def _dialog(self, ctx: BuildContext, session: Path, ev: Path, dialog: str,
                texts: dict[str, str]) -> Iterator[SourceSample]:
        with open(ev, encoding="utf-8", errors="replace") as f:
            for line_no, line in enumerate(f, start=1):
                if not line.startswith("["):
                    continue  # headers and per-evaluator lines
                where = f"{session.name}/dialog/EmoEvaluation/{ev.name}:{line_no}"
                m = _IEMOCAP_LINE.match(line)
                if not m:
                    ctx.skip("malformed row", where, None, "expected '[start - end]\\tTURN\\temo\\t[v, a, d]'")
                    continue
                start, end, turn, emo, vad = m.groups()
                if emo not in _IEMOCAP_4:
                    ctx.skip("label outside the 4-class protocol", where, turn, f"label {emo!r}")
                    continue
                try:
                    v, a, d = (float(x) for x in vad.split(","))
                except ValueError:
                    ctx.skip("malformed row", where, turn, f"cannot read [v, a, d] from {vad!r}")
                    continue
                wav = session / "sentences" / "wav" / dialog / f"{turn}.wav"
                text = texts.get(turn)
                who = {"F": "woman", "M": "man"}.get(turn.rsplit("_", 1)[-1][:1], "speaker")
                yield SourceSample(
                    key=turn, source=self.name, where=where, audio=wav if wav.is_file() else None,
                    subtitle=text, labels=[_IEMOCAP_4[emo]], label_set=list(IEMOCAP4_LABELS),
                    valence=_rating(v), arousal=_rating(a),
                    explanation=f'The {who} says: "{text}"' if text else "",
                    meta={"original_label": emo, "dominance": _rating(d), "session": session.name,
                          "dialog": dialog, "start": float(start), "end": float(end)},
                )
