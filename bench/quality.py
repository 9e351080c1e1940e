"""Speaker-independent quality on ../shared/corpora: each expert alone, the fused estimate, chance, majority.

    PYTHONPATH=$PWD python bench/quality.py                    # experts + fusion on every clip (~1 min, cached)
    PYTHONPATH=$PWD python bench/quality.py --full --per-corpus 5   # + the whole affectllm.predict pipeline

Every clip is scored by a voice head that never heard its speaker: the per-fold heads written by
``train/train_voice_expert.py`` (same folds: speakers of each corpus dealt round-robin). The features come from
the same cache (re-encoded only if missing). The fused estimate is ``perception.fusion.fuse`` of what each clip
offers; the corpora are audio only, so the face expert measures nothing and the fused estimate rests on the
voice alone (its column says so). Baselines from the same run: chance = 1 / classes in the corpus, majority
= the corpus's most frequent class share.

``--full`` runs ``affectllm.predict`` (the embedded default with its adapter) on a capped, fixed subset of
clips (the first N of each corpus in a seeded shuffle), with the clip's fold head in place of the shipped
voice head, and reports the final labels' top-1 (first label mapping to a base class), the rate at which the
first label equals the fused top-1 when the fusion is confident (top-1 p >= 0.5), and the ``faithful`` rate
when reports carry that field. It is slow (~15-30 s a clip on 2 cores).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "train"))


def main(argv: list[str] | None = None) -> int:
    from train_voice_expert import baselines
    from voice_features import extract

    from affectllm.instruct.labelled_corpora import speaker_folds
    from affectllm.paths import cache_dir
    from affectllm.perception.fusion import CONFIDENT, expected_calibration_error, fuse
    from affectllm.perception.voice import BASE_CLASSES, VoiceExpert

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=Path, default=REPO.parent / "shared" / "corpora")
    ap.add_argument("--cache", type=Path, default=None, help="as given to train_voice_expert.py")
    ap.add_argument("--full", action="store_true", help="also run affectllm.predict on a capped subset")
    ap.add_argument("--per-corpus", type=int, default=5, help="clips per corpus for --full")
    ap.add_argument("--json", type=Path, default=None, help="write the figures here too")
    args = ap.parse_args(argv)
    cache = args.cache or cache_dir("voice_expert")
    meta_file = cache / "voice_oof.json"
    if not meta_file.is_file():
        raise SystemExit(f"{meta_file}: no fold heads; run `PYTHONPATH=$PWD python train/train_voice_expert.py` "
                         "first (it writes them to the same cache)")
    meta = json.loads(meta_file.read_text())
    rows, feats, _ = extract(args.corpora, cache)
    y = np.array([BASE_CLASSES.index(r["label"]) for r in rows])
    corpora = np.array([r["corpus"] for r in rows])
    folds = speaker_folds(rows, meta["folds"])
    heads = {int(k): VoiceExpert.load(p) for k, p in meta["fold_heads"].items()}
    voice = np.zeros((len(rows), len(BASE_CLASSES)), np.float32)
    for k, head in heads.items():
        voice[folds == k] = head.predict(head.features_of_blocks(feats[folds == k]))
    fused = []
    for row in voice:
        f = fuse(voice=dict(zip(BASE_CLASSES, row.tolist())), face=None)  # audio-only corpora: no face
        fused.append([f["probs"][c] for c in BASE_CLASSES])
    fused = np.array(fused)
    words = fused_with_words(rows, voice)  # [N, C]: + the text expert on the clip's sentence (None: no text)
    base = baselines(y, corpora)
    names = sorted(base)
    table = {c: {"voice": float((voice[corpora == c].argmax(1) == y[corpora == c]).mean()),
                 "face": None,  # no frames in these corpora
                 "fused": float((fused[corpora == c].argmax(1) == y[corpora == c]).mean()),
                 "fused_words": float((words[corpora == c].argmax(1) == y[corpora == c]).mean()),
                 **base[c], "clips": int((corpora == c).sum())} for c in names}
    out: dict = {"per_corpus": table, "layer": meta["layer"], "folds": meta["folds"],
                 "ece_fused": expected_calibration_error(fused, y), "ece_voice": expected_calibration_error(voice, y)}
    for col in ("voice", "fused", "fused_words", "chance", "majority"):
        out[f"macro_{col}"] = float(np.mean([table[c][col] for c in names]))

    print(f"Speaker-independent top-1 on held-out speakers ({len(rows)} clips, {meta['folds']} speaker folds; "
          f"voice head on Whisper-base blocks {'+'.join(map(str, np.atleast_1d(meta['layer'])))})")
    print(f"{'corpus':<9}{'clips':>6}{'voice':>8}{'face':>8}{'fused':>8}{'chance':>8}{'majority':>10}")
    for c in names:
        t = table[c]
        print(f"{c:<9}{t['clips']:>6}{t['voice']:>8.3f}{'n/a':>8}{t['fused']:>8.3f}{t['chance']:>8.3f}"
              f"{t['majority']:>10.3f}")
    print(f"{'macro':<9}{len(rows):>6}{out['macro_voice']:>8.3f}{'n/a':>8}{out['macro_fused']:>8.3f}"
          f"{out['macro_chance']:>8.3f}{out['macro_majority']:>10.3f}")
    print("face: n/a — the corpora are audio only, so the face expert measures nothing and fused = voice alone")
    print("fused + words (voice + the text expert on the clip's sentence, as fusion pools them): "
          + ", ".join(f"{c} {table[c]['fused_words']:.3f}" for c in names) + f"; macro {out['macro_fused_words']:.3f}"
          + " (CASIA's sentences are not in the files: voice alone there)")
    print(f"ECE (10 bins): fused {out['ece_fused']:.4f}, voice {out['ece_voice']:.4f}")
    if args.full:
        out["full"] = run_full(rows, folds, heads, args.per_corpus, CONFIDENT)
    cmd = "PYTHONPATH=$PWD python bench/quality.py" + (f" --full --per-corpus {args.per_corpus}" if args.full else "")
    print(f"reproduce: {cmd}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))
    return 0


# The acted corpora's fixed sentences (the words every emotion is acted on), by file-name code, from the builders'
# own tables: a perfect transcript stands in for Whisper's. CASIA's file names do not name their sentence.


def sentence_of(path: str) -> str | None:
    from affectllm.instruct.builders.filenames import _EMODB_TEXTS as EMODB_SENTENCES
    from affectllm.instruct.builders.filenames import _RAVDESS_STATEMENTS as RAVDESS_STATEMENTS

    name = Path(path).stem
    if path.startswith("ravdess/"):
        return RAVDESS_STATEMENTS.get(name.split("-")[4]) if name.count("-") >= 4 else None
    if path.startswith("emodb/"):
        return EMODB_SENTENCES.get(name[2:5])
    return None


def fused_with_words(rows, voice: np.ndarray) -> np.ndarray:
    """Each clip's voice probabilities fused with the text expert's reading of its sentence (``fuse_evidence``'s
    rule: reliability from the words read, neutral words as no evidence); [N, C]."""
    from affectllm.perception import reliability as rel
    from affectllm.perception.fusion import fuse
    from affectllm.perception.text_expert import shipped_expert
    from affectllm.perception.voice import BASE_CLASSES

    expert = shipped_expert()
    cache: dict[str, dict | None] = {}
    out = []
    for r, v in zip(rows, voice):
        s = sentence_of(r["path"])
        if s not in cache:
            cache[s] = expert.read(transcript=s) if (s and expert is not None) else None
        e = cache[s]
        r_text = rel.text_reliability({"expert": e})[:1] if e else None
        f = fuse(voice=dict(zip(BASE_CLASSES, v.tolist())), face=None, text_expert=e,
                 reliability={"text": (r_text[0], [])} if e else None)
        out.append([f["probs"][c] for c in BASE_CLASSES])
    return np.array(out)


def run_full(rows, folds, heads, per_corpus: int, confident: float) -> dict:
    """The whole pipeline (affectllm.predict) on a capped subset, each clip with its fold's voice head."""
    from starter_report import predicted_class

    import affectllm
    from affectllm.engine import experts_for

    model, processor = affectllm.load()
    experts = experts_for(model)
    order = np.random.default_rng(0).permutation(len(rows))
    picked: dict[str, list[int]] = {}
    for i in order:
        lst = picked.setdefault(rows[i]["corpus"], [])
        if len(lst) < per_corpus:
            lst.append(int(i))
    results, t0 = [], time.perf_counter()
    for corpus, idx in sorted(picked.items()):
        for i in idx:
            experts._voice = heads[int(folds[i])]  # a head that never heard this speaker
            r = affectllm.predict(model, processor, audio=str(Path(REPO.parent / "shared/corpora") / rows[i]["path"]),
                                  experts=experts)
            fused = r.evidence.get("fused") or {}
            results.append({"corpus": corpus, "label": rows[i]["label"], "final": predicted_class(r.labels),
                            "labels": r.labels, "voice": (r.evidence.get("voice") or {}).get("top"),
                            "fused": fused.get("top"), "confidence": fused.get("confidence"),
                            "faithful": getattr(r, "faithful", None)})
            print(f"[full] {rows[i]['path']}: truth {rows[i]['label']}, final {r.labels[:3]}, "
                  f"fused {fused.get('top')} {fused.get('confidence')}", flush=True)
    summary: dict = {"clips": len(results), "seconds": round(time.perf_counter() - t0, 1), "per_corpus": {}}
    for corpus in sorted(picked):
        rs = [r for r in results if r["corpus"] == corpus]
        summary["per_corpus"][corpus] = {k: float(np.mean([r[k] == r["label"] for r in rs]))
                                         for k in ("final", "voice", "fused")}
    conf = [r for r in results if r["confidence"] is not None and r["confidence"] >= confident]
    summary["final_equals_fused_when_confident"] = (float(np.mean([r["final"] == r["fused"] for r in conf]))
                                                    if conf else None)
    summary["confident_clips"] = len(conf)
    faithful = [r["faithful"] for r in results if r["faithful"] is not None]
    summary["faithful_rate"] = float(np.mean(faithful)) if faithful else None
    print(f"\nWhole pipeline (affectllm.predict) on {len(results)} held-out clips ({summary['seconds']} s):")
    print(f"{'corpus':<9}{'final':>8}{'voice':>8}{'fused':>8}")
    for c, t in summary["per_corpus"].items():
        print(f"{c:<9}{t['final']:>8.3f}{t['voice']:>8.3f}{t['fused']:>8.3f}")
    rate = summary["final_equals_fused_when_confident"]
    print(f"final first label = fused top-1 when fused p >= {confident}: "
          f"{'n/a' if rate is None else f'{rate:.3f}'} ({len(conf)} clips)")
    print("faithful rate: " + ("n/a (reports carry no `faithful` field yet)" if summary["faithful_rate"] is None
                               else f"{summary['faithful_rate']:.3f}"))
    return {"summary": summary, "clips": results}


if __name__ == "__main__":
    raise SystemExit(main())
