"""Evaluate a starter adapter on the held-out speakers' clips and write its training report.

    python train/starter_report.py --adapter runs/starter-cpu/adapter --heldout DATA/heldout.jsonl \
        --voice-head DATA/voice_head_fold0.safetensors --run runs/starter-cpu --composition DATA/composition.json \
        --out runs/starter-cpu/report

Every held-out clip is perceived once, with the fold voice head that never heard its speaker (the same head the
training rows' cues came from), then reported twice by the engine: with the first label anchored to the fused
top class (``Engine.grounded``, what users get) and with ``anchor_labels=False`` (the language model's own
labels), so the LLM's contribution is visible. Per corpus, beside chance (1 / classes present) and the majority
class share of the same clips: each expert alone (voice; face where a clip has frames), the fused estimate, both
final labels, the faithfulness rate and how often the first label equals the fused top-1 when the fusion is
confident. Writes OUT/REPORT.md, OUT/report.json, OUT/confusion.png (the LLM's own labels) and OUT/loss.png.
A final label is the first predicted label that maps to a starter class; a report with none counts as wrong.
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
LICENCES = {"ravdess": "CC BY-NC-SA 4.0 (Livingstone & Russo 2018)",
            "emodb": "CC0-1.0 (audEERING release of Burkhardt et al. 2005)",
            "casia": "research use only (CASIA public subset)",
            "faces": "../shared/media/faces/emotion_classification.jpg (see ../shared/DATA.md)",
            "synthetic": "made here with espeak-ng (GPL-3.0 tool; its output is not covered)"}
COLUMNS = ("voice", "face", "fused", "final_anchored", "final_llm")


def predicted_class(labels: list[str]) -> str | None:
    """The first label's starter class: by the project's aliases, then the label sets' fine vocabulary
    (``label_sets.base_of_label``: admiring, grateful, amused -> happy), then a few free-text synonyms."""
    from affectllm.instruct.grounded import ALIASES
    from affectllm.perception.label_sets import base_of_label

    for label in labels:
        label = ALIASES.get(label, label)
        label = label if label in CLASSES else (base_of_label(label) or SYNONYMS.get(label, label))
        if label in CLASSES:
            return label
    return None


def confusion_png(pairs: list[tuple[str, str | None]], out: Path, title: str) -> None:
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
    ax.set_title(title)
    fig.tight_layout()
    fig.savefig(out, dpi=110)
    plt.close(fig)


def summarise(samples: list[dict], confident: float) -> dict:
    """Per-corpus (and macro) accuracy of every column beside chance and the majority class; rates."""
    def rate(sel: list[dict], key: str) -> float | None:
        have = [s for s in sel if s[key] is not None] if key == "face" else sel
        return round(sum(s[key] == s["class"] for s in have) / len(have), 4) if have else None

    per: dict[str, dict] = {}
    for corpus in sorted({s["corpus"] for s in samples}):
        sel = [s for s in samples if s["corpus"] == corpus]
        counts = Counter(s["class"] for s in sel)
        per[corpus] = {"clips": len(sel), "speakers": sorted({s["speaker"] for s in sel if s["speaker"]}),
                       "chance": round(1 / len(counts), 4), "majority": round(max(counts.values()) / len(sel), 4),
                       **{k: rate(sel, k) for k in COLUMNS}}
    macro = {k: (round(sum(v[k] for v in per.values()) / len(per), 4) if all(v[k] is not None for v in per.values())
                 else None) for k in ("chance", "majority", *COLUMNS)}
    conf = [s for s in samples if s["fused_confidence"] is not None and s["fused_confidence"] >= confident]
    out = {"per_corpus": per, "macro": macro, "clips": len(samples), "confident_clips": len(conf)}
    for mode in ("anchored", "llm"):
        out[f"first_equals_fused_when_confident_{mode}"] = (
            round(sum(s[f"final_{mode}"] == s["fused"] for s in conf) / len(conf), 4) if conf else None)
        out[f"faithful_rate_{mode}"] = round(sum(s[f"faithful_{mode}"] for s in samples) / max(len(samples), 1), 4)
        out[f"follows_format_{mode}"] = round(sum(s[f"formatted_{mode}"] for s in samples) / max(len(samples), 1), 4)
        # the model's own explanation passed the faithfulness check (else the engine composed one)
        out[f"own_explanation_faithful_{mode}"] = round(
            1 - sum(bool(s.get(f"replaced_{mode}")) for s in samples) / max(len(samples), 1), 4)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--adapter", type=Path, required=True)
    ap.add_argument("--heldout", type=Path, required=True)
    ap.add_argument("--voice-head", type=Path, required=True, help="the fold head the training rows were built with")
    ap.add_argument("--run", type=Path, required=True, help="the training output folder (metrics, loss.png)")
    ap.add_argument("--composition", type=Path, default=None)
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None)
    ap.add_argument("--batch", type=int, default=4, help="reports generated together")
    ap.add_argument("--timings", type=Path, default=None, help="JSON of the recipe's stage wall times, if any")
    ap.add_argument("--real", type=Path, default=None,
                    help="a folder of real, unlabelled clips to print full reports of (default: SHARED/media/tv)")
    ap.add_argument("--real-clips", type=int, default=5, help="how many of them (sorted by name)")
    ap.add_argument("--rescore", action="store_true", help="score the samples of OUT/report.json again (after a "
                    "change to the scoring) and rewrite REPORT.md, without generating anything")
    ap.add_argument("--quantization", default=None, help="load the adapter quantised (dynamic-int8 on a CPU) to "
                    "measure what quantisation costs")
    ap.add_argument("--dtype", default="shipped", help="the LLM's precision: shipped (the one the embedded default "
                    "loads in on this machine, loading.resolve_dtype; model/limits.py: AUTO_CPU_DTYPE), float32, bfloat16")
    args = ap.parse_args(argv)

    if args.rescore:
        return rescore(args.out)
    import torch

    import affectllm
    from affectllm.engine import Engine, experts_for
    from affectllm.instruct.io import iter_jsonl
    from affectllm.perception.fusion import CONFIDENT
    from affectllm.perception.voice import VoiceExpert

    if args.dtype == "shipped":  # what users of the installed starter get here
        from affectllm.loading import resolve_dtype

        bf16 = resolve_dtype("auto", torch.device("cpu"), shipped=True) == torch.bfloat16
        args.dtype = "bfloat16" if bf16 else "float32"
    model, processor = affectllm.load(adapter=str(args.adapter), quantization=args.quantization, dtype=args.dtype)
    experts = experts_for(model)
    experts._voice = VoiceExpert.load(args.voice_head)  # never heard a held-out speaker
    engine = Engine(model, processor, experts=experts)
    rows = [row for _, row in iter_jsonl(args.heldout)][: args.limit]
    samples: list[dict] = []
    t0 = time.perf_counter()
    for b in range(0, len(rows), args.batch):
        chunk = rows[b:b + args.batch]
        ps = [engine.perceive(next(row[k] for k in ("video", "audio", "image") if k in row)) for row in chunk]
        engine.anchor_labels = True
        anchored = engine.report(ps)
        engine.anchor_labels = False
        free = engine.report(ps)
        for row, p, ra, rf in zip(chunk, ps, anchored, free):
            ev = p.evidence()
            fused = ev.get("fused") or {}
            s = {"id": row["id"], "corpus": row["meta"].get("corpus", row["source"]),
                 "speaker": row["meta"].get("speaker"), "synthetic": row["meta"]["synthetic"],
                 "class": row["meta"]["class"], "voice": (ev.get("voice") or {}).get("top"),
                 "face": (ev.get("face") or {}).get("top"), "fused": fused.get("top"),
                 "fused_confidence": fused.get("confidence"),
                 "final_anchored": predicted_class(ra.labels), "final_llm": predicted_class(rf.labels),
                 "labels_anchored": ra.labels, "labels_llm": rf.labels,
                 "faithful_anchored": bool(ra.faithful), "faithful_llm": bool(rf.faithful),
                 "formatted_anchored": bool(ra.labels) and bool(ra.explanation),
                 "formatted_llm": bool(rf.labels) and bool(rf.explanation),
                 "replaced_anchored": bool(ra.explanation_replaced), "replaced_llm": bool(rf.explanation_replaced),
                 "explanation_source_llm": rf.explanation_source, "replaced_why_llm": rf.explanation_replaced,
                 "explanation_llm": rf.explanation, "transcript": p.transcript}
            samples.append(s)
            print(f"{s['id']}: {s['class']} -> anchored {s['final_anchored']}, llm {s['final_llm']} {rf.labels} "
                  f"(voice {s['voice']}, fused {s['fused']} {s['fused_confidence']})", flush=True)
    wall = time.perf_counter() - t0
    real = real_reports(model, processor, args.real, args.real_clips)
    args.out.mkdir(parents=True, exist_ok=True)
    confusion_png([(s["class"], s["final_llm"]) for s in samples], args.out / "confusion.png",
                  "Starter adapter, held-out speakers: the LLM's own first label")
    if (args.run / "loss.png").exists():
        shutil.copy(args.run / "loss.png", args.out / "loss.png")
    composition = json.loads(args.composition.read_text()) if args.composition and args.composition.exists() else {}
    summary = json.loads((args.run / "summary.json").read_text()) if (args.run / "summary.json").exists() else {}
    timings = json.loads(args.timings.read_text()) if args.timings and args.timings.exists() else {}
    report = {"backbone": model.config.text_model, "quantization": args.quantization, "dtype": args.dtype, "quality": summarise(samples, CONFIDENT), "confident": CONFIDENT,
              "voice_head": {"file": args.voice_head.name, **experts._voice.info},
              "composition": composition, "training": summary, "timings_s": timings,
              "eval_wall_s": round(wall, 1), "licences": LICENCES, "samples": samples, "real": real}
    (args.out / "report.json").write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (args.out / "REPORT.md").write_text(render_markdown(report))
    print(json.dumps(report["quality"], indent=2))
    return 0


def rescore(out: Path) -> int:
    """Recompute the final classes of the saved samples from their labels, then the summary and REPORT.md."""
    from affectllm.perception.fusion import CONFIDENT

    path = out / "report.json"
    report = json.loads(path.read_text())
    for s in report["samples"]:
        s["final_anchored"], s["final_llm"] = predicted_class(s["labels_anchored"]), predicted_class(s["labels_llm"])
    report["quality"] = summarise(report["samples"], report.get("confident", CONFIDENT))
    confusion_png([(s["class"], s["final_llm"]) for s in report["samples"]], out / "confusion.png",
                  "Starter adapter, held-out speakers: the LLM's own first label")
    path.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    (out / "REPORT.md").write_text(render_markdown(report))
    print(json.dumps(report["quality"]["macro"], indent=2))
    return 0


def real_reports(model, processor, folder: Path | None, n: int) -> list[dict]:
    """Full reports on ``n`` real clips (no labels: they show what a user gets, not a score), by the engine a user
    gets (the shipped voice head, default question, anchored labels)."""
    from affectllm.engine import Engine, experts_for
    from affectllm.utils.paths import shared_dir

    if folder is None:
        root = shared_dir()
        folder = root / "media" / "tv" if root is not None else None
    if folder is None or not folder.is_dir():
        return []
    engine = Engine(model, processor, experts=experts_for(model))
    out = []
    for clip in sorted(folder.glob("*.mp4"))[:n]:
        p = engine.perceive(str(clip))
        r = engine.report([p])[0]
        fused = p.evidence().get("fused") or {}
        out.append({"clip": clip.name, "labels": r.labels, "explanation": r.explanation,
                    "explanation_source": r.explanation_source, "replaced_why": r.explanation_replaced,
                    "faithful": r.faithful,
                    "problems": r.faithfulness_problems, "transcript": p.transcript,
                    "weights": fused.get("weights"), "raw": r.raw})
        print(f"{clip.name}: {r.labels} faithful={r.faithful} ({r.explanation_source})", flush=True)
    return out


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def render_markdown(r: dict) -> str:
    q, comp = r["quality"], r.get("composition", {})
    split = comp.get("split", {})
    lines = ["# The starter adapter: training report", "",
             f"Backbone `{r['backbone']}` + Whisper base encoder + face-expression towers (registry wheels); Q-Former "
             f"projector and LoRA trained on 2 CPU cores; the reports below were generated in {r.get('dtype') or 'float32'} "
             "(the precision the embedded default loads in on this machine). Re-create: `bash train/make_starter.sh` "
             "(`BACKBONE=smollm2 bash train/make_starter.sh` for SmolLM2-135M-Instruct with the same data).", "",
             "**Licence of this adapter: research / non-commercial use only.** It is trained on RAVDESS "
             "(CC BY-NC-SA 4.0), EmoDB (CC0-1.0) and CASIA (research use only).", "",
             "## Held-out speakers (never trained on; speaker-independent)", "",
             f"Speakers dealt round-robin into {split.get('folds', '?')} folds inside each corpus "
             f"(`affectllm/instruct/labelled_corpora.py`); fold {split.get('heldout_fold', '?')} is held out: "
             + "; ".join(f"{c}: {', '.join(s)}" for c, s in split.get("heldout_speakers", {}).items()) + ". "
             f"Every cue (training rows and this evaluation) comes from the voice head `{r['voice_head']['file']}` "
             f"trained on {r['voice_head'].get('clips', '?')} clips of the other speakers only.", "",
             f"Top-1 accuracy on {q['clips']} held-out clips (all real), predicting over all 9 starter classes:", "",
             "| corpus | clips | chance | majority | voice alone | face alone | fused | final (anchored) "
             "| final (LLM's own) |", "|---|---|---|---|---|---|---|---|---|"]
    for c, v in q["per_corpus"].items():
        lines.append(f"| {c} | {v['clips']} | {_f(v['chance'])} | {_f(v['majority'])} | {_f(v['voice'])} | "
                     f"{_f(v['face'])} | {_f(v['fused'])} | {_f(v['final_anchored'])} | {_f(v['final_llm'])} |")
    m = q["macro"]
    lines += [f"| **macro** | {q['clips']} | {_f(m['chance'])} | {_f(m['majority'])} | {_f(m['voice'])} | "
              f"{_f(m['face'])} | {_f(m['fused'])} | **{_f(m['final_anchored'])}** | {_f(m['final_llm'])} |", "",
              "- face alone: n/a where the clips have no frames (the corpora are audio only), so there the fused "
              "estimate rests on the voice and the text cues.",
              "- final (anchored): the engine starts a default-question report with `Labels: <fused top class>` "
              "(`Engine.grounded`); final (LLM's own): the same model with `anchor_labels=False`.",
              f"- first label = fused top-1 when the fusion is confident (p >= {r['confident']}, "
              f"{q['confident_clips']} clips): anchored {_f(q['first_equals_fused_when_confident_anchored'])}, "
              f"LLM's own {_f(q['first_equals_fused_when_confident_llm'])}",
              f"- faithfulness rate (`faithful: true`): anchored {_f(q['faithful_rate_anchored'])}, "
              f"LLM's own {_f(q['faithful_rate_llm'])}",
              f"- reports that follow the format (labels and explanation parsed): anchored "
              f"{_f(q['follows_format_anchored'])}, LLM's own {_f(q['follows_format_llm'])}",
              f"- the model's own explanation passes the faithfulness check (quotes, cited words, cited figures, "
              f"loops; else the engine composes one from the evidence): anchored "
              f"{_f(q.get('own_explanation_faithful_anchored'))}, LLM's own {_f(q.get('own_explanation_faithful_llm'))}",
              "",
              "![confusion matrix of the LLM's own labels](confusion.png)", "",
              "## Data composition", "",
              "| split | rows | real | synthetic | by source |", "|---|---|---|---|---|"]
    for name in ("train", "heldout"):
        c = comp.get(name)
        if c:
            lines.append(f"| {name} | {c['rows']} | {c['rows'] - c['synthetic']} | {c['synthetic']} | "
                         + ", ".join(f"{k} {v}" for k, v in c["by_source"].items()) + " |")
    if split:
        lines += ["", f"Corpus clips available: train speakers {split['available']['train']}, held-out speakers "
                  f"{split['available']['heldout']}; used (a (corpus, class)-balanced cap, so the LLM stage fits "
                  f"the time budget): {split['used']['train']} and {split['used']['heldout']}."]
    lines += ["", "What is synthetic (marked `meta.synthetic`, training only): a few espeak-ng sentences and "
              "10-fps videos of a labelled face photo with a synthetic sentence, kept for what the corpora lack "
              "(faces with sound, English words that carry the emotion). Whether they still help has not been "
              "measured by an ablation: rebuild with `--synthetic 0` to compare.",
              "Targets: labels from the clip's class; valence/arousal from a fixed circumplex table; the "
              "explanation reasons over the cues the experts measured on that clip (each channel cited, conflicts "
              "weighed, missing channels said, varied phrasings: `affectllm/instruct/reasoning.py`).", "",
              "## Data licences", ""]
    lines += [f"- {k}: {v}" for k, v in r["licences"].items()]
    lines += ["", "## Training", "", "![loss curve](loss.png)", ""]
    if r.get("timings_s"):
        lines += ["Wall time per stage (s): " + ", ".join(f"{k} {v}" for k, v in r["timings_s"].items()), ""]
    lines += [f"Evaluation wall time: {r['eval_wall_s']:.0f} s.", "", "```json",
              json.dumps(r.get("training", {}), indent=2)[:3000], "```", "", "## Examples (LLM's own labels)", ""]
    for s in r["samples"][:8]:
        lines.append(f"- `{s['id']}` ({s['class']}): {s['labels_llm']} — {(s['explanation_llm'] or '')[:240]}")
    if r.get("real"):
        lines += ["", f"## {len(r['real'])} real reports (TV clips, no labels: what a user gets)", "",
                  "The shipped voice head, the default question, labels anchored on the fused estimate. "
                  f"Faithful: {sum(bool(x['faithful']) for x in r['real'])}/{len(r['real'])}.", ""]
        for x in r["real"]:
            lines += [f"### `{x['clip']}`", "", f"- transcript: {x['transcript']!r}",
                      f"- fusion weights: {x['weights']}", f"- labels: {', '.join(x['labels']) or '(none)'}",
                      f"- explanation ({x['explanation_source']}, faithful: {x['faithful']}): {x['explanation']}",
                      *([f"- the model's own explanation was replaced: {'; '.join(x['replaced_why'])}"]
                        if x.get("replaced_why") else []),
                      *([f"- faithfulness problems: {x['problems']}"] if x["problems"] else []), ""]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
