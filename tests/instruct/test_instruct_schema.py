"""Schema validation: good rows pass; every kind of bad row is rejected with its line number and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from affectllm.instruct import check_row, validate_file, validate_row
from affectllm.report import format_report


def good_row(**over: object) -> dict:
    row = {
        "id": "x/1/describe",
        "video": "clip.mp4",
        "subtitle": "We won!",
        "conversations": [
            {"role": "user", "content": "<video>\nSubtitle: \"We won!\"\nWhich emotions?"},
            {"role": "assistant", "content": format_report(["happy", "excited"], "She cheers.", 0.6, 0.4)},
        ],
        "task": "describe",
        "source": "test",
        "labels": ["happy", "excited"],
        "valence": 0.6,
        "arousal": 0.4,
        "description": "She cheers.",
    }
    row.update(over)
    return row


def fields(row: dict, line: int = 7, **kw: object) -> list[tuple[int, str]]:
    return [(e.line, e.field) for e in check_row(row, line, **kw)]


def test_good_row_has_no_errors() -> None:
    assert validate_row(good_row(), 1) == []


def test_error_strings_name_line_and_field() -> None:
    errs = validate_row(good_row(valence=1.5), 12)
    assert errs == ["line 12, field 'valence': 1.5 is outside [-1, 1]; rescale (e.g. a 1..5 rating v -> (v - 3) / 2)"]


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"id": ""}, "id"),
        ({"id": 3}, "id"),
        ({"task": "caption"}, "task"),
        ({"source": None}, "source"),
        ({"labels": []}, "labels"),
        ({"labels": ["happy", 2]}, "labels"),
        ({"valence": "high"}, "valence"),
        ({"arousal": float("nan")}, "arousal"),
        ({"valence": True}, "valence"),
        ({"meta": [1]}, "meta"),
        ({"subtitle": 5}, "subtitle"),
        ({"description": "  "}, "description"),
    ],
)
def test_bad_field_is_named(change: dict, field: str) -> None:
    assert (7, field) in fields(good_row(**change))


def test_unknown_key_suggests_the_right_name() -> None:
    row = good_row()
    row["lables"] = row.pop("labels")
    errs = validate_row(row, 3)
    assert "line 3, field 'lables': unknown field; did you mean 'labels'?" in errs
    assert any("field 'labels': task 'describe' needs" in e for e in errs)


def test_missing_required_fields() -> None:
    row = good_row()
    del row["id"], row["source"]
    assert {(7, "id"), (7, "source")} <= set(fields(row))


def test_needs_media_or_subtitle() -> None:
    row = good_row(conversations=[{"role": "user", "content": "Which emotions?"},
                                  {"role": "assistant", "content": format_report(["happy"], "x")}],
                   labels=["happy"])
    del row["video"], row["subtitle"], row["valence"], row["arousal"]
    assert (7, "video/audio/image/subtitle") in fields(row)


def conv(*turns: tuple[str, str]) -> list[dict[str, str]]:
    return [{"role": r, "content": c} for r, c in turns]


REPORT = format_report(["happy", "excited"], "She cheers.", 0.6, 0.4)


@pytest.mark.parametrize(
    ("turns", "field", "needle"),
    [
        (conv(("user", "<video> hi")), "conversations", "must end with an assistant turn"),
        (conv(("assistant", REPORT)), "conversations[0].role", "expected 'user'"),
        (conv(("user", "<video>"), ("assistant", REPORT), ("system", "s"), ("assistant", "x")),
         "conversations[2].role", "a system turn may only come first"),
        (conv(("user", "<video> a"), ("user", "b"), ("assistant", REPORT)), "conversations[1].role", "alternate"),
        (conv(("user", "hi"), ("assistant", REPORT)), "conversations", "no <video> placeholder"),
        (conv(("user", "<video><video>"), ("assistant", REPORT)), "conversations", "appears 2 times"),
        (conv(("user", "<video><audio>"), ("assistant", REPORT)), "conversations", "has no 'audio' path"),
        (conv(("user", "<video>"), ("assistant", REPORT + "<image>")), "conversations[1].content",
         "may only appear in a user turn"),
        (conv(("user", "<video>"), ("assistant", "")), "conversations[1].content", "non-empty"),
        (conv(("user", "<video>"), ("bot", REPORT)), "conversations[1].role", "not a role"),
        (conv(("user", "<video>"), ("assistant", "Happy and excited.")), "conversations", "format_report"),
        (conv(("user", "<video>"), ("assistant", format_report(["sad"], "x", 0.6, 0.4))), "conversations",
         "labels ['sad']"),
        (conv(("user", "<video>"), ("assistant", format_report(["happy", "excited"], "x", -0.2))),
         "conversations", "valence"),
    ],
)
def test_conversation_errors(turns: list[dict[str, str]], field: str, needle: str) -> None:
    errs = [e for e in check_row(good_row(conversations=turns), 5) if e.field == field]
    assert errs and any(needle in e.message for e in errs), [str(e) for e in check_row(good_row(conversations=turns), 5)]


def test_system_turn_first_is_fine() -> None:
    row = good_row(conversations=[{"role": "system", "content": "You are AffectLLM."}, *good_row()["conversations"]])
    assert validate_row(row, 1) == []


def test_onehot_needs_one_label_in_the_set() -> None:
    report = format_report(["happy"], "x")
    row = good_row(task="onehot", labels=["happy"], label_set=["angry", "sad"],
                   conversations=conv(("user", "<video> pick one"), ("assistant", report)))
    del row["valence"], row["arousal"]
    errs = validate_row(row, 2)
    assert errs == ["line 2, field 'labels': 'happy' is not in label_set ['angry', 'sad']"]
    row["label_set"] = ["happy", "sad"]
    assert validate_row(row, 2) == []


def test_followup_needs_two_answers_and_alignment_needs_description() -> None:
    row = good_row(task="followup")
    assert any("at least two assistant turns" in e for e in validate_row(row, 1))
    row = good_row(task="alignment", conversations=conv(("user", "<video> Describe the clip."), ("assistant", "A man.")))
    del row["description"]
    assert validate_row(row, 1) == ["line 1, field 'description': task 'alignment' needs the known target 'description'"]


def test_check_media_resolves_relative_to_base_dir(tmp_path: Path) -> None:
    (tmp_path / "clips").mkdir()
    (tmp_path / "clips" / "a.mp4").write_bytes(b"")
    row = good_row(video="clips/a.mp4")
    assert validate_row(row, 1, tmp_path, check_media=True) == []
    errs = check_row(good_row(video="clips/b.mp4"), 4, tmp_path, check_media=True)
    assert [(e.line, e.field, e.kind) for e in errs] == [(4, "video", "missing_media")]
    assert str(tmp_path / "clips" / "b.mp4") in errs[0].message
    assert validate_row(good_row(video="clips/b.mp4"), 4, tmp_path) == []  # not checked by default


def test_validate_file_reports_every_bad_line(tmp_path: Path) -> None:
    rows = [good_row(), good_row(id="x/2", task="nope"), None, good_row(id="x/3"), good_row()]
    lines = [json.dumps(r) if r is not None else "{broken" for r in rows]
    lines.insert(3, "")  # blank lines are skipped but still counted in numbering
    path = tmp_path / "d.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    errs = validate_file(path)
    assert [e.split(",")[0] for e in errs] == ["line 2", "line 3", "line 6"]
    assert "field '<line>': not valid JSON" in errs[1]
    assert "duplicate id 'x/1/describe'" in errs[2]
