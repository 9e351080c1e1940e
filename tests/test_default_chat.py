"""The shipped default (SmolLM2-135M-Instruct + its starter) holds a conversation: asked a general question about
emotions with no media, it answers the question, not with the caption template (issue 20). Real weights: skipped
only when SmolLM2's converted weights are absent (``affectllm models prepare``)."""

from __future__ import annotations

import re

import pytest

from affectllm.offline.registry import get_component


@pytest.fixture(scope="module")
def default_model():
    if not get_component("smollm2").prepared():
        pytest.skip("SmolLM2 weights not prepared: run `affectllm models prepare`")
    import affectllm

    return affectllm.load(device="cpu")


def test_default_answers_a_general_question_without_the_caption_template(default_model):
    from affectllm.chat import ChatSession
    from affectllm.defaults import DEFAULT_PROMPT

    model, processor = default_model
    assert model.source_name == "embedded-default" and model.config.text_model == "registry:smollm2-135m-instruct"
    session = ChatSession(model, processor, max_new_tokens=48)
    answer = session.ask("How do people usually show anger?")
    rendered = str(session.messages)
    assert DEFAULT_PROMPT not in rendered  # no caption request was added to a plain question
    for template in ("Labels:", "Valence:", "Arousal:", "Explanation:", "Together this suggests the person feels"):
        assert template not in answer, answer
    words = re.findall(r"[A-Za-z']+", answer.lower())
    assert len(words) >= 15, answer  # an answer, not a label
    assert {"anger", "angry", "voice", "face", "raised", "shout", "yelling", "yell", "frown", "body"} & set(words), answer
