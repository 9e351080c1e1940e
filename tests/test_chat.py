"""``affectllm chat``: scripted through stdin with the tiny model; cues like captioning; streaming is exact."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

# decoding bugs must fail the test, not hang CI
pytestmark = pytest.mark.timeout(600)


RAVDESS = "media/ravdess/01-01-01-01-01-01-01.mp4"
JFK = "media/speech/jfk.flac"


@pytest.fixture(scope="module")
def tiny(tiny_checkpoint):
    from affectllm.loading import load

    return load(str(tiny_checkpoint))


@pytest.fixture(scope="module")
def cli_app():
    from affectllm.cli import _build

    return _build()


def test_scripted_chat_two_turns_attach_and_save(cli_app, shared, tmp_path, tiny_checkpoint):
    saved = tmp_path / "conv.json"
    script = f"hello there\n/attach {shared / RAVDESS}\nhow does he feel?\n/save {saved}\n/quit\nnot reached\n"
    result = CliRunner().invoke(cli_app, ["chat", "--model", str(tiny_checkpoint), "--max-new-tokens", "5"], input=script)
    assert result.exit_code == 0, result.output
    conv = json.loads(saved.read_text())
    assert conv["format"] == "affectllm-chat/1"
    assert conv["model"]["trained"] is False and conv["model"]["name"] == str(tiny_checkpoint)
    assert [t["role"] for t in conv["turns"]] == ["user", "assistant", "user", "assistant"]
    first, second = conv["turns"][0], conv["turns"][2]
    assert first == {"role": "user", "text": "hello there", "media": [], "cues": []}
    assert second["text"] == "how does he feel?"
    assert second["media"] == [{"path": str(shared / RAVDESS), "kind": "video", "duration": pytest.approx(3.3, abs=0.1)}]
    assert any(c.startswith("Face: ") for c in second["cues"]) and any(c.startswith("Voice: ") for c in second["cues"])
    # stdout holds exactly the two answers, one block each; notes went to stderr
    answers = [t["text"] for t in conv["turns"] if t["role"] == "assistant"]
    assert result.stdout == "".join(a + "\n" for a in answers)
    assert f"attached {shared / RAVDESS}" in result.stderr and f"saved {saved}" in result.stderr


def test_failed_attach_is_reported_and_the_scripted_run_exits_1(cli_app, tmp_path, tiny_checkpoint):
    script = f"/attach {tmp_path / 'nope.mp4'}\n/bogus\n"
    result = CliRunner().invoke(cli_app, ["chat", "--model", str(tiny_checkpoint)], input=script)
    assert result.exit_code == 1
    assert f"{tmp_path / 'nope.mp4'}: no such file" in result.stderr
    assert "unknown or incomplete command '/bogus'" in result.stderr


def test_first_media_turn_carries_the_same_cues_as_captioning(tiny, shared):
    from affectllm.chat import ChatSession
    from affectllm.engine import Engine
    from affectllm.perception.pipeline import Experts

    session = ChatSession(*tiny, experts=Experts(whisper=None), max_new_tokens=3)
    p = session.attach(shared / JFK)
    session.ask("Is he sad?")
    content = session.messages[0]["content"]
    expected = Engine.for_model(*tiny).renderer.single_turn(p, "Is he sad?")[0]["content"]
    assert [x["type"] for x in content] == [x["type"] for x in expected] == ["audio", "text"]
    assert content[-1]["text"] == expected[-1]["text"]
    assert content[-1]["text"].startswith("Observed cues:\n- ") and content[-1]["text"].endswith("Is he sad?")
    session.ask("Why?")  # the media stays in the conversation, the cues are not repeated
    assert [m["role"] for m in session.messages] == ["user", "assistant", "user", "assistant"]
    assert session.messages[0]["content"][0]["audio"].source == str(shared / JFK)  # still in its own turn
    assert session.messages[2]["content"] == [{"type": "text", "text": "Why?"}]
    assert session.turns[2]["media"] == [] and session.turns[2]["cues"] == []
    session.reset()
    assert session.messages == [] and session.turns == [] and session.pending == []


def test_streamed_pieces_join_to_the_greedy_answer(tiny, shared):
    import torch

    from affectllm.chat import ChatSession

    model, processor = tiny
    question = "Labels: happy. Explanation: she smiles"
    msgs = [{"role": "user", "content": [{"type": "text", "text": question}]}]
    pieces: list[str] = []
    answer = ChatSession(model, processor, max_new_tokens=12).ask(question, on_token=pieces.append)
    batch = processor([msgs], add_generation_prompt=True)
    with torch.no_grad():
        out = model.generate(**batch, max_new_tokens=12, do_sample=False)
    expected = processor.decode(out[0, batch["input_ids"].shape[1]:]).strip()
    assert answer == expected
    assert "".join(pieces).strip() == expected
