"""Bad rows inside a training set are reported by id, skipped and counted; they never stop an epoch."""

from __future__ import annotations

import json

import pytest

from affectllm.training.synthetic import write_synthetic_set


@pytest.mark.slow
def test_missing_unreadable_and_malformed_rows_are_skipped(tmp_path, caplog):
    from affectllm.training import load_config, train

    data = write_synthetic_set(tmp_path / "data", n=8, seed=4)
    rows = [json.loads(x) for x in data.read_text().splitlines()]
    missing = dict(rows[0], id="bad/missing-media", audio="media/does-not-exist.wav")
    (tmp_path / "data" / "media" / "garbage.wav").write_bytes(b"this is not audio at all" * 10)
    unreadable = dict(rows[1], id="bad/unreadable-clip", audio="media/garbage.wav")
    lines = [json.dumps(r) for r in rows] + [json.dumps(missing), "{not json", json.dumps(unreadable)]
    data.write_text("\n".join(lines) + "\n")

    cfg = load_config("train/configs/tiny-test.yaml", [f"data.train={data}", f"output_dir={tmp_path / 'run'}",
                                                       f"cache.dir={tmp_path / 'cache'}", "train.batch_size=3",
                                                       "train.max_steps=6", "train.save_every=0",
                                                       "model.options.whisper=false"])
    out: list[str] = []
    with caplog.at_level("WARNING"):
        summary = train(cfg, echo=out.append)
    assert summary["steps"] == 6  # the run finished
    assert summary["train_rows"] == 9  # 8 good + the unreadable one (its file exists)
    assert summary["skipped_at_load"] == 2  # missing media file + malformed JSON line
    assert summary["skipped_in_epochs"] >= 1 and summary["skipped_ids"] == ["bad/unreadable-clip"]
    logged = caplog.text
    assert "bad/missing-media" in logged and "does-not-exist.wav" in logged  # reported by id and file
    assert "bad/unreadable-clip" in logged and "garbage.wav" in logged
    assert any("rows skipped: 2 at load" in s and "bad/unreadable-clip" in s for s in out)
    metrics = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert metrics[-1]["skipped"] == summary["skipped_in_epochs"]
