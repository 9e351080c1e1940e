"""The captioner on real media with the tiny model: record fields, evidence, determinism, segments, batching."""

from __future__ import annotations

import json

import numpy as np
import pytest
from caption_media import JFK, RAVDESS_MP4

from affectllm.captioning import RECORD_KEYS, Captioner, CaptionInput, strip_timing
from affectllm.report import parse_report

# decoding bugs must fail the test, not hang CI
pytestmark = pytest.mark.timeout(600)


@pytest.fixture(scope="module")
def captioner(tiny):
    model, processor = tiny
    return Captioner(model, processor, max_new_tokens=6)


def test_video_record_has_every_field_and_real_evidence(captioner, shared, tiny):
    rec = captioner.caption_one(CaptionInput("r1", str(shared / RAVDESS_MP4)))
    assert list(rec) == list(RECORD_KEYS)
    assert rec["status"] == "ok" and rec["error"] is None and rec["segments"] == []
    assert rec["id"] == "r1" and rec["source"] == str(shared / RAVDESS_MP4)
    face = rec["evidence"]["face"]
    assert face["frames"] == 4 and face["frames_with_face"] >= 3  # the tiny processor samples 4 frames
    assert abs(sum(face["mean_probs"].values()) - 1.0) < 1e-3
    assert face["top"] == max(face["mean_probs"], key=face["mean_probs"].get)
    voice = rec["evidence"]["voice"]
    assert 70 < voice["f0_mean_hz"] < 250  # a male actor
    assert 3.0 < voice["duration_s"] < 3.6
    # labels come from the model's own text, parsed; a free-form answer (no Explanation: field) gets the
    # explanation composed from the evidence (Engine.to_report), citing the face it saw
    parsed = parse_report(rec["raw"])
    assert rec["labels"] == parsed.labels
    if parsed.explanation:
        assert rec["explanation"] == parsed.explanation
    else:
        assert "face" in rec["explanation"] and "neutral" in rec["explanation"]
    model = rec["model"]
    assert model["trained"] is False and "untrained" in model["note"]
    assert model["fingerprint"] == tiny[0].fingerprint
    assert set(rec["timing"]) == {"perceive_s", "generate_s", "total_s"}


def test_same_input_gives_identical_json_apart_from_timing(captioner, shared, tiny):
    item = CaptionInput("j", str(shared / JFK), subtitle="ask not")
    a = captioner.caption_one(item)
    b = Captioner(*tiny, max_new_tokens=6).caption_one(item)  # a fresh captioner, same model
    assert a["status"] == "ok" and a["subtitle"] == "ask not"
    assert json.dumps(strip_timing(a), sort_keys=True) == json.dumps(strip_timing(b), sort_keys=True)


def test_long_input_is_cut_into_speech_segments_each_reported(tiny, shared):
    cap = Captioner(*tiny, max_new_tokens=4, segment_seconds=4.0, batch_size=3)
    rec = cap.caption_one(CaptionInput("jfk", str(shared / JFK)))
    segs = rec["segments"]
    assert rec["status"] == "ok" and len(segs) >= 3
    starts, ends = np.array([s["start"] for s in segs]), np.array([s["end"] for s in segs])
    assert np.all(ends - starts <= 4.0 + 1e-3) and np.all(starts[1:] >= ends[:-1] - 1e-3)  # ordered, disjoint
    assert 0.0 <= starts[0] and ends[-1] <= 11.1
    assert all(s["kind"] == "speech" and s["status"] == "ok" for s in segs)
    assert all(set(s) >= {"labels", "explanation", "evidence", "raw"} for s in segs)
    # top-level evidence pools the segments: durations add up and cues are the union
    cues = [c for s in segs for c in s["evidence"]["voice"]["cues"]]
    assert set(rec["evidence"]["voice"]["cues"]) == set(cues)
    weights = ends - starts
    durs = np.array([s["evidence"]["voice"]["duration_s"] for s in segs])
    assert rec["evidence"]["voice"]["duration_s"] == pytest.approx(float((durs * weights).sum() / weights.sum()),
                                                                   abs=1e-3)


def test_batches_group_perceptions_and_keep_input_order(tiny, shared):
    calls = []

    def spy(model, processor, perceptions, **kw):
        from affectllm.api import generate_reports

        calls.append([p.source for p in perceptions])
        return generate_reports(model, processor, perceptions, **kw)

    cap = Captioner(*tiny, max_new_tokens=3, batch_size=2, generate=spy)
    items = [CaptionInput("i0", str(shared / JFK)),
             CaptionInput("i1", str(shared / "media/ravdess/01-01-03-01-01-01-01_audio.wav")),
             CaptionInput("i2", "/nowhere/missing.wav"), CaptionInput("i3", str(shared / JFK))]
    recs = list(cap.caption(items))
    assert [r["id"] for r in recs] == ["i0", "i1", "i2", "i3"]
    assert [r["status"] for r in recs] == ["ok", "ok", "error", "ok"]
    assert [len(c) for c in calls] == [2, 1]  # the missing file never reaches generation


def test_a_failing_item_in_a_batch_does_not_cost_its_neighbours(tiny, shared):
    from affectllm.api import generate_reports

    def flaky(model, processor, perceptions, **kw):
        if any("03-01-01" in (p.source or "") for p in perceptions):
            raise RuntimeError("simulated failure")
        return generate_reports(model, processor, perceptions, **kw)

    cap = Captioner(*tiny, max_new_tokens=3, batch_size=3, generate=flaky)
    bad = str(shared / "media/ravdess/01-01-03-01-01-01-01_audio.wav")
    recs = list(cap.caption([CaptionInput("a", str(shared / JFK)), CaptionInput("b", bad),
                             CaptionInput("c", str(shared / JFK))]))
    assert [r["status"] for r in recs] == ["ok", "error", "ok"]
    assert recs[1]["error"].startswith(bad) and "simulated failure" in recs[1]["error"]
