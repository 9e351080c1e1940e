"""Prompt pools and row composition: deterministic per seed, one output format, focused follow-ups."""

from __future__ import annotations

from pathlib import Path

import pytest

from affectllm.instruct import validate_row
from affectllm.instruct.compose import (
    SourceSample,
    applicable_tasks,
    focus_sentences,
    media_ref,
    rows_for_sample,
)
from affectllm.instruct.prompts import load_pools
from affectllm.instruct.schema import TASKS
from affectllm.report import parse_report

DESC = ("In the video, she smiles broadly and her eyes light up. In the audio, her voice rises and she laughs. "
        "In the text, the subtitle says she won. Therefore she is happy.")


def sample(**over: object) -> SourceSample:
    base = dict(key="s1", source="demo", video=Path("/data/s1.mp4"), audio=Path("/data/s1.wav"),
                subtitle="We won!", labels=["Happy", "excited"], valence=0.62, arousal=0.4, description=DESC)
    base.update(over)
    return SourceSample(**base)  # type: ignore[arg-type]


def test_packaged_pools_cover_every_task() -> None:
    pools = load_pools()
    assert set(pools.prompts) | {"followup"} == set(TASKS)
    assert all(len(v) >= 4 for v in pools.prompts.values())
    assert set(pools.followups) == {"why", "voice", "face", "words"}


def test_applicable_tasks_follow_the_known_targets() -> None:
    assert applicable_tasks(sample()) == ["describe", "ov_labels", "valence", "followup", "alignment"]
    assert applicable_tasks(sample(labels=["sad"], label_set=["sad", "happy"], description=None,
                                   valence=None)) == ["ov_labels", "onehot"]
    assert applicable_tasks(sample(labels=None, valence=None)) == ["alignment"]
    assert applicable_tasks(sample(labels=["confused"], label_set=["sad"], description=None,
                                   valence=None)) == ["ov_labels"]  # onehot only for a label inside the set


def test_rows_are_valid_and_answers_are_reports() -> None:
    rows = rows_for_sample(sample(), None, load_pools(), seed=3, out_dir=Path("/data"))
    assert [r["task"] for r in rows] == ["describe", "ov_labels", "valence", "followup", "alignment"]
    for row in rows:
        assert validate_row(row, 1) == [], row
        assert row["id"] == f"demo/s1/{row['task']}"
        assert row["video"] == "s1.mp4" and row["audio"] == "s1.wav"  # inside the output folder: relative
        first_user = row["conversations"][0]["content"]
        assert first_user.startswith('<video>\n<audio>\nSubtitle: "We won!"\n')
    report = parse_report(rows[0]["conversations"][1]["content"])
    assert (report.labels, report.valence, report.arousal) == (["happy", "excited"], 0.62, 0.4)
    assert report.explanation == DESC
    assert rows[-1]["conversations"][1]["content"] == DESC  # alignment: plain description


def test_build_is_deterministic_per_seed_and_order_free() -> None:
    pools = load_pools()
    samples = [sample(key=f"k{i}") for i in range(12)]
    a = [rows_for_sample(s, None, pools, seed=0) for s in samples]
    b = [rows_for_sample(s, None, pools, seed=0) for s in reversed(samples)][::-1]
    c = [rows_for_sample(s, None, pools, seed=1) for s in samples]
    assert a == b
    assert a != c  # another seed picks other paraphrases somewhere among 60 rows


def test_onehot_prompt_lists_the_label_set() -> None:
    row = rows_for_sample(sample(labels=["sad"], label_set=["angry", "sad"]), ["onehot"], load_pools())[0]
    assert "angry, sad" in row["conversations"][0]["content"]
    assert parse_report(row["conversations"][1]["content"]).labels == ["sad"]


def test_followup_answers_focus_on_one_modality() -> None:
    assert focus_sentences(DESC, "voice") == "In the audio, her voice rises and she laughs."
    assert focus_sentences(DESC, "face") == "In the video, she smiles broadly and her eyes light up."
    assert focus_sentences(DESC, "words") == "In the text, the subtitle says she won."
    assert focus_sentences(DESC, "why") == DESC
    assert focus_sentences("Nothing about any modality here.", "voice") == ""
    rows = [rows_for_sample(sample(key=f"k{i}"), ["followup"], load_pools(), seed=i)[0] for i in range(20)]
    answers = {t["content"] for r in rows for t in r["conversations"][3::2]}
    assert answers <= {DESC, *(focus_sentences(DESC, f) for f in ("voice", "face", "words"))}
    assert len(answers) >= 3
    assert {len(r["conversations"]) for r in rows} == {4, 6}  # one or two follow-ups


def test_media_noun_matches_the_media() -> None:
    pools = load_pools()
    img = rows_for_sample(sample(video=None, audio=None, image=Path("/x/a.png"), subtitle=None), ["describe"],
                          pools, seed=0)[0]
    assert img["conversations"][0]["content"].startswith("<image>\n")
    text = " ".join(p.format(media="image", label_set="") for p in pools.prompts["describe"])
    assert "clip" not in text


def test_media_ref_modes(tmp_path: Path) -> None:
    inside, outside = tmp_path / "out" / "clips" / "a.mp4", Path("/elsewhere/b.mp4")
    assert media_ref(inside, tmp_path / "out") == "clips/a.mp4"
    assert media_ref(outside, tmp_path / "out") == "/elsewhere/b.mp4"
    assert media_ref(inside, tmp_path / "out", "absolute") == str(inside)
    assert media_ref(tmp_path / "m.mp4", tmp_path / "out", "relative") == "../m.mp4"


def test_custom_pools_are_checked(tmp_path: Path) -> None:
    for task in ("describe", "ov_labels", "valence", "alignment"):
        (tmp_path / f"{task}.yaml").write_text(f"task: {task}\nprompts: ['Describe the {{media}}.']\n")
    (tmp_path / "onehot.yaml").write_text("task: onehot\nprompts: ['Pick one of {label_set}.']\n")
    with pytest.raises(ValueError, match="no prompt pool for task.*followup"):
        load_pools(tmp_path)
    (tmp_path / "followup.yaml").write_text(
        "task: followup\nquestions: {why: ['Why?'], voice: ['Voice?'], face: ['Face?'], words: ['Words?']}\n")
    assert load_pools(tmp_path).pick("describe", __import__("random").Random(0), media="clip") == "Describe the clip."
    (tmp_path / "valence.yaml").write_text("task: valence\nprompts: ['Rate {speaker}.']\n")
    with pytest.raises(ValueError, match=r"unknown field\(s\) \['speaker'\]"):
        load_pools(tmp_path)
