"""One renderer: a training row and an inference call on the same media render the same prompt; the cue
header is written in one place; chat, serve and web keep media in the turn that carried it, perceived once."""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from affectllm.perception.pipeline import Experts

pytestmark = pytest.mark.timeout(600)

CLIP = "media/ravdess/01-01-01-01-01-01-01.mp4"
PROMPT = "Which emotions does this actor show?"


class HeardExperts(Experts):
    """No Whisper weights: a stand-in transcriber that always hears emotion words."""

    def __init__(self) -> None:
        super().__init__(whisper=None)

    @property
    def asr(self):
        return SimpleNamespace(transcribe=lambda audio: SimpleNamespace(
            text="I am so happy and excited!", language="en", translation=None, language_probability=0.99,
            language_uncertain=False))


@pytest.fixture(scope="module")
def tiny():
    from affectllm.testing import tiny_model_and_processor

    model, processor = tiny_model_and_processor()
    return model.eval(), processor


def _training_prompt(row, processor, experts):
    from affectllm.training.samples import build_messages, decode_with_cues, item_specs

    specs = item_specs(row)
    msgs = build_messages(row, specs, decode_with_cues(specs, processor, experts))
    return processor.render(msgs[:-1], add_generation_prompt=True)


@pytest.mark.parametrize("face_input", [False, True])
def test_training_row_and_inference_render_the_same_prompt(tiny, shared, face_input):
    from affectllm.engine import Engine

    model, processor = tiny
    saved = dict(processor.vision)
    processor.vision["input"] = "faces" if face_input else "frames"
    try:
        experts = HeardExperts()
        engine = Engine(model, processor, experts=experts)
        clip = str(shared / CLIP)
        answer = {"role": "assistant", "content": "Labels: calm"}
        row = {"id": "r1", "video": clip, "audio": clip,
               "conversations": [{"role": "user", "content": "<video>\n" + PROMPT}, answer]}
        train = _training_prompt(row, processor, experts)
        infer = processor.render(engine.renderer.single_turn(engine.perceive(clip), PROMPT))
        assert train.text == infer.text
        assert '"I am so happy and excited!"' in train.text and "- Speech (en" in train.text
        words = next(x for x in train.text.splitlines() if x.startswith("- Emotion words:"))
        assert "happy" in words and "excited" in words
        (a,), (b,) = train.media, infer.media
        assert np.array_equal(a.vision, b.vision) and np.array_equal(a.audio, b.audio)
        if face_input:
            assert a.vision.shape[1:] == (48, 48, 3)  # main-face crops, not frames
        # a video row without its audio: no sound, so no transcript, voice or heard emotion words in the cues
        silent = {"id": "r2", "video": clip, "conversations": row["conversations"]}
        train = _training_prompt(silent, processor, experts)
        infer = processor.render(engine.renderer.single_turn(engine.perceive(clip, use_audio=False), PROMPT))
        assert train.text == infer.text
        assert "Observed cues:\n- Face" in train.text
        assert "Speech" not in train.text and "Emotion words" not in train.text and "Voice" not in train.text
        assert train.media[0].audio is None
    finally:
        processor.vision.clear()
        processor.vision.update(saved)


def test_the_cue_header_is_written_in_one_place():
    import affectllm

    root = Path(affectllm.__file__).parent
    found = sorted(str(p.relative_to(root)) for p in root.rglob("*.py") if "Observed cues" in p.read_text())
    assert found == ["model/defaults.py"]  # engine.rendering re-exports CUE_HEADER


def test_predict_perceives_each_input_once(tiny, shared):
    from affectllm.api import predict
    from affectllm.engine import Engine

    model, processor = tiny
    experts = Experts(whisper=None)
    a = predict(model, processor, audio=str(shared / "media/speech/jfk.flac"), max_new_tokens=4, experts=experts)
    b = predict(model, processor, audio=str(shared / "media/speech/jfk.flac"), max_new_tokens=4, experts=experts)
    assert a.to_dict() == b.to_dict()
    assert Engine.for_model(model, processor, experts=experts).perceptions.calls == 1  # content-hash cache


def test_chat_keeps_media_in_its_turn_and_perceives_once(tiny, shared):
    from affectllm.chat import ChatSession

    session = ChatSession(*tiny, experts=Experts(whisper=None), max_new_tokens=3)
    session.ask("hello")
    session.attach(shared / CLIP)
    session.ask("How does he feel?")
    session.ask("Why?")
    msgs = session.messages
    assert [m["role"] for m in msgs] == ["user", "assistant"] * 3
    assert msgs[0]["content"] == [{"type": "text", "text": "hello"}]
    assert [p["type"] for p in msgs[2]["content"]] == ["video", "text"]
    assert msgs[2]["content"][1]["text"].startswith("Observed cues:") and msgs[4]["content"][0]["text"] == "Why?"
    assert session.engine.perceptions.calls == 1


def test_serve_keeps_media_in_its_turn_and_perceives_once(tiny, shared, tmp_path):
    import shutil

    from affectllm.serving.job_queue import Job, JobQueue
    from affectllm.serving.media import ResolvedMedia

    clip = tmp_path / "clip.mp4"
    shutil.copy(shared / CLIP, clip)
    engine = JobQueue(*tiny, experts=Experts(whisper=None), max_new_tokens=4)
    media = ResolvedMedia(clip, "clip.mp4", "path")
    first = engine.run(Job(media=media, prompt="How does he feel?", max_new_tokens=3))
    history = [{"role": "user", "content": "How does he feel?"}, {"role": "assistant", "content": first.text}]
    job = Job(media=media, prompt="Why?", history=history, max_new_tokens=3, media_turn=0)
    conv = engine.conversation(job, engine.perceive(media))
    msgs = engine.engine.renderer.messages(conv)
    assert [p["type"] for p in msgs[0]["content"]] == ["video", "text"]
    assert msgs[2]["content"] == [{"type": "text", "text": "Why?"}]  # not moved to the latest turn
    second = engine.run(job)
    assert second.report.evidence["face"] == first.report.evidence["face"]
    assert engine.engine.perceptions.calls == 1  # the second request reused the first perception
    engine.close()


def test_web_history_places_the_upload_in_its_turn():
    from affectllm.web.app import conversation_turns

    history = [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"},
               {"role": "user", "content": {"path": "clips/a.mp4"}}, {"role": "user", "content": "How?"},
               {"role": "assistant", "content": "Labels: sad"}]
    turns, where = conversation_turns(history, "clips/a.mp4")
    assert [t["role"] for t in turns] == ["user", "assistant", "user", "assistant"] and where == 2
    assert conversation_turns(history, "clips/other.mp4")[1] == 4  # not in the history: the new question


def test_from_pretrained_reports_the_declared_state(tmp_path):
    import affectllm
    from affectllm.checkpoint import save_checkpoint
    from affectllm.loading import STARTER_DIR
    from affectllm.modeling_affectllm import AffectLLMForConditionalGeneration
    from affectllm.testing import save_tiny_checkpoint, tiny_model_and_processor

    model, processor = tiny_model_and_processor()
    assert model.trained is False
    save_checkpoint(model, processor, tmp_path / "trained", self_contained=True, trained=True)
    back = AffectLLMForConditionalGeneration.from_pretrained(tmp_path / "trained")
    assert back.trained is True and back.placeholder_ids == processor.placeholder_ids
    cfg = json.loads((tmp_path / "trained" / "config.json").read_text())
    assert cfg["trained"] is True and cfg["placeholder_token_ids"] == processor.placeholder_ids
    assert set(cfg["weights_included"]) >= {"language_model"}
    m, _ = affectllm.load(str(save_tiny_checkpoint(tmp_path / "tiny")))
    assert m.trained is False
    assert json.loads((STARTER_DIR / "config.json").read_text())["trained"] is True  # the shipped adapter
