"""The text-emotion expert beside its baselines, on every labelled text set, in one run.

    PYTHONPATH=$PWD python bench/text_expert.py --corpora ../shared/corpora/text \
        [--head e5-no-clue=DIR] [--head minilm=DIR] [--json out.json]

Columns (same rows, same run): the majority class of the test split, the lexicon cues the pipeline used before
the expert (NRC EmoLex / DUTIR via ``perception.lexicon.text_cues``; no emotion word -> the majority class), the
shipped expert (``affectllm/assets/text_expert``: e5 + MiniLM, and its e5 head for Han / kana / Hangul text, each text routed as the pipeline routes it) and any extra heads (``--head NAME=DIR``,
made by ``train/train_text_expert.py --out DIR``: e.g. the English-only MiniLM head, the e5 head without CLUE).
Everything goes through ``TextEmotionExpert.probs`` / ``text_cues``, the calls the pipeline makes.

- MELD test (other dialogues than train): 7 classes, weighted-F1 and macro-F1; a head's class = the argmax of
  its fine mass summed over each class's GoEmotions group (``label_sets.EKMAN_GROUPS``).
- GoEmotions test: macro-F1 over the 28 labels (a head predicts every label with p >= tau, tau picked on dev,
  at least its top label; the lexicon predicts each NRC emotion's prototype label) and macro-F1 over Ekman's 7
  groups on single-group rows.
- CLUE emotion test (``test.jsonl``; our split, see ``training/text_corpora.py``): accuracy over 7 classes.
- EMER-V1 (``../shared/data/emer_v1/gt-eng.csv``, 100 English subtitles, one label each): top-1 base class from
  text alone (worried -> fearful), and the best non-neutral class's top-1.
Speed: ms per text (one at a time, as the pipeline calls it).
"""

from __future__ import annotations

import argparse
import csv
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from affectllm.perception.label_sets import CLUE_GROUPS, EKMAN_GROUPS, FINE_LABELS  # noqa: E402
from affectllm.training import text_corpora  # noqa: E402

MELD_OF_BASE = {"happy": "joy", "sad": "sadness", "angry": "anger", "fearful": "fear", "disgusted": "disgust",
                "surprised": "surprise", "neutral": "neutral", "calm": "neutral", "bored": "neutral"}
CLUE_OF_DUTIR = {"like": "like", "joy": "happiness", "sadness": "sadness", "anger": "anger", "fear": "fear",
                 "disgust": "disgust", "surprise": "surprise"}
PROTOTYPE = {"anger": "anger", "anticipation": "optimism", "disgust": "disgust", "fear": "fear", "joy": "joy",
             "sadness": "sadness", "surprise": "surprise", "trust": "approval", "like": "love"}
EMER_BASE = {"angry": "angry", "happy": "happy", "worried": "fearful", "sad": "sad", "surprise": "surprised"}


def f1s(gold: list[str], pred: list[str], classes: tuple[str, ...]) -> dict[str, float]:
    out, support = {}, {}
    for c in classes:
        tp = sum(g == c and p == c for g, p in zip(gold, pred))
        fp = sum(g != c and p == c for g, p in zip(gold, pred))
        fn = sum(g == c and p != c for g, p in zip(gold, pred))
        out[c] = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        support[c] = sum(g == c for g in gold)
    n = len(gold)
    return {"weighted_f1": round(sum(out[c] * support[c] for c in classes) / n, 4),
            "macro_f1": round(sum(out.values()) / len(classes), 4),
            "accuracy": round(sum(g == p for g, p in zip(gold, pred)) / n, 4)}


def group_mass(probs: np.ndarray, groups: dict[str, tuple[str, ...]]) -> tuple[list[str], np.ndarray]:
    names = list(groups)
    idx = {f: i for i, f in enumerate(FINE_LABELS)}
    mass = np.stack([probs[:, [idx[f] for f in groups[c]]].sum(1) for c in names], 1)  # [N, classes]
    return names, mass


def lexicon_base(texts: list[str]) -> list[dict | None]:
    from affectllm.perception.fusion import text_to_base
    from affectllm.perception.lexicon import text_cues

    return [text_to_base(text_cues(None, None, None, t).get("emotion_words")) for t in texts]


def lexicon_words(texts: list[str]) -> list[list[str]]:
    from affectllm.perception.lexicon import text_cues

    out = []
    for t in texts:
        emo: list[str] = []
        for w in text_cues(None, None, None, t).get("emotion_words") or []:
            emo += list(w.get("emotions") or [])
        out.append(emo)
    return out


def multilabel_macro_f1(gold: list[set[str]], pred: list[set[str]], labels: tuple[str, ...]) -> float:
    scores = []
    for c in labels:
        tp = sum(c in g and c in p for g, p in zip(gold, pred))
        fp = sum(c not in g and c in p for g, p in zip(gold, pred))
        fn = sum(c in g and c not in p for g, p in zip(gold, pred))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return round(float(np.mean(scores)), 4)


def head_sets(probs: np.ndarray, tau: float) -> list[set[str]]:
    return [{FINE_LABELS[i] for i in np.flatnonzero(row >= tau)} | {FINE_LABELS[int(row.argmax())]} for row in probs]


def main(argv: list[str] | None = None) -> int:
    from affectllm.perception.text_expert import TextEmotionExpert, default_dir

    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--corpora", type=Path, default=REPO.parent / "shared" / "corpora" / "text")
    ap.add_argument("--emer", type=Path, default=REPO.parent / "shared" / "data" / "emer_v1" / "gt-eng.csv")
    ap.add_argument("--head", action="append", default=[], help="NAME=DIR of another head to measure")
    ap.add_argument("--json", type=Path)
    args = ap.parse_args(argv)
    heads = {"shipped": TextEmotionExpert(default_dir())}
    for spec in args.head:
        name, _, d = spec.partition("=")
        heads[name] = TextEmotionExpert(Path(d))
    root = args.corpora
    res: dict = {"command": "PYTHONPATH=$PWD python bench/text_expert.py " + " ".join(sys.argv[1:] if argv is None else argv)}

    def probs_of(h, texts, tag):
        # the recipe's embedding cache, when the same texts were embedded before (same numbers as h.probs)
        sys.path.insert(0, str(REPO / "train"))
        import torch
        from train_text_expert import embeddings

        out = np.zeros((len(texts), len(FINE_LABELS)), np.float32)  # [N, 28]
        readers = [h.reader_for(t) for t in texts]  # the head the pipeline routes each text to
        for reader in {id(r): r for r in readers}.values():
            idx = [i for i, r in enumerate(readers) if r is reader]
            emb = embeddings(reader.config["encoder"], *tag, texts)[idx]
            with torch.no_grad():
                out[idx] = torch.softmax(reader.head(torch.from_numpy(emb)), -1).numpy()
        return out

    # ---- MELD
    rows = text_corpora.load(root, "meld", "test")
    gold, texts = [r.label for r in rows], [r.text for r in rows]
    classes = tuple(EKMAN_GROUPS)
    maj = max(set(gold), key=gold.count)
    lex = [MELD_OF_BASE[max(b, key=b.get)] if b else maj for b in lexicon_base(texts)]
    m = {"rows": len(rows), "majority": f1s(gold, [maj] * len(gold), classes), "lexicon": f1s(gold, lex, classes)}
    for name, h in heads.items():
        names, mass = group_mass(probs_of(h, texts, ("meld", "test")), EKMAN_GROUPS)
        m[name] = f1s(gold, [names[i] for i in mass.argmax(1)], classes)
    res["meld_test"] = m
    print(json.dumps({"meld_test": m}), flush=True)

    # ---- GoEmotions
    rows, dev = text_corpora.load(root, "goemotions", "test"), text_corpora.load(root, "goemotions", "dev")
    gold_sets = [set(r.fine) for r in rows]
    g = {"rows": len(rows)}
    commonest = max(FINE_LABELS, key=lambda f: sum(f in s for s in gold_sets))
    g["majority"] = {"macro_f1_28": multilabel_macro_f1(gold_sets, [{commonest}] * len(rows), FINE_LABELS)}
    lexw = lexicon_words([r.text for r in rows])
    g["lexicon"] = {"macro_f1_28": multilabel_macro_f1(
        gold_sets, [{PROTOTYPE[e] for e in emo if e in PROTOTYPE} or {"neutral"} for emo in lexw], FINE_LABELS)}
    ekman_of = {f: c for c, fs in EKMAN_GROUPS.items() for f in fs}
    single = [i for i, s in enumerate(gold_sets) if len({ekman_of[f] for f in s}) == 1]
    ek_gold = [ekman_of[next(iter(gold_sets[i]))] for i in single]
    ek_maj = max(set(ek_gold), key=ek_gold.count)
    g["majority"]["macro_f1_ekman"] = f1s(ek_gold, [ek_maj] * len(ek_gold), classes)["macro_f1"]
    lex_b = lexicon_base([rows[i].text for i in single])
    g["lexicon"]["macro_f1_ekman"] = f1s(ek_gold, [MELD_OF_BASE[max(b, key=b.get)] if b else ek_maj for b in lex_b],
                                         classes)["macro_f1"]
    for name, h in heads.items():
        pt, pd = probs_of(h, [r.text for r in rows], ("goemotions", "test")), probs_of(h, [r.text for r in dev], ("goemotions", "dev"))
        dev_sets = [set(r.fine) for r in dev]
        tau = max(np.arange(0.05, 0.55, 0.05), key=lambda t: multilabel_macro_f1(dev_sets, head_sets(pd, t), FINE_LABELS))
        names, mass = group_mass(pt[single], EKMAN_GROUPS)
        g[name] = {"macro_f1_28": multilabel_macro_f1(gold_sets, head_sets(pt, tau), FINE_LABELS),
                   "tau": round(float(tau), 2),
                   "macro_f1_ekman": f1s(ek_gold, [names[i] for i in mass.argmax(1)], classes)["macro_f1"]}
    res["goemotions_test"] = g
    print(json.dumps({"goemotions_test": g}), flush=True)

    # ---- CLUE
    rows = text_corpora.load(root, "clue", "test")
    gold, texts = [r.label for r in rows], [r.text for r in rows]
    cc = tuple(CLUE_GROUPS)
    maj = max(set(gold), key=gold.count)
    lex = []
    for emo in lexicon_words(texts):
        votes = [CLUE_OF_DUTIR[e] for e in emo if e in CLUE_OF_DUTIR]
        lex.append(max(set(votes), key=votes.count) if votes else maj)
    c = {"rows": len(rows), "majority": f1s(gold, [maj] * len(gold), cc)["accuracy"],
         "lexicon": f1s(gold, lex, cc)["accuracy"]}
    for name, h in heads.items():
        names, mass = group_mass(probs_of(h, texts, ("clue", "test")), CLUE_GROUPS)
        c[name] = f1s(gold, [names[i] for i in mass.argmax(1)], cc)["accuracy"]
    res["clue_test_accuracy"] = c
    print(json.dumps({"clue_test_accuracy": c}), flush=True)

    # ---- EMER-V1 subtitles
    if args.emer.is_file():
        with args.emer.open(encoding="utf-8", newline="") as f:
            recs = list(csv.DictReader(f))
        gold = [EMER_BASE[r["emotions"].strip()] for r in recs]
        texts = [r["subtitles"] for r in recs]
        maj = max(set(gold), key=gold.count)
        e = {"rows": len(recs), "empty_subtitles": sum(not t.strip() for t in texts), "majority": round(gold.count(maj) / len(gold), 4)}
        lb = lexicon_base(texts)
        e["lexicon"] = round(float(np.mean([bool(b) and max(b, key=b.get) == y for b, y in zip(lb, gold)])), 4)
        for name, h in heads.items():
            t0 = time.time()
            reads = [h.read(subtitle=t) or {"base": {"none": 1.0}} for t in texts]  # no subtitle: no reading, wrong
            ms = (time.time() - t0) / len(texts) * 1000
            top = [max(r["base"], key=r["base"].get) for r in reads]
            nn = [max((k for k in r["base"] if k != "neutral"), key=r["base"].get, default="none") for r in reads]
            e[name] = {"top1": round(float(np.mean([a == y for a, y in zip(top, gold)])), 4),
                       "top1_non_neutral": round(float(np.mean([a == y for a, y in zip(nn, gold)])), 4),
                       "said_neutral": sum(a == "neutral" for a in top), "ms_per_text": round(ms, 1)}
        res["emer_v1_subtitles"] = e
    print(json.dumps(res, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
