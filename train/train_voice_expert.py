"""Train the voice-emotion expert on ../shared/corpora with speaker-independent validation; one command:

    PYTHONPATH=$PWD python train/train_voice_expert.py            # ~12 min features (once, cached) + ~3 min fits

1. Features: pooled Whisper-base encoder states of every clip (``train/voice_features.py``; cached under
   ``$AFFECTLLM_HOME/voice_expert`` or ``--cache``), every block, so the blocks are chosen without re-encoding.
2. Folds: inside each corpus, speakers are dealt round-robin into ``--folds`` groups (CASIA's two speakers
   land in folds 0 and 1: trained on one, validated on the other, and the reverse). Fold k holds out its
   speakers of every corpus at once; each clip is validated once, by a head that never heard its speaker.
3. Grid: encoder block set (one block, or several pooled side by side) x L2 strength, scored by macro (over corpora) top-1 on the held-out speakers. The
   chosen head's out-of-fold logits fit one temperature (NLL), giving calibrated probabilities; their expected
   calibration error and a reliability diagram are written beside the weights.
4. The final head is fitted on all speakers with the chosen settings and shipped as safetensors
   (``affectllm/assets/voice_expert/voice_head.safetensors``), with ``REPORT.md``.
The out-of-fold predictions (and each fold's head) are cached for ``bench/quality.py``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "train"))

from voice_features import extract  # noqa: E402

from affectllm.instruct.labelled_corpora import speaker_folds  # noqa: E402
from affectllm.perception.fusion import FACE_WEIGHT, expected_calibration_error, reliability_bins  # noqa: E402
from affectllm.perception.voice import BASE_CLASSES, VoiceExpert, VoiceHead, block_features  # noqa: E402

SEED = 0


def fit_head(x: np.ndarray, y: np.ndarray, l2: float, balanced: bool = True) -> VoiceHead:
    """Multinomial logistic regression on standardised features (full-batch L-BFGS, deterministic)."""
    torch.manual_seed(SEED)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    head = VoiceHead(x.shape[1], len(BASE_CLASSES))
    head.mean.copy_(xt.mean(0))
    head.scale.copy_(xt.std(0).clamp_min(1e-6))
    torch.nn.init.zeros_(head.linear.weight)
    torch.nn.init.zeros_(head.linear.bias)
    counts = torch.bincount(yt, minlength=len(BASE_CLASSES)).float()
    weight = (counts.sum() / (counts.clamp_min(1) * (counts > 0).sum())) if balanced else torch.ones_like(counts)
    opt = torch.optim.LBFGS(head.linear.parameters(), lr=1, max_iter=150, history_size=20,
                            line_search_fn="strong_wolfe", tolerance_grad=1e-6)

    def closure():
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(head(xt), yt, weight=weight)
        loss = loss + l2 * head.linear.weight.pow(2).sum() / 2 / len(xt)
        loss.backward()
        return loss

    opt.step(closure)
    return head.eval()


def fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    """The temperature T minimising the NLL of softmax(logits / T) (grid, then refined)."""
    lt, yt = torch.from_numpy(logits).double(), torch.from_numpy(y)
    def nll(t: float) -> float:
        return float(torch.nn.functional.cross_entropy(lt / t, yt))
    grid = np.exp(np.linspace(np.log(0.2), np.log(10), 200))
    return float(min(grid, key=nll))


def per_corpus_accuracy(pred: np.ndarray, y: np.ndarray, corpora: np.ndarray) -> dict[str, float]:
    return {c: float((pred[corpora == c] == y[corpora == c]).mean()) for c in sorted(set(corpora))}


def baselines(y: np.ndarray, corpora: np.ndarray) -> dict[str, dict[str, float]]:
    """Chance (1 / classes present in the corpus) and the corpus's majority-class share, per corpus."""
    out = {}
    for c in sorted(set(corpora)):
        yc = y[corpora == c]
        out[c] = {"chance": 1 / len(set(yc)), "majority": float(np.bincount(yc).max() / len(yc))}
    return out


def cross_validate(x: np.ndarray, y: np.ndarray, folds: np.ndarray, l2: float) -> np.ndarray:
    """Out-of-fold logits ``[N, C]`` (each clip scored by the head trained without its speaker)."""
    logits = np.zeros((len(y), len(BASE_CLASSES)), np.float32)
    for k in sorted(set(folds)):
        tr, va = folds != k, folds == k
        head = fit_head(x[tr], y[tr], l2)
        with torch.no_grad():
            logits[va] = head(torch.from_numpy(x[va])).numpy()
    return logits


def reliability_png(probs: np.ndarray, y: np.ndarray, path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    bins = reliability_bins(probs, y, 10)
    fig, ax = plt.subplots(figsize=(4.2, 4.2), dpi=100)
    ax.plot([0, 1], [0, 1], "--", color="grey", lw=1, label="perfect calibration")
    centres = [(b["lo"] + b["hi"]) / 2 for b in bins if b["n"]]
    ax.bar(centres, [b["accuracy"] for b in bins if b["n"]], width=0.09, alpha=0.7, label="accuracy in bin")
    ax.plot([b["confidence"] for b in bins if b["n"]], [b["accuracy"] for b in bins if b["n"]], "o-", ms=3,
            color="black", label="mean confidence vs accuracy")
    ax.set(xlabel="top-1 confidence", ylabel="top-1 accuracy", xlim=(0, 1), ylim=(0, 1), title=title)
    ax.legend(fontsize=7, loc="upper left")
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    from affectllm.paths import cache_dir

    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--corpora", type=Path, default=REPO.parent / "shared" / "corpora")
    ap.add_argument("--cache", type=Path, default=None, help="feature cache (default $AFFECTLLM_HOME/voice_expert)")
    ap.add_argument("--out", type=Path, default=REPO / "affectllm" / "assets" / "voice_expert")
    ap.add_argument("--folds", type=int, default=4)
    ap.add_argument("--layers", default="2,1+2,2+3,1+2+3",
                    help="encoder block sets to try, comma-separated; 1+2 = blocks 1 and 2 pooled side by side "
                         "(block index; 6 = final output for base)")
    ap.add_argument("--l2", default="30,100,300", help="L2 strengths to try")
    ap.add_argument("--limit", type=int, default=None, help="first N clips only (a smoke run)")
    ap.add_argument("--fold-head", type=int, default=None, metavar="K",
                    help="only fit the head that never hears fold K's speakers, with the shipped head's layer, L2 "
                         "and temperature (seconds, from the cached features); written to --head-out")
    ap.add_argument("--head-out", type=Path, default=None, help="where --fold-head writes its safetensors")
    args = ap.parse_args(argv)
    torch.manual_seed(SEED)
    torch.set_num_threads(1)
    cache = args.cache or cache_dir("voice_expert")
    if args.fold_head is not None:
        if args.head_out is None:
            ap.error("--fold-head needs --head-out PATH")
        fit_fold_head(args.corpora, cache, args.fold_head, args.folds, args.head_out)
        return 0
    t0 = time.perf_counter()
    rows, feats, layers = extract(args.corpora, cache, limit=args.limit)  # [N, L, 2D]
    y = np.array([BASE_CLASSES.index(r["label"]) for r in rows])
    corpora = np.array([r["corpus"] for r in rows])
    folds = speaker_folds(rows, args.folds)
    base = baselines(y, corpora)
    print(f"[data] {len(rows)} clips; folds by speaker: "
          + ", ".join(f"{k}: {sorted({r['speaker'] for r, f in zip(rows, folds) if f == k})}" for k in range(args.folds)))

    grid = []
    for layer in [tuple(int(b) for b in v.split("+")) for v in args.layers.split(",")]:
        for l2 in [float(v) for v in args.l2.split(",")]:
            logits = cross_validate(block_features(feats, layer), y, folds, l2)
            acc = per_corpus_accuracy(logits.argmax(1), y, corpora)
            macro = float(np.mean(list(acc.values())))
            grid.append({"layer": layer, "l2": l2, "macro": macro, **acc, "logits": logits})
            print(f"[cv] blocks {'+'.join(map(str, layer))} l2 {l2:g}: macro {macro:.3f}  "
                  + "  ".join(f"{c} {a:.3f}" for c, a in acc.items()), flush=True)
    best = max(grid, key=lambda g: g["macro"])
    temperature = fit_temperature(best["logits"], y)
    probs = torch.softmax(torch.from_numpy(best["logits"]) / temperature, -1).numpy()  # [N, C]
    raw = torch.softmax(torch.from_numpy(best["logits"]), -1).numpy()
    ece, ece_raw = expected_calibration_error(probs, y), expected_calibration_error(raw, y)
    acc = per_corpus_accuracy(probs.argmax(1), y, corpora)
    macro = float(np.mean(list(acc.values())))
    print(f"\n[best] layer {best['layer']}, l2 {best['l2']:g}, temperature {temperature:.3f}")
    print(f"{'corpus':<10}{'voice':>8}{'chance':>8}{'majority':>10}")
    for c in acc:
        print(f"{c:<10}{acc[c]:>8.3f}{base[c]['chance']:>8.3f}{base[c]['majority']:>10.3f}")
    print(f"{'macro':<10}{macro:>8.3f}{np.mean([b['chance'] for b in base.values()]):>8.3f}"
          f"{np.mean([b['majority'] for b in base.values()]):>10.3f}")
    print(f"[calibration] ECE {ece:.4f} after temperature (before: {ece_raw:.4f}), 10 equal-width bins")

    # final head on every speaker, temperature folded into the linear layer
    head = fit_head(block_features(feats, best["layer"]), y, best["l2"])
    with torch.no_grad():
        head.linear.weight /= temperature
        head.linear.bias /= temperature
    info = {"whisper": "base", "layer": list(best["layer"]), "l2": best["l2"], "temperature": round(temperature, 4),
            "cv_macro_top1": round(macro, 4), "cv_top1": {c: round(a, 4) for c, a in acc.items()},
            "ece": round(ece, 4), "clips": len(rows), "folds": args.folds}
    args.out.mkdir(parents=True, exist_ok=True)
    VoiceExpert(head, best["layer"], BASE_CLASSES, info).save(args.out / "voice_head.safetensors")
    reliability_png(probs, y, args.out / "reliability.png",
                    f"voice expert, held-out speakers (ECE {ece:.3f})")

    # out-of-fold predictions and per-fold heads for bench/quality.py
    fold_heads = {}
    for k in range(args.folds):
        h = fit_head(block_features(feats[folds != k], best["layer"]), y[folds != k], best["l2"])
        with torch.no_grad():
            h.linear.weight /= temperature
            h.linear.bias /= temperature
        VoiceExpert(h, best["layer"], BASE_CLASSES, {"fold": k}).save(cache / f"voice_head_fold{k}.safetensors")
        fold_heads[k] = str(cache / f"voice_head_fold{k}.safetensors")
    np.savez(cache / "voice_oof.npz", paths=np.array([r["path"] for r in rows]), probs=probs, y=y,
             corpora=corpora, folds=folds, speakers=np.array([r["speaker"] for r in rows]))
    (cache / "voice_oof.json").write_text(json.dumps({"fold_heads": fold_heads, **info}, indent=1))
    write_report(args.out / "REPORT.md", info, acc, base, grid, ece, ece_raw, temperature, time.perf_counter() - t0)
    print(f"[done] {args.out / 'voice_head.safetensors'}  ({time.perf_counter() - t0:.0f} s)")
    return 0


def fit_fold_head(corpora_dir: Path, cache: Path, fold: int, k: int, out: Path) -> VoiceExpert:
    """The voice head trained on every speaker but fold ``fold``'s, with the shipped head's settings.

    Used by the starter recipe: its training rows and its held-out evaluation are perceived with this head,
    so no cue comes from a head that saw a held-out speaker's labels. The features are the full cache (the
    split is by speaker, whatever subset of rows the caller trains on).
    """
    shipped = VoiceExpert.load()
    layer, l2, temperature = shipped.layers, float(shipped.info["l2"]), float(shipped.info["temperature"])
    rows, feats, _ = extract(corpora_dir, cache)  # [N, L, 2D], cached
    y = np.array([BASE_CLASSES.index(r["label"]) for r in rows])
    folds = speaker_folds(rows, k)
    keep = folds != fold
    head = fit_head(block_features(feats[keep], layer), y[keep], l2)
    with torch.no_grad():
        head.linear.weight /= temperature
        head.linear.bias /= temperature
    heard = sorted({r["speaker"] for r, f in zip(rows, folds) if f != fold})
    info = {"whisper": shipped.info.get("whisper", "base"), "layer": list(layer), "l2": l2, "temperature": temperature,
            "fold": fold, "folds": k, "clips": int(keep.sum()), "speakers": heard}
    expert = VoiceExpert(head, layer, BASE_CLASSES, info)
    expert.save(out)
    print(f"[fold head] fold {fold}/{k} held out; trained on {int(keep.sum())} clips of {len(heard)} speakers -> {out}")
    return expert


def write_report(path: Path, info: dict, acc: dict, base: dict, grid: list, ece: float, ece_raw: float,
                 temperature: float, seconds: float) -> None:
    rows = "\n".join(f"| {c} | {acc[c]:.3f} | {base[c]['chance']:.3f} | {base[c]['majority']:.3f} |" for c in acc)
    macro = np.mean(list(acc.values()))
    chance = np.mean([b["chance"] for b in base.values()])
    major = np.mean([b["majority"] for b in base.values()])
    gtable = "\n".join(f"| {'+'.join(map(str, g['layer']))} | {g['l2']:g} | {g['macro']:.3f} |" for g in grid)
    path.write_text(f"""# Voice-emotion expert: report

Re-create: `PYTHONPATH=$PWD python train/train_voice_expert.py` (features cached under `$AFFECTLLM_HOME/voice_expert`;
this run took {seconds / 60:.1f} min on 2 shared CPU cores).

**What it is.** A linear softmax head (multinomial logistic regression, class-balanced, L2 {info['l2']:g}) on the
mean- and std-pooled hidden states of blocks {' and '.join(map(str, info['layer']))} (side by side) of the frozen Whisper-base encoder (the Transcriber's
own weights), computed over the clip's real length (first 30 s). Classes: {', '.join(BASE_CLASSES)}.
Valence/arousal: the probability-weighted circumplex positions of the classes (`affectllm.instruct.grounded.EMOTIONS`).
Probabilities are temperature-scaled (T = {temperature:.3f}, fitted on the out-of-fold logits; folded into the
shipped weights).

**Data.** `../shared/corpora`: {info['clips']} acted clips (RAVDESS 16 actors, English; EmoDB 7 speakers, German;
CASIA 2 speakers, Mandarin). Licences: RAVDESS CC BY-NC-SA 4.0, EmoDB CC0, CASIA research use only, so these
weights are for research / non-commercial use.

**Validation: speaker-independent.** Speakers of each corpus are dealt into {info['folds']} folds; each clip is
scored by a head trained without its speaker (CASIA: trained on one speaker, validated on the other, and the
reverse). Top-1 accuracy on held-out speakers, predicting over all {len(BASE_CLASSES)} classes:

| corpus | voice expert | chance (1/classes in corpus) | majority class share |
|---|---|---|---|
{rows}
| **macro** | **{macro:.3f}** | {chance:.3f} | {major:.3f} |

The layer and L2 were chosen on these same folds (grid below), so the macro figure is slightly optimistic.

| layer | L2 | macro top-1 |
|---|---|---|
{gtable}

**Calibration.** Expected calibration error of the held-out top-1 confidence (10 equal-width bins):
{ece:.4f} after temperature scaling ({ece_raw:.4f} before). Reliability diagram: `reliability.png`.

**Fusion.** `affectllm/perception/fusion.py` pools the experts log-linearly. These corpora are audio only, so
the face expert's weight cannot be fitted on them: it is a documented prior ({FACE_WEIGHT}); on these corpora the
fused estimate equals the voice expert's (no face), and its calibration is the one above.
""")


if __name__ == "__main__":
    raise SystemExit(main())
