"""Metric arithmetic against hand-computed numbers and sklearn: one-hot (accuracy, weighted F1, UAR, WAR),
sentiment (official and strict), HIT rate, class mapping, and the chance floor."""

from __future__ import annotations

import pytest

from affectllm.evaluation import score
from affectllm.evaluation.chance import most_frequent, openset_floor
from affectllm.evaluation.normalise import Normaliser
from affectllm.evaluation.onehot import UNMAPPED, ClassMapper, classification_metrics
from affectllm.evaluation.ovmer import hit_rate
from affectllm.evaluation.sentiment import sentiment_metrics

Y_TRUE = ["a", "a", "a", "b", "b", "c"]
Y_PRED = ["a", "a", "b", "b", "c", "c"]


def test_onehot_metrics_by_hand():
    m = classification_metrics(Y_TRUE, Y_PRED, ["a", "b", "c"])
    assert m["accuracy"] == pytest.approx(4 / 6) and m["WAR"] == m["accuracy"]
    assert m["UAR"] == pytest.approx((2 / 3 + 1 / 2 + 1) / 3)
    assert m["weighted_f1"] == pytest.approx((3 * 0.8 + 2 * 0.5 + 1 * (2 / 3)) / 6)
    assert m["confusion"]["matrix"] == [[2, 1, 0], [0, 1, 1], [0, 0, 1]]


def test_onehot_metrics_match_sklearn_with_unmapped():
    sk = pytest.importorskip("sklearn.metrics")
    t = ["x", "y", "z", "x", "y", "z", "x", "x"]
    p = ["x", UNMAPPED, "z", "y", "y", "x", "x", UNMAPPED]
    m = classification_metrics(t, p, ["x", "y", "z"])
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(t, p))
    assert m["weighted_f1"] == pytest.approx(sk.f1_score(t, p, average="weighted", zero_division=0))
    assert m["UAR"] == pytest.approx(sk.recall_score(t, p, labels=["x", "y", "z"], average="macro"))
    assert m["confusion"]["cols"][-1] == UNMAPPED


def test_sentiment_official_and_strict_by_hand():
    gt = [1.2, -0.5, 0.0, 2.0, -1.0]
    pred = [1.0, 0.0, 1.0, -1.0, -1.0]
    m = sentiment_metrics(gt, pred)
    assert m["n_scored"] == 4 and m["n_gt_neutral_removed"] == 1
    assert m["accuracy"] == pytest.approx(3 / 4)  # the neutral prediction counts as negative (and is right)
    assert m["weighted_f1"] == pytest.approx((2 * (2 / 3) + 2 * 0.8) / 4)
    assert m["strict"]["acc2_strict"] == pytest.approx(2 / 4)  # … but not in the strict variant
    assert m["strict"]["acc3"] == pytest.approx(2 / 5)
    assert m["n_neutral_predictions_counted_negative"] == 1


def test_sentiment_weighted_f1_matches_sklearn():
    sk = pytest.importorskip("sklearn.metrics")
    gt = [0.4, -1.2, 2.2, -0.2, 1.0, 0.6, -2.0, 0.0]
    pred = [1, 1, 1, -1, 0, 1, -1, -1]
    keep = [i for i, g in enumerate(gt) if g != 0]
    t, p = [gt[i] > 0 for i in keep], [pred[i] > 0 for i in keep]
    m = sentiment_metrics(gt, [float(x) for x in pred])
    assert m["accuracy"] == pytest.approx(sk.accuracy_score(t, p))
    assert m["weighted_f1"] == pytest.approx(sk.f1_score(t, p, average="weighted"))


def test_hit_rate_official_and_first_label_strict(tables):
    gt = [["happy"], ["sad"], ["neutral"], ["angry"]]
    pred = [["joyful", "sad"], ["happy"], ["neutral"], []]
    off = hit_rate(gt, pred, Normaliser(tables))
    assert all(v["n_scored"] == 3 for v in off["per_wheel"].values())  # neutral ground truth skipped
    assert off["hit_rate"] == pytest.approx(1 / 3)  # joyful ≡ happy on all five level-1 wheels
    strict = hit_rate(gt, pred, Normaliser(tables, strict=True), first_only=True)
    assert strict["hit_rate"] == pytest.approx(2 / 4)  # neutral kept and hit; only first labels count
    # any-label credit: 'sad' listed second still hits officially, not strictly
    off2 = hit_rate([["sad"]], [["happy", "sad"]], Normaliser(tables))
    st2 = hit_rate([["sad"]], [["happy", "sad"]], Normaliser(tables, strict=True), first_only=True)
    assert (off2["hit_rate"], st2["hit_rate"]) == (1.0, 0.0)


def test_class_mapper(tables):
    m = ClassMapper(["neutral", "angry", "happy", "sad", "worried", "surprise"], Normaliser(tables))
    assert m.predict(["joyful"]) == "happy"
    assert m.predict(["furious"]) == "angry"
    assert m.predict(["worry"]) == "worried"
    assert m.predict(["amazed"]) == "surprise"
    assert m.predict(["flibbertigibbet", "Sadness"]) == "sad"  # first label that maps decides
    assert m.predict(["flibbertigibbet"]) == UNMAPPED
    meld = ClassMapper(["neutral", "surprise", "fear", "sadness", "joy", "disgust", "anger"], Normaliser(tables))
    assert (meld.predict(["happy"]), meld.predict(["angry"]), meld.predict(["scared"])) == ("joy", "anger", "fear")


def test_chance_floor_k_most_frequent(tables):
    gt = [["happy", "sad"], ["happy"], ["angry"], ["happy", "happy"]]
    assert most_frequent(gt, 1) == ["happy"]
    assert most_frequent(gt, 2) == ["happy", "angry"]  # tie angry/sad (1 each) → alphabetical
    floor = openset_floor(gt, Normaliser(tables), Normaliser(tables, strict=True))
    assert [r["k"] for r in floor["per_k"]] == [1, 2, 3]  # only 3 distinct labels exist
    best = max(floor["per_k"], key=lambda r: r["M-avg"])
    assert floor["best"] == best and floor["best_k"] == best["k"]
    assert floor["per_k"][0]["M-avg"] == pytest.approx(score("ov-mer", {str(i): g for i, g in enumerate(gt)},
                                                              {str(i): ["happy"] for i in range(4)},
                                                              synonym_groups={})["M-avg"])


def test_chance_floor_on_ov_merd(ov, wheel_dir):
    r = score("ov-mer", ov["gt"], ov["pred"], wheel_dir, synonym_groups={})
    cf = r["chance_floor"]
    assert [row["k"] for row in cf["per_k"]] == [1, 2, 3, 4, 5]
    assert cf["per_k"][0]["labels"] == ["angry"]
    assert cf["best_k"] == 4 and cf["best"]["labels"] == ["angry", "happy", "joyful", "dissatisfied"]
    assert round(cf["best"]["M-avg"], 4) == 0.3776
    assert r["summary"]["chance M-avg"] == cf["best"]["M-avg"]


def test_onehot_task_end_to_end(tmp_path, wheel_dir):
    gt = tmp_path / "label.csv"
    gt.write_text("name,discrete\na,happy\nb,sad\nc,neutral\nd,angry\ne,worried\n", encoding="utf-8")
    pred = tmp_path / "pred.csv"
    pred.write_text("name,openset\na,\"['joyful']\"\nb,\"['happy', 'sad']\"\nc,\"['neutral']\"\nd,\"['furious']\"\n"
                    "e,\"['calm']\"\n", encoding="utf-8")
    r = score("mer2023", gt, pred, wheel_dir)
    assert r["kind"] == "onehot"
    assert r["onehot"]["accuracy"] == pytest.approx(3 / 5)  # a, c, d right; b → happy (first), e → happy
    assert r["strict"]["hit_rate"] <= r["hit_rate"]
    assert r["chance_floor"]["per_k"][0]["k"] == 1 and "accuracy" in r["chance_floor"]["per_k"][0]


def test_sentiment_task_from_labels_uses_the_lexicon_judge(tmp_path, wheel_dir):
    gt = tmp_path / "label.csv"
    gt.write_text("name,valence\na,1.5\nb,-2\nc,0\nd,0.8\n", encoding="utf-8")
    pred = tmp_path / "pred.csv"
    pred.write_text("name,openset\na,\"['happy', 'relieved']\"\nb,\"['angry']\"\nc,\"['sad']\"\n"
                    "d,\"['surprised']\"\n", encoding="utf-8")
    r = score("cmu-mosi", gt, pred, wheel_dir)
    assert r["n_scored"] == 3 and r["accuracy"] == pytest.approx(2 / 3)  # d: surprised → neutral → negative
    assert r["config"]["judge"].startswith("lexicon:")
