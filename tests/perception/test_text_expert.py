"""The text-emotion expert: head shape and determinism, the evidence it writes, the corpora readers, the recipe's
loss, the shipped head on real sentences (English and Mandarin), and the pipeline handing it to fusion."""

from __future__ import annotations

import hashlib
import re
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from affectllm.perception.label_sets import CLUE_GROUPS, EKMAN_GROUPS, FINE_LABELS, FINE_TO_BASE
from affectllm.perception.text_expert import (
    TextEmotionExpert,
    TextHead,
    default_dir,
    expert_line,
    load_head,
    save_head,
    summarise,
)

REPO = Path(__file__).resolve().parents[2]


class HashEncoder:
    """A deterministic stand-in encoder: a text's sha256 seeds its unit vector."""

    name, dim = "hash", 384

    def embed(self, texts):
        out = []
        for t in texts:
            seed = int.from_bytes(hashlib.sha256(t.encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim).astype(np.float32)
            out.append(v / np.linalg.norm(v))
        return np.stack(out) if out else np.zeros((0, self.dim), np.float32)


@pytest.fixture()
def random_expert(tmp_path) -> TextEmotionExpert:
    torch.manual_seed(3)
    head = TextHead(384, 32)
    head.temperature.fill_(1.5)
    save_head(head, {"encoder": "e5", "dim": 384, "hidden": 32, "labels": list(FINE_LABELS), "model": "random"},
              tmp_path / "head")
    return TextEmotionExpert(tmp_path / "head", encoder_override=HashEncoder())


def test_head_shape_determinism_and_round_trip(random_expert, tmp_path):
    p = random_expert.probs(["I can't believe it", "fine", "我好害怕"])
    assert p.shape == (3, 28)
    np.testing.assert_allclose(p.sum(1), 1.0, atol=1e-5)
    np.testing.assert_array_equal(p, random_expert.probs(["I can't believe it", "fine", "我好害怕"]))
    head, cfg = load_head(tmp_path / "head")
    assert float(head.temperature) == pytest.approx(1.5) and cfg["hidden"] == 32
    # the temperature divides the logits: a hotter head is flatter
    emb = torch.from_numpy(HashEncoder().embed(["x"]))
    with torch.no_grad():
        flat = torch.softmax(head(emb), -1)
        head.temperature.fill_(1.0)
        sharp = torch.softmax(head(emb), -1)
    assert float(flat.max()) < float(sharp.max())


def test_read_picks_subtitle_then_transcript_then_translation(random_expert):
    assert random_expert.read() is None and random_expert.read(transcript="  ") is None
    e = random_expert.read(transcript="我 好 害怕", language="zh", translation="I'm scared", subtitle=None)
    assert e["read"] == "transcript" and e["text"] == "我 好 害怕" and e["words"] == 3
    assert random_expert.read(translation="I'm scared")["read"] == "translation"
    assert random_expert.read(transcript="把我推来说去你信不信")["words"] == 5  # unspaced: half the characters
    s = random_expert.read(transcript="x", subtitle="You did it!")
    assert s["read"] == "subtitle" and s["text"] == "You did it!"
    assert set(s["fine"]) == set(FINE_LABELS) and len(s["top"]) == 3
    assert sum(s["base"].values()) == pytest.approx(1.0, abs=1e-3)
    assert expert_line({"expert": s}).startswith("Words (text expert, subtitle): ")
    assert expert_line({}) is None


def test_summarise_maps_fine_onto_base_and_circumplex():
    fine = np.zeros(28)
    fine[FINE_LABELS.index("nervousness")], fine[FINE_LABELS.index("fear")] = 0.6, 0.2
    fine[FINE_LABELS.index("relief")] = 0.2
    s = summarise(fine)
    assert s["base"]["fearful"] == pytest.approx(0.8) and s["base"]["calm"] == pytest.approx(0.2)
    assert s["top"][0] == ["nervousness", 0.6]
    assert s["valence"] == pytest.approx(0.8 * -0.6 + 0.2 * 0.3, abs=1e-3)
    assert s["arousal"] == pytest.approx(0.8 * 0.6 + 0.2 * -0.6, abs=1e-3)


def test_groups_cover_every_fine_label_once():
    covered = [f for fs in EKMAN_GROUPS.values() for f in fs]
    assert sorted(covered) == sorted(FINE_LABELS)
    clue = [f for fs in CLUE_GROUPS.values() for f in fs]
    assert sorted(clue) == sorted(set(FINE_LABELS) - {"neutral"}) and len(clue) == len(set(clue))
    assert set(FINE_TO_BASE) == set(FINE_LABELS)


def test_recipe_loss_is_cross_entropy_or_group_mass():
    sys.path.insert(0, str(REPO / "train"))
    from train_text_expert import loss_fn

    logits = torch.log(torch.tensor([[0.5, 0.3, 0.2] + [1e-9] * 25]))
    soft, mask = torch.zeros(1, 28), torch.zeros(1, 28)
    mask[0, [0, 1]] = 1  # a coarse class covering the first two labels: -log(0.8)
    assert float(loss_fn(logits, soft, mask, torch.ones(1))) == pytest.approx(-np.log(0.8), abs=1e-4)
    soft[0, [1, 2]] = 0.5  # multi-label: -(log 0.3 + log 0.2) / 2
    assert float(loss_fn(logits, soft, torch.zeros(1, 28), torch.ones(1))) == pytest.approx(
        -(np.log(0.3) + np.log(0.2)) / 2, abs=1e-4)


def test_corpora_readers_on_the_real_files(shared):
    from affectllm.training import text_corpora

    root = shared / "corpora" / "text"
    sizes = {(c, s): len(text_corpora.load(root, c, s)) for c in ("goemotions", "meld", "clue")
             for s in ("train", "dev", "test")}
    assert sizes[("goemotions", "train")] == 43410 and sizes[("meld", "test")] == 2610
    assert sizes[("clue", "train")] + sizes[("clue", "dev")] == 3966 and sizes[("clue", "test")] == 3967
    meld = text_corpora.load(root, "meld", "test")
    assert not any("\ufffd" in r.text or "\x92" in r.text for r in meld)
    assert all(r.group == EKMAN_GROUPS[r.label] for r in meld)


def test_corpus_missing_names_the_file(tmp_path):
    from affectllm.training import text_corpora

    with pytest.raises(text_corpora.CorpusMissing, match="meld/test_sent_emo.csv"):
        text_corpora.load(tmp_path, "meld", "test")


@pytest.fixture(scope="module")
def shipped() -> TextEmotionExpert:
    if not (default_dir() / "model.safetensors").is_file():
        pytest.fail("affectllm/assets/text_expert is missing: python train/train_text_expert.py")
    return TextEmotionExpert()


@pytest.mark.parametrize("text,base", [
    ("I'm so scared, I don't know what's going to happen to us.", "fearful"),
    ("Thank you so much, this is the best day of my life!", "happy"),
    ("Get out of my house right now, I hate you!", "angry"),
    ("我真的很害怕，不知道该怎么办。", "fearful"),
    ("太好了，谢谢你，我好开心！", "happy"),
    ("他走了，再也不会回来了，我好难过。", "sad"),
])
def test_shipped_head_reads_english_and_mandarin(shipped, text, base):
    e = shipped.read(subtitle=text)
    assert max(e["base"], key=e["base"].get) == base, e["top"]
    assert e["model"].startswith("text-emotion head on multilingual-e5-small")


def test_pipeline_hands_the_expert_to_fusion(shipped):
    from affectllm.perception.pipeline import Experts, perceive

    p = perceive(subtitle="I'm so scared, I don't know what's going to happen to us.",
                 experts=Experts(whisper=None, faces=False))
    ev = p.evidence()
    assert ev["text"]["expert"]["read"] == "subtitle"
    assert ev["fused"]["top"] == "fearful" and "text" in ev["fused"]["sources"]
    off = perceive(subtitle="I'm so scared.", experts=Experts(whisper=None, faces=False, text=False))
    assert "expert" not in off.evidence()["text"]


def test_a_free_form_answer_gets_an_explanation_composed_from_the_evidence(shipped):
    from affectllm.engine.core import Engine
    from affectllm.engine.decoding import Decoded
    from affectllm.perception.pipeline import Experts, perceive

    said = "I'm so scared, I don't know what's going to happen to us."
    p = perceive(subtitle=said, experts=Experts(whisper=None, faces=False))
    free = Engine.to_report(Decoded("She sounds worried.", [], 0, "stop"), p)
    assert free.explanation_source == "composed" and free.labels_source == "fused"
    assert f'"{said}"' in free.explanation  # the words, quoted
    assert re.search(r"\bfear\b[^.]{0,20}\(?0\.\d\d", free.explanation)  # and the expert's reading of them, cited
    assert free.labels[0] in free.explanation and free.faithful, free.faithfulness_problems
    own = Engine.to_report(Decoded("Labels: sad\nExplanation: Her words sound low.", [], 0, "stop"), p)
    assert own.explanation == "Her words sound low." and own.explanation_source == "answer"
    assert own.explanation_replaced == []
    # an explanation that leaves out a channel that measured something (here the words) is replaced
    blind = Engine.to_report(Decoded("Labels: sad\nExplanation: She sounds low.", [], 0, "stop"), p)
    assert blind.explanation_source == "composed" and f'"{said}"' in blind.explanation
    assert blind.explanation_replaced == ["does not cite the words, which its expert measured"]


def test_a_model_explanation_citing_unmeasured_figures_is_replaced_and_the_reason_kept(shipped):
    from affectllm.engine.core import Engine
    from affectllm.engine.decoding import Decoded
    from affectllm.perception.pipeline import Experts, perceive

    said = "I'm so scared, I don't know what's going to happen to us."
    p = perceive(subtitle=said, experts=Experts(whisper=None, faces=False))
    fear = p.evidence()["text"]["expert"]["fine"]["fear"]
    honest = Engine.to_report(Decoded(f"Labels: afraid\nExplanation: The words read as fear {fear:.2f}.", [], 0,
                                      "stop"), p)
    assert honest.explanation_source == "answer" and honest.faithful  # a measured figure, cited right
    made_up = f"Labels: afraid\nExplanation: The face shows sad 0.37 and the words read as fear {fear:.2f}."
    r = Engine.to_report(Decoded(made_up, [], 0, "stop"), p)
    assert r.explanation_source == "composed" and r.faithful and f'"{said}"' in r.explanation
    assert r.explanation_replaced == ['cites "sad 0.37", a figure no expert measured for sad']
    assert r.raw == made_up  # the model's answer is kept as produced


def test_cited_figures_are_matched_by_emotion_and_value():
    from affectllm.report.faithful import cited_figures, evidence_figures

    figures = evidence_figures({"face": {"mean_probs": {"neutral": 0.82}}, "voice": {"probs": {"angry": 0.37}},
                                "text": {"expert": {"fine": {"anger": 0.12}}, "language": {"probability": 0.98}},
                                "fused": {"labels": [["nervous", 0.5]], "weights": {"face": 0.95}}})
    ok = ("The face looks neutral (0.82); the voice expert hears angry 0.37. Words: anger 0.12 (language "
          "probability 0.98), face weight 0.95; nervous 0.50.")
    assert cited_figures(ok, figures) == []
    assert cited_figures("The voice sounds sad 0.37; overall 0.44.", figures) == [
        'cites "sad 0.37", a figure no expert measured for sad', 'cites "0.44", a figure no expert measured']


def test_east_asian_text_is_read_by_the_multilingual_head(shipped):
    """MiniLM (English) sees little in Han script: the shipped folder's second head, on e5 alone, reads it."""
    assert shipped.config["encoder"] == "e5+minilm" and shipped.east is not None
    assert shipped.east.config["encoder"] == "e5"
    zh, en = "我真的很害怕，不知道该怎么办。", "I'm so scared, I don't know what's going to happen to us."
    assert shipped.reader_for(zh) is shipped.east and shipped.reader_for(en) is shipped.main
    assert shipped.read(subtitle=zh)["model"] == shipped.east.model != shipped.main.model
    assert shipped.read(subtitle=zh)["prior"] == shipped.east.config["base_prior"]
    both = shipped.probs([en, zh])  # [2, 28]: each row from its own head, in order
    np.testing.assert_allclose(both[0], shipped.main.probs([en])[0], atol=1e-6)
    np.testing.assert_allclose(both[1], shipped.east.probs([zh])[0], atol=1e-6)
