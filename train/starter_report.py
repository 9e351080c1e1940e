"""Evaluate a starter adapter on the held-out labelled clips and write its training report.

    python train/starter_report.py --adapter runs/starter-cpu/adapter --heldout DIR/heldout.jsonl \
        --run runs/starter-cpu --out affectllm/assets/starter

Writes OUT/REPORT.md (data composition, loss curve, accuracy, confusion matrix, what is synthetic),
OUT/report.json (numbers), OUT/confusion.png and OUT/loss.png. Accuracy: the first predicted label that maps
to one of the starter classes must equal the clip's class; a report with no such label counts as wrong.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

CLASSES = ["neutral", "calm", "happy", "sad", "angry", "fearful", "disgusted", "surprised", "bored"]
SYNONYMS = {"joyful": "happy", "joy": "happy", "relaxed": "calm", "worried": "fearful", "afraid": "fearful",
            "scared": "fearful", "anxious": "fearful", "nervous": "fearful", "annoyed": "angry",
            "frustrated": "angry", "content": "calm", "excited": "happy", "sorrowful": "sad", "upset": "sad"}


def predicted_class(labels: list[str]) -> str | None:
    from affectllm.instruct.grounded import ALIASES

    for label in labels:
        label = ALIASES.get(label, label)
        label = SYNONYMS.get(label, label)
        if label in CLASSES:
            return label
    return None


def confusion_png(pairs: list[tuple[str, str | None]], out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    cols = [*CLASSES, "(none)"]
    m = np.zeros((len(CLASSES), len(cols)), int)
    for gt, pred in pairs:
        m[CLASSES.index(gt), cols.index(pred or "(none)")] += 1
    fig, ax = plt.subplots(figsize=(7, 6))
    ax.imshow(m, cmap="Blues")
    ax.set_xticks(range(len(cols)), cols, rotation=45, ha="right")
    ax.set_yticks(range(len(CLASSES)), CLASSES)
    ax.set_xlabel("predicted (first label in a starter class)")
    ax.set_ylabel("true class")
    for i in range(m.shape[0]):
        for j in range(m.shape[1]):
            if m[i, j]:
                ax.text(j, i, str(m[i, j]), ha="center", va="center", color="black")
    ax.set_title("Starter adapter on held-out clips")
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--adapter", type=Path, required=True)
    ap.add_argument("--heldout", type=Path, required=True)
    ap.add_argument("--run", type=Path, required=True, help="the training output folder (metrics, loss.png)")
    ap.add_argument("--composition", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None)
    args = ap.parse_args(argv)

    import affectllm
    from affectllm.instruct.io import iter_jsonl

    model, processor = affectllm.load(adapter=str(args.adapter))
    rows = [row for _, row in iter_jsonl(args.heldout)][: args.limit]
    samples, pairs, follows_format = [], [], 0
    t0 = time.perf_counter()
    for row in rows:
        media = {k: row[k] for k in ("video", "audio", "image") if k in row}
        report = affectllm.predict(model, processor, **media)
        pred = predicted_class(report.labels)
        gt = row["meta"]["class"]
        pairs.append((gt, pred))
        follows_format += bool(report.labels) and bool(report.explanation)
        samples.append({"id": row["id"], "source": row["source"], "synthetic": row["meta"]["synthetic"],
                        "class": gt, "predicted": pred, "labels": report.labels, "valence": report.valence,
                        "arousal": report.arousal, "explanation": report.explanation})
        print(f"{row['id']}: {gt} -> {pred} {report.labels}", flush=True)
    wall = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    confusion_png(pairs, args.out / "confusion.png")
    if (args.run / "loss.png").exists():
        shutil.copy(args.run / "loss.png", args.out / "loss.png")

    def acc(filter_fn) -> tuple[float, int]:
        sel = [s for s in samples if filter_fn(s)]
        return (sum(s["class"] == s["predicted"] for s in sel) / len(sel) if sel else 0.0), len(sel)

    by_source = {src: acc(lambda s, src=src: s["source"] == src) for src in sorted({s["source"] for s in samples})}
    overall, n = acc(lambda s: True)
    real, n_real = acc(lambda s: not s["synthetic"])
    majority = Counter(s["class"] for s in samples).most_common(1)[0][1] / max(len(samples), 1)
    composition = json.loads(args.composition.read_text()) if args.composition and args.composition.exists() else {}
    summary = json.loads((args.run / "summary.json").read_text()) if (args.run / "summary.json").exists() else {}
    report = {"heldout_samples": n, "accuracy": round(overall, 4), "accuracy_real_clips": round(real, 4),
              "real_clips": n_real, "majority_class_rate": round(majority, 4),
              "follows_format": round(follows_format / max(n, 1), 4),
              "accuracy_by_source": {k: {"accuracy": round(v[0], 4), "n": v[1]} for k, v in by_source.items()},
              "composition": composition, "training": summary, "eval_wall_s": round(wall, 1), "samples": samples}
    (args.out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (args.out / "REPORT.md").write_text(render_markdown(report))
    print(json.dumps({k: v for k, v in report.items() if k != "samples"}, indent=2))
    return 0


def render_markdown(r: dict) -> str:
    comp = r.get("composition", {})
    lines = ["# The starter adapter: training report", "",
             "The embedded default (Gemma-3-270M base + Whisper base encoder + mini-Xception face tower, all from "
             "registry wheels) with its Q-Former projector and LoRA trained on 2 CPU cores. Re-create it with "
             "`bash train/make_starter.sh`.", "",
             "## Data composition", "",
             "| split | rows | real clips | synthetic clips | by source |", "|---|---|---|---|---|"]
    for split, c in comp.items():
        lines.append(f"| {split} | {c['rows']} | {c['rows'] - c['synthetic']} | {c['synthetic']} | "
                     + ", ".join(f"{k} {v}" for k, v in c["by_source"].items()) + " |")
    lines += ["", "What is synthetic (marked `meta.synthetic` in every row):",
              "- `synthetic-espeak`: English sentences written for each emotion, spoken by espeak-ng "
              "(4 voices) with emotion-typical rate, pitch and loudness; the words carry the emotion.",
              "- `synthetic-espeak+face`: 10-fps videos of one labelled face photo (emotion_classification.jpg) "
              "moving slightly on a grey canvas, with a synthetic sentence of the same emotion as audio.",
              "- Real: RAVDESS actor 01 (normal-intensity takes trained, strong-intensity takes held out, "
              "the one video held out), EmoDB (one take per emotion trained, the other held out), the four "
              "labelled face crops (trained).",
              "- Targets: labels from the clip's class; valence/arousal from a fixed circumplex table; the "
              "explanation is composed from the cues the experts measured on that clip "
              "(`affectllm/instruct/grounded.py`).", "",
              "## Quality on held-out clips (never trained on)", "",
              f"- accuracy (first label in a starter class = true class): **{r['accuracy']:.3f}** on "
              f"{r['heldout_samples']} clips (majority-class rate {r['majority_class_rate']:.3f})",
              f"- accuracy on real clips only: {r['accuracy_real_clips']:.3f} on {r['real_clips']} clips",
              f"- reports that follow the output format (labels and explanation parsed): {r['follows_format']:.3f}",
              "", "| source | accuracy | n |", "|---|---|---|"]
    for k, v in r["accuracy_by_source"].items():
        lines.append(f"| {k} | {v['accuracy']:.3f} | {v['n']} |")
    lines += ["", "![confusion matrix](confusion.png)", "", "## Training", "",
              "![loss curve](loss.png)", "", "```json", json.dumps(r.get("training", {}), indent=2)[:3000], "```",
              "", "## Examples", ""]
    for s in r["samples"][:8]:
        lines.append(f"- `{s['id']}` ({s['class']}): labels {s['labels']} — {s['explanation'][:240]}")
    lines += ["", "Limits: the held-out set is small (tens of clips, one RAVDESS actor, synthetic English speech), "
              "so these numbers say whether the adapter follows the format and uses the cues, not how it does on "
              "MER benchmarks. Train on MER-Caption+ / OV-MERD (`train/configs/qwen2.5-7b-lora.yaml`) for that.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
