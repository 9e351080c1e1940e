"""RAVDESS and EmoDB builders: labels from file names, on synthetic trees and on the real ../shared media."""

from __future__ import annotations

from pathlib import Path

from affectllm.instruct import iter_jsonl, validate_file
from affectllm.instruct.builders import BuildSummary, build, get_builder, iter_rows
from affectllm.report import parse_report

RAVDESS = {"01": "neutral", "02": "calm", "03": "happy", "04": "sad", "05": "angry", "06": "fearful",
           "07": "disgusted", "08": "surprised"}
EMODB = {"W": "angry", "L": "bored", "E": "disgusted", "A": "fearful", "F": "happy", "T": "sad", "N": "neutral"}


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x00")
    return path


def test_ravdess_synthetic_tree(tmp_path: Path) -> None:
    touch(tmp_path / "Actor_02" / "03-02-05-02-02-01-02.wav")  # audio-only song, strong, statement 2, actress
    touch(tmp_path / "Actor_01" / "02-01-03-01-01-01-01.mp4")  # video-only
    touch(tmp_path / "Actor_01" / "01-01-08-01-01-01-01.mp4")  # audio-visual
    touch(tmp_path / "Actor_01" / "03-01-09-01-01-01-01.wav")  # emotion code 09 does not exist
    touch(tmp_path / "Actor_01" / "notes.wav")  # not a RAVDESS name: ignored
    summary = BuildSummary(source="ravdess")
    rows = {r["id"]: r for r in iter_rows(get_builder("ravdess"), tmp_path, summary, tasks=["onehot"])}
    assert list(rows) == ["ravdess/01-01-08-01-01-01-01/onehot", "ravdess/02-01-03-01-01-01-01/onehot",
                          "ravdess/03-02-05-02-02-01-02/onehot"]
    av, vo, song = rows.values()
    assert av["labels"] == ["surprised"] and av["video"] == av["audio"]
    assert vo["labels"] == ["happy"] and "audio" not in vo and vo["conversations"][0]["content"].startswith("<video>\n")
    assert song["labels"] == ["angry"] and "video" not in song
    assert song["subtitle"] == "Dogs are sitting by the door."
    assert song["meta"] | {"annotation": None} == {
        "original_label": "angry", "intensity": "strong", "vocal_channel": "song", "statement": "02",
        "repetition": 1, "actor": 2, "gender": "female", "language": "en", "annotation": None}
    assert parse_report(song["conversations"][1]["content"]).explanation == (
        'The woman sings "Dogs are sitting by the door." with strong emotional intensity.')
    assert summary.skipped == {"unknown emotion code": 1}


def test_ravdess_real_fixtures_one_row_per_file(shared: Path, tmp_path: Path) -> None:
    folder = shared / "media" / "ravdess"
    files = sorted(p for p in folder.iterdir() if p.suffix in (".wav", ".mp4"))
    out = tmp_path / "ravdess.jsonl"
    summary = build(get_builder("ravdess"), folder, out, tasks=["onehot"])
    rows = [r for _, r in iter_jsonl(out)]
    assert len(rows) == len(files) == 16 and summary.skipped == {}
    for row, path in zip(rows, files, strict=True):
        assert row["id"] == f"ravdess/{path.stem}/onehot"
        assert row["labels"] == [RAVDESS[path.name[6:8]]]
        media = row.get("video") or row["audio"]
        assert Path(media) == path
    by_stem = {r["id"].split("/")[1]: r for r in rows}
    assert by_stem["01-01-05-02-01-01-01_audio"]["labels"] == ["angry"]
    assert by_stem["01-01-05-02-01-01-01_audio"]["meta"]["intensity"] == "strong"
    assert set(by_stem["01-01-01-01-01-01-01"]) >= {"video", "audio"}  # the real audio-visual clip
    assert validate_file(out, check_media=True) == []


def test_emodb_synthetic_and_unknown_letter(tmp_path: Path) -> None:
    touch(tmp_path / "wav" / "16b10Lb.wav")
    touch(tmp_path / "wav" / "16b10Xb.wav")  # X is no EmoDB emotion
    touch(tmp_path / "wav" / "readme.wav")
    summary = BuildSummary(source="emodb")
    rows = list(iter_rows(get_builder("emodb"), tmp_path, summary, tasks=["ov_labels"]))
    assert len(rows) == 1 and rows[0]["labels"] == ["bored"]
    assert rows[0]["subtitle"] == "Die wird auf dem Platz sein, wo wir sie immer hinlegen."
    assert rows[0]["meta"]["gender"] == "female" and rows[0]["meta"]["original_label"] == "boredom"
    assert summary.skipped == {"unknown emotion code": 1}


def test_emodb_real_fixtures(shared: Path, tmp_path: Path) -> None:
    folder = shared / "media" / "emodb"
    files = sorted(folder.glob("*.wav"))
    out = tmp_path / "emodb.jsonl"
    build(get_builder("emodb"), folder, out, tasks=["onehot"])
    rows = {r["id"].split("/")[1]: r for _, r in iter_jsonl(out)}
    assert len(rows) == len(files) == 10
    for path in files:
        assert rows[path.stem]["labels"] == [EMODB[path.name[5]]]
    assert rows["03a01Wa"]["labels"] == ["angry"] and rows["03a01Wa"]["meta"]["original_label"] == "anger"
    assert rows["03a01Wa"]["subtitle"] == "Der Lappen liegt auf dem Eisschrank."
    assert "bored" in rows["03a01Wa"]["conversations"][0]["content"]  # the EmoDB label set is offered
    assert validate_file(out, check_media=True) == []
