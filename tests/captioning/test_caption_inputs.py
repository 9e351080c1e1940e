"""Inputs: files, folders, globs and manifests become unique rows with ids that do not depend on the run."""

from __future__ import annotations

import json
import os

import pytest

from affectllm.captioning.inputs import CaptionInput, InputError, collect_inputs, read_manifest


def _tree(root):
    (root / "a").mkdir(parents=True)
    (root / "a" / "deep").mkdir()
    (root / ".hidden").mkdir()
    for rel in ["x.mp4", "a/y.wav", "a/deep/z.JPG", "notes.txt", ".DS_Store", ".hidden/h.mp4", "a/b.csv"]:
        (root / rel).write_bytes(b"data")
    return root


def test_folder_walk_keeps_media_sorted_with_relative_ids(tmp_path):
    root = _tree(tmp_path / "clips")
    got = collect_inputs([str(root)])
    assert [x.id for x in got.inputs] == ["a/deep/z.JPG", "a/y.wav", "x.mp4"]
    assert [x.path for x in got.inputs] == [str(root / "a/deep/z.JPG"), str(root / "a/y.wav"), str(root / "x.mp4")]
    assert sorted(os.path.basename(p) for p in got.ignored) == ["b.csv", "notes.txt"]


def test_ids_do_not_depend_on_how_the_folder_is_named(tmp_path, monkeypatch):
    root = _tree(tmp_path / "clips")
    absolute = [x.id for x in collect_inputs([str(root)]).inputs]
    monkeypatch.chdir(tmp_path)
    relative = [x.id for x in collect_inputs(["clips/"]).inputs]
    assert absolute == relative


def test_glob_ids_are_relative_to_the_fixed_prefix(tmp_path):
    root = _tree(tmp_path / "clips")
    got = collect_inputs([str(root / "**" / "*.wav"), str(root / "*.mp4")])
    assert [x.id for x in got.inputs] == ["a/y.wav", "x.mp4"]


def test_explicit_files_are_kept_even_when_missing_or_not_media(tmp_path):
    (tmp_path / "readme.txt").write_text("hi")
    got = collect_inputs([str(tmp_path / "readme.txt"), str(tmp_path / "gone.mp4"), str(tmp_path / "none-*.mp4")])
    assert [(x.id, x.path) for x in got.inputs] == [
        ("readme.txt", str(tmp_path / "readme.txt")),
        ("gone.mp4", str(tmp_path / "gone.mp4")),
        (str(tmp_path / "none-*.mp4"), str(tmp_path / "none-*.mp4")),
    ]


def test_same_file_twice_is_one_input_but_two_files_with_one_id_is_an_error(tmp_path):
    (tmp_path / "d1").mkdir()
    (tmp_path / "d2").mkdir()
    (tmp_path / "d1" / "c.mp4").write_bytes(b"1")
    (tmp_path / "d2" / "c.mp4").write_bytes(b"2")
    assert len(collect_inputs([str(tmp_path / "d1" / "c.mp4")] * 2).inputs) == 1
    with pytest.raises(InputError, match="share the id 'c.mp4'"):
        collect_inputs([str(tmp_path / "d1" / "c.mp4"), str(tmp_path / "d2" / "c.mp4")])


def test_csv_manifest_with_relative_paths_and_subtitles(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "list.csv").write_text("id,path,subtitle\ns1,one.mp4,I am fine\ns2,/abs/two.wav,\n",
                                             encoding="utf-8")
    rows = read_manifest(tmp_path / "m" / "list.csv")
    assert rows == [CaptionInput("s1", str(tmp_path / "m" / "one.mp4"), "I am fine"),
                    CaptionInput("s2", "/abs/two.wav", None)]
    assert collect_inputs([str(tmp_path / "m" / "list.csv")]).inputs == rows


def test_jsonl_manifest_id_defaults_to_path(tmp_path):
    lines = [{"path": "a.mp4"}, {"id": "b", "path": "b.mp4", "subtitle": "hello"}]
    (tmp_path / "l.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    rows = read_manifest(tmp_path / "l.jsonl")
    assert [(r.id, r.subtitle) for r in rows] == [("a.mp4", None), ("b", "hello")]


@pytest.mark.parametrize(("name", "text", "message"), [
    ("dup.csv", "id,path\nx,a.mp4\nx,b.mp4\n", "id 'x' appears twice \\(rows 2 and 3\\)"),
    ("nopath.csv", "id,file\nx,a.mp4\n", "needs a header with a 'path' column"),
    ("bad.jsonl", '{"path": "a.mp4"}\n{oops\n', "bad.jsonl:2: not valid JSON"),
    ("empty.jsonl", '{"id": "a"}\n', "bad|has no 'path'"),
])
def test_broken_manifests_name_the_file_row_and_fix(tmp_path, name, text, message):
    (tmp_path / name).write_text(text)
    with pytest.raises(InputError, match=message):
        read_manifest(tmp_path / name)


@pytest.mark.parametrize(("text", "message"), [
    # the case: an unclosed quote on line 3 of 4 rows used to merge rows 4 and 5 into one bogus path
    ('id,path\na,a.mp4\nb,"b.mp4\nc,c.mp4\nd,d.mp4\n', "list.csv:3-5: a quoted field is not closed"),
    ('id,path\na,a.mp4\nb,"b.mp4\nc",c.mp4\nd,d.mp4\n', "list.csv:3: 3 fields, expected 2"),
    ('id,path\na,a.mp4\nb,"b.mp4\nc"\nd,d.mp4\n', "list.csv:3: the 'path' field runs over several lines"),
    ('id,path\na,a.mp4\nb,b.mp4,extra\n', "list.csv:3: 3 fields, expected 2"),
    ('id,path\na,a.mp4\nb\n', "list.csv:3: 1 fields, expected 2"),
    (b'id,path\na,caf\xe9.mp4\n', "list.csv:2: not UTF-8"),
    ("", "list.csv: empty manifest"),
])
def test_malformed_csv_manifest_is_refused_naming_file_and_line(tmp_path, text, message):
    path = tmp_path / "list.csv"
    path.write_bytes(text if isinstance(text, bytes) else text.encode())
    with pytest.raises(InputError, match=message):
        collect_inputs([str(path)])


def test_quoted_fields_with_commas_and_newlines_in_the_subtitle_keep_every_row(tmp_path):
    (tmp_path / "list.csv").write_text('id,path,subtitle\na,a.mp4,"well, yes"\nb,b.mp4,"two\nlines"\nc,c.mp4,\n')
    rows = read_manifest(tmp_path / "list.csv")
    assert [(r.id, r.subtitle) for r in rows] == [("a", "well, yes"), ("b", "two\nlines"), ("c", None)]


def test_caption_cli_refuses_a_malformed_manifest_before_loading_a_model(tmp_path, cli_app, monkeypatch):
    from typer.testing import CliRunner

    import affectllm.captioning.run as run

    def no_model(*a, **k):
        raise AssertionError("the model must not be loaded for a malformed manifest")

    monkeypatch.setattr(run, "load_model", no_model)
    (tmp_path / "list.csv").write_text('id,path\na,a.mp4\nb,"b.mp4\nc,c.mp4\nd,d.mp4\n')
    out = tmp_path / "caps.jsonl"
    result = CliRunner().invoke(cli_app, ["caption", str(tmp_path / "list.csv"), "--out", str(out),
                                          "--model", "no-such-model"])
    assert result.exit_code == 2
    assert f"{tmp_path / 'list.csv'}:3-5: a quoted field is not closed" in result.output
    assert not out.exists()
