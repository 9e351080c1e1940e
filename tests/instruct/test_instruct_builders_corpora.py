"""MERR, MELD and IEMOCAP builders on tiny synthetic copies of their layouts."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from affectllm.instruct import iter_jsonl, validate_file
from affectllm.instruct.builders import BuildSummary, build, get_builder, iter_rows
from affectllm.report import parse_report


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")
    return path


# --- MERR -------------------------------------------------------------------------------------------------


def merr_root(tmp_path: Path) -> Path:
    root = tmp_path / "MERR"
    fine = {
        "sample_00000007": {"AU_list": ["AU12"], "pseu_emotion": "happy", "peak_index": "3",
                            "smp_reason_caption": "She smiles with raised cheeks. Her tone is cheerful."},
        "sample_00000008": {"smp_reason_caption": "He frowns; his voice is harsh."},  # label from the .txt
        "sample_00000009": "not an object",
        "sample_00000010": {"pseu_emotion": "surprise", "caption": "Eyes wide open, jaw dropped."},
        "sample_00000011": {"pseu_emotion": "happy"},  # no clip on disk
    }
    root.mkdir(parents=True)
    (root / "MERR_fine_grained.json").write_text(json.dumps(fine, indent=1), encoding="utf-8")
    (root / "MERR_fine_grained.txt").write_text("sample_00000008 40 angry\nbroken\n", encoding="utf-8")
    with (root / "transcription_en_all.csv").open("w", encoding="utf-8", newline="") as f:
        csv.writer(f).writerows([["name", "sentence"], ["sample_00000007", "I got the job!"]])
    for i in (7, 8, 9, 10):
        touch(root / "video" / f"sample_{i:08d}.mp4")
    return root


def test_merr_streams_the_json_and_joins_labels_and_transcripts(tmp_path: Path) -> None:
    root = merr_root(tmp_path)
    out = tmp_path / "merr.jsonl"
    summary = build(get_builder("merr"), root, out)
    rows = {r["id"]: r for _, r in iter_jsonl(out)}
    assert validate_file(out, check_media=True) == []
    r7 = rows["merr/sample_00000007/describe"]
    assert (r7["labels"], r7["subtitle"], r7["meta"]["granularity"]) == (["happy"], "I got the job!", "fine")
    assert parse_report(r7["conversations"][1]["content"]).explanation == r7["description"]
    assert "contempt" in rows["merr/sample_00000007/onehot"]["conversations"][0]["content"]  # the 9 MERR labels
    assert rows["merr/sample_00000008/ov_labels"]["labels"] == ["angry"]
    assert rows["merr/sample_00000010/ov_labels"]["labels"] == ["surprised"]
    assert rows["merr/sample_00000010/alignment"]["description"] == "Eyes wide open, jaw dropped."
    assert summary.skipped == {"malformed row": 2, "media not found": 1}
    assert summary.samples_used == 3


def test_merr_accepts_the_json_as_root_and_a_top_level_list(tmp_path: Path) -> None:
    root = tmp_path / "m"
    touch(root / "a1.mp4")
    (root / "custom.json").write_text(json.dumps([{"name": "a1", "pseu_emotion": "sad", "caption": "Tears."},
                                                  {"caption": "no name"}]), encoding="utf-8")
    summary = BuildSummary(source="merr")
    rows = list(iter_rows(get_builder("merr"), root / "custom.json", summary, tasks=["alignment", "ov_labels"]))
    assert [(r["id"], r["meta"]["granularity"]) for r in rows] == [("merr/a1/ov_labels", "fine"),
                                                                   ("merr/a1/alignment", "fine")]
    assert summary.skipped == {"malformed row": 1}


# --- MELD -------------------------------------------------------------------------------------------------

MELD_HEADER = ["Sr No.", "Utterance", "Speaker", "Emotion", "Sentiment", "Dialogue_ID", "Utterance_ID", "Season",
               "Episode", "StartTime", "EndTime"]


def meld_csv(path: Path, rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(MELD_HEADER)
        w.writerows(rows)


def test_meld_splits_labels_and_clip_lookup(tmp_path: Path) -> None:
    root = tmp_path / "MELD.Raw"
    root.mkdir()
    meld_csv(root / "train_sent_emo.csv", [
        ["1", "Oh my God, you\x92re here!", "Rachel", "surprise", "positive", "0", "0", "8", "21", "0:0:1", "0:0:2"],
        ["2", "Fine.", "Ross", "anger", "negative", "0", "1", "8", "21", "0:0:3", "0:0:4"],
        ["3", "Hmm.", "Joey", "confusion", "neutral", "0", "2", "8", "21", "0:0:5", "0:0:6"],
        ["4", "Yes.", "Joey", "joy", "positive", "x", "3", "8", "21", "", ""],
        ["5", "No clip.", "Joey", "neutral", "neutral", "9", "9", "8", "21", "", ""],
    ])
    meld_csv(root / "dev_sent_emo.csv", [["1", "Hi.", "Monica", "joy", "positive", "0", "0", "1", "1", "", ""]])
    for split_dir in ("train_splits", "dev_splits_complete"):
        touch(root / split_dir / "dia0_utt0.mp4")
    touch(root / "train_splits" / "dia0_utt1.mp4")
    out = root / "meld.jsonl"
    summary = build(get_builder("meld"), root, out, tasks=["onehot"])
    rows = {r["id"]: r for _, r in iter_jsonl(out)}
    assert list(rows) == ["meld/train/dia0_utt0/onehot", "meld/train/dia0_utt1/onehot", "meld/dev/dia0_utt0/onehot"]
    r0 = rows["meld/train/dia0_utt0/onehot"]
    assert (r0["labels"], r0["split"], r0["video"]) == (["surprised"], "train", "train_splits/dia0_utt0.mp4")
    assert r0["subtitle"] == "Oh my God, you're here!" and r0["meta"]["sentiment"] == "positive"
    assert parse_report(r0["conversations"][1]["content"]).explanation == 'Rachel says: "Oh my God, you\'re here!"'
    assert rows["meld/dev/dia0_utt0/onehot"]["video"] == "dev_splits_complete/dia0_utt0.mp4"
    assert rows["meld/train/dia0_utt1/onehot"]["labels"] == ["angry"]
    assert summary.skipped == {"unknown label": 1, "malformed row": 1, "media not found": 1}
    assert validate_file(out, check_media=True) == []


# --- IEMOCAP ----------------------------------------------------------------------------------------------

EMO_EVAL = """% [START_TIME - END_TIME] TURN_NAME EMOTION [V, A, D]

[6.2901 - 8.2357]\tSes01F_impro01_F000\tneu\t[2.5000, 2.5000, 2.5000]
C-E2:\tNeutral;\t()
A-E3:\tval 3; act 2; dom  2;\t()

[10.0100 - 11.3925]\tSes01F_impro01_M001\texc\t[4.0000, 4.5000, 3.0000]
[14.8872 - 18.0175]\tSes01F_impro01_F002\tfru\t[2.0000, 3.5000, 3.5000]
[20.0000 - 21.0000]\tSes01F_impro01_F003\tang\t[1.0000, 5.0000, 4.0000]
[22.0000 - 23.0000]\tSes01F_impro01_F004\tsad\t[1.5000, broken]
[24.0000 - 25.0000]\tSes01F_impro01_M005\tsad
"""


def test_iemocap_four_class_protocol_and_ratings(tmp_path: Path) -> None:
    root = tmp_path / "IEMOCAP_full_release"
    ses = root / "Session1"
    (ses / "dialog" / "EmoEvaluation").mkdir(parents=True)
    (ses / "dialog" / "EmoEvaluation" / "Ses01F_impro01.txt").write_text(EMO_EVAL, encoding="utf-8")
    (ses / "dialog" / "transcriptions").mkdir(parents=True)
    (ses / "dialog" / "transcriptions" / "Ses01F_impro01.txt").write_text(
        "Ses01F_impro01_F000 [006.2901-008.2357]: Excuse me.\nSes01F_impro01_M001 [010.0100-011.3925]: Yes!\n",
        encoding="utf-8")
    for turn in ("F000", "M001", "F002", "F004", "M005"):  # F003 has no wav
        touch(ses / "sentences" / "wav" / "Ses01F_impro01" / f"Ses01F_impro01_{turn}.wav")
    out = tmp_path / "iemocap.jsonl"
    summary = build(get_builder("iemocap"), root, out, tasks=["valence", "onehot"])
    rows = {r["id"]: r for _, r in iter_jsonl(out)}
    assert validate_file(out, check_media=True) == []
    f0 = rows["iemocap/Ses01F_impro01_F000/valence"]
    assert (f0["labels"], f0["valence"], f0["arousal"], f0["subtitle"]) == (["neutral"], -0.25, -0.25, "Excuse me.")
    rep = parse_report(f0["conversations"][1]["content"])
    assert (rep.valence, rep.arousal, rep.explanation) == (-0.25, -0.25, 'The woman says: "Excuse me."')
    m1 = rows["iemocap/Ses01F_impro01_M001/onehot"]
    assert (m1["labels"], m1["valence"], m1["arousal"], m1["meta"]["original_label"]) == (["happy"], 0.5, 0.75, "exc")
    assert "angry, happy, neutral, sad" in m1["conversations"][0]["content"]
    assert len(rows) == 4
    assert summary.skipped == {"label outside the 4-class protocol": 1, "media not found": 1, "malformed row": 2}


def test_iemocap_without_sessions_says_where_to_point(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no Session\\*/dialog/EmoEvaluation"):
        list(iter_rows(get_builder("iemocap"), tmp_path, BuildSummary(source="iemocap")))
