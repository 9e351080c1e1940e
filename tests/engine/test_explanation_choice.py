"""``explanation="evidence"``: the model stops after labels, valence and arousal, and the explanation is composed
from the evidence (faithful, every measured channel cited); ``"model"`` lets the model write it. Through the
engine, the captioner and the CLI."""

from __future__ import annotations

import pytest
import torch

from affectllm.engine import Engine
from affectllm.engine.core import EXPLANATION_FIELD

SAID = "I'm so scared, I don't know what's going to happen to us."
TAIL = "\nValence: -0.60\nArousal: 0.70\nExplanation: She is frightened by what she says."


class Forced:
    """Forces the answer's tokens (after the anchored labels) to spell ``TAIL``."""

    def __init__(self, ids: list[int]) -> None:
        self.ids, self.start = ids, None

    def __call__(self, input_ids, scores):
        if self.start is None:
            self.start = input_ids.shape[1]
        step = input_ids.shape[1] - self.start
        out = torch.full_like(scores, -float("inf"))
        out[:, self.ids[step] if step < len(self.ids) else 0] = 0.0
        return out


@pytest.fixture(scope="module")
def setup():
    from affectllm.perception.pipeline import Experts, perceive
    from affectllm.testing import tiny_model_and_processor

    model, processor = tiny_model_and_processor()
    perception = perceive(subtitle=SAID, experts=Experts(whisper=None, faces=False))
    return Engine.for_model(model, processor, experts=Experts(whisper=None, faces=False)), perception


def _report(engine, perception, explanation):
    tok = engine.processor.tokenizer
    ids = tok(TAIL, add_special_tokens=False)["input_ids"] + [tok.eos_token_id]
    assert tok.decode(ids, skip_special_tokens=True) == TAIL  # the tiny tokenizer spells it exactly
    return engine.report([perception], logits_processors=[Forced(ids)], max_new_tokens=len(ids) + 2,
                         explanation=explanation)[0]


def test_evidence_stops_at_the_explanation_and_composes_it(setup):
    engine, p = setup
    own = _report(engine, p, "model")
    fast = _report(engine, p, "evidence")
    assert "She is frightened" in own.raw and EXPLANATION_FIELD in own.raw
    assert EXPLANATION_FIELD not in fast.raw and fast.raw.rstrip().endswith("Arousal: 0.70")
    assert fast.valence == own.valence == -0.6 and fast.arousal == own.arousal == 0.7
    assert fast.labels == own.labels
    assert fast.explanation_source == "composed" and fast.explanation_replaced == []
    assert f'"{SAID}"' in fast.explanation and fast.faithful, fast.faithfulness_problems


def test_an_unknown_choice_is_refused_before_any_work(setup, tmp_path):
    from typer.testing import CliRunner

    from affectllm.cli import _build

    engine, p = setup
    with pytest.raises(ValueError, match="explanation='llm': choose one of model, evidence"):
        engine.report([p], explanation="llm")
    out = tmp_path / "caps.jsonl"
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"")
    res = CliRunner().invoke(_build(), ["caption", "--explanation", "llm", "--out", str(out), str(clip)])
    assert res.exit_code == 2 and "--explanation 'llm': choose one of model, evidence" in res.output
    assert not out.exists()


def test_the_captioner_passes_the_choice_to_the_engine(setup, shared):
    from affectllm.captioning import Captioner, CaptionInput
    from affectllm.perception.pipeline import Experts

    engine, _ = setup
    seen = []

    def spy(model, processor, perceptions, **kw):
        seen.append(kw["explanation"])
        return engine.report(perceptions, **kw)

    cap = Captioner(engine.model, engine.processor, experts=Experts(whisper=None, faces=False), max_new_tokens=4,
                    generate=spy, explanation="evidence")
    rec = cap.caption_one(CaptionInput("jfk", str(shared / "media/speech/jfk.flac")))
    assert rec["status"] == "ok" and seen == ["evidence"] and rec["explanation_source"] == "composed"
    with pytest.raises(ValueError, match="choose one of model, evidence"):
        Captioner(engine.model, engine.processor, explanation="both")
