"""Score one prediction file against one task's ground truth: the content of results.json, samples.jsonl and the
data behind report.html. Dispatches on the task kind (openset / onehot / sentiment / emer).

Predictions are looked up per ground-truth id (the official protocol): a missing prediction is an empty one;
ids present on one side only are counted and listed in ``results["ids"]``. Free-text predictions go through the
judge (deterministic lexicon by default) before scoring. Nothing here imports torch (EMER's embedding variant
does, lazily, in emer.py).
"""

from __future__ import annotations

import datetime as _dt
import functools
import os
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from affectllm.evaluation.chance import onehot_floor, openset_floor, sentiment_floor
from affectllm.evaluation.io import Record, SampleFile, align, load_samples, read_synonym_groups
from affectllm.evaluation.judges.base import Judge
from affectllm.evaluation.normalise import LOAD_STATS, Normaliser, get_normaliser, get_tables
from affectllm.evaluation.onehot import ClassMapper, canonical_class, classification_metrics
from affectllm.evaluation.ovmer import SampleSets, ew_block, ew_metrics, ew_summary, hit_rate, mer2024_metric
from affectllm.evaluation.parsing import clean_labels, parse_clean, parse_list_string
from affectllm.evaluation.prepared import load_gt, prepared_gt
from affectllm.evaluation.resources import resolve_wheel_dir, resource_hashes
from affectllm.evaluation.sentiment import sentiment_metrics
from affectllm.evaluation.tables import METRICS, TABLES_VERSION
from affectllm.evaluation.tasks import Task, load_task

STRICT_DIFFERENCES = [
    "neutral is kept as a label (official: dropped, so an all-neutral ground truth is skipped)",
    "format.csv forms are not attached to canonical names that negate them (official: fear → fearless → brave)",
    "one-hot sets: only the first predicted label counts (official: a hit if any predicted label matches)",
    "sentiment: a neutral prediction is wrong (official: counted as negative)",
]

Source = str | os.PathLike[str] | SampleFile | dict[str, Any]


@dataclass
class Evaluation:
    results: dict[str, Any]
    samples: list[dict[str, Any]] = field(default_factory=list)
    plots: dict[str, Any] = field(default_factory=dict)


@functools.lru_cache(maxsize=1)
def _version() -> str:
    try:
        from importlib.metadata import version

        return version("affectllm")
    except Exception:  # noqa: BLE001 - not installed (running from a checkout)
        return "0+unknown"


class _Predictions:
    """Resolves each ground-truth id's prediction into labels (parsing or judge), remembering the source."""

    def __init__(self, pred: SampleFile, judge_factory: Any) -> None:
        self.pred = pred
        self._judge_factory = judge_factory
        self.sources: Counter[str] = Counter()

    def record(self, sid: str) -> Record | None:
        return self.pred.records.get(sid)

    def labels(self, sid: str) -> list[str]:
        rec = self.pred.records.get(sid)
        if rec is None:
            self.sources["missing"] += 1
            return []
        if rec.labels is not None:
            self.sources["labels"] += 1
            return parse_clean(rec.labels)
        if rec.text:
            self.sources["judge"] += 1
            return clean_labels(self._judge_factory().extract_labels(rec.text))
        self.sources["empty"] += 1
        return []


def evaluate(task: str | Task, gt: Source, pred: Source, wheel_dir: str | os.PathLike[str] | None = None, *,
             judge: Judge | None = None, synonym_groups: str | os.PathLike[str] | dict[str, Any] | None = None,
             embeddings: bool = True, detail: bool = True) -> Evaluation:
    """Score ``pred`` against ``gt`` for ``task``; see the module docstring. ``detail=False`` skips the per-sample
    rows (samples.jsonl) and plot data where they cost time: ``score()`` returns results.json only."""
    t = load_task(task)
    gt_file = load_gt(gt, t.gt_columns())
    pred_file = load_samples(pred)
    wdir = resolve_wheel_dir(wheel_dir)
    tables = get_tables(wdir)
    load_stats = dict(LOAD_STATS)
    state: dict[str, Judge] = {}

    def judge_factory() -> Judge:
        if "j" not in state:
            if judge is not None:
                state["j"] = judge
            else:
                from affectllm.evaluation.judges.lexicon import LexiconJudge

                state["j"] = LexiconJudge(tables)
        return state["j"]

    preds = _Predictions(pred_file, judge_factory)
    official, strict = get_normaliser(tables), get_normaliser(tables, strict=True)
    ids = gt_file.ids
    kind_fn = {"openset": _openset, "onehot": _onehot, "sentiment": _sentiment, "emer": _emer}[t.kind]
    ev = kind_fn(t, ids, gt_file, preds, official, strict, judge_factory, synonym_groups, embeddings, detail)
    res = ev.results
    res.update(
        task=t.name, kind=t.kind, title=t.title, primary=t.primary, n_samples=len(ids),
        ids=align(gt_file, pred_file).to_dict(),
        prediction_sources=dict(preds.sources),
        gt_file=gt_file.provenance(), prediction_file=pred_file.provenance(),
        resources={"wheel_dir": str(wdir), "fingerprint": tables.fingerprint, "tables_version": TABLES_VERSION,
                   "files": resource_hashes(wdir), "tables_loaded_from": load_stats.get("source")},
        config={"task_file": t.path, "judge": state["j"].fingerprint if "j" in state else None,
                "strict_differences": STRICT_DIFFERENCES},
        version=_version(), created=_dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    )
    res["summary"] = _summary(t, res)
    return ev


def score(task: str | Task, gt: Source, pred: Source, wheel_dir: str | os.PathLike[str] | None = None,
          **kw: Any) -> dict[str, Any]:
    """The content of results.json (see ``evaluate`` for the keyword options)."""
    return evaluate(task, gt, pred, wheel_dir, detail=False, **kw).results


# --------------------------------------------------------------------------------------------------- openset
def _openset(t: Task, ids: list[str], gt: SampleFile, preds: _Predictions, official: Normaliser,
             strict: Normaliser, judge_factory: Any, synonym_groups: Any, _emb: bool, detail: bool) -> Evaluation:
    g = prepared_gt([gt.records[i].labels for i in ids], official, strict)  # cached per ground truth
    g_labels, g_off = g.labels, g.official
    p_labels = [preds.labels(i) for i in ids]
    scores = ew_metrics(g.official_cols, SampleSets.from_labels(official, p_labels), keep_per_sample=detail)
    res: dict[str, Any] = {k: v.to_dict() for k, v in scores.items()}
    res.update(ew_summary(scores))
    strict_block = ew_block(g.strict_cols, SampleSets.from_labels(strict, p_labels))
    res["strict"] = {**strict_block, "differences": STRICT_DIFFERENCES[:2]}
    res["chance_floor"] = openset_floor(g_labels, official, strict)
    if "mer2024" in t.metrics or synonym_groups is not None:
        res["MER2024"] = _mer2024(ids, gt, preds, g_labels, p_labels, judge_factory, synonym_groups)
    if not detail:
        return Evaluation(res)
    p_off = [official.masks(x) for x in p_labels]
    samples = []
    for j, sid in enumerate(ids):
        per = {}
        for m, name in enumerate(METRICS):
            pr = scores[name].per_sample[j]
            per[name] = {"gt": official.words(m, g_off[j][m]), "pred": official.words(m, p_off[j][m]),
                         "precision": pr[0] if pr else None, "recall": pr[1] if pr else None}
        samples.append({"id": sid, "gt": g_labels[j], "pred": p_labels[j], "metrics": per})
    plots = {"per_metric": {k: res[k]["f1"] for k in METRICS},
             "per_metric_strict": {k: strict_block[k]["f1"] for k in METRICS},
             "chance": res["chance_floor"]["best"],
             "labels_per_sample": {"ground truth": [len(x) for x in g_labels],
                                   "prediction": [len(x) for x in p_labels]}}
    return Evaluation(res, samples, plots)


def _mer2024(ids: list[str], gt: SampleFile, preds: _Predictions, g_labels: list[list[str]],
             p_labels: list[list[str]], judge_factory: Any, synonym_groups: Any) -> dict[str, Any]:
    if synonym_groups is None or synonym_groups == "judge":
        judge = judge_factory()
        groups = {sid: judge.group_synonyms([*g, *p]) for sid, g, p in zip(ids, g_labels, p_labels, strict=True)}
        source = f"judge {judge.fingerprint}"
    elif isinstance(synonym_groups, dict):
        groups, source = synonym_groups, "mapping"
    else:
        groups, source = read_synonym_groups(synonym_groups), str(synonym_groups)
    gt_raw = {i: gt.records[i].labels for i in ids}
    pred_raw = {i: (r.labels if (r := preds.record(i)) is not None and r.labels is not None else p)
                for i, p in zip(ids, p_labels, strict=True)}
    out = mer2024_metric(ids, gt_raw, pred_raw, groups)
    out.pop("per_sample")
    out["groups_source"] = source
    return out


# --------------------------------------------------------------------------------------------------- onehot
def _onehot(t: Task, ids: list[str], gt: SampleFile, preds: _Predictions, official: Normaliser,
            strict: Normaliser, _jf: Any, _sg: Any, _emb: bool, _detail: bool) -> Evaluation:
    g_labels = [clean_labels(parse_list_string(gt.records[i].labels)) for i in ids]
    p_labels = [preds.labels(i) for i in ids]
    hit = hit_rate(g_labels, p_labels, official)
    hit_first = hit_rate(g_labels, p_labels, strict, first_only=True)
    mapper = ClassMapper(t.labels or sorted({x for g in g_labels for x in g}), official)
    bycanonical_class = {canonical_class(c): c for c in mapper.classes}
    g_cls = [bycanonical_class.get(canonical_class(g[0]), g[0]) if g else "<empty>" for g in g_labels]
    p_cls = [mapper.predict(p) for p in p_labels]
    cls = classification_metrics(g_cls, p_cls, mapper.classes)
    res: dict[str, Any] = {
        "hit_rate": hit["hit_rate"], "mscore": hit["mscore"], "per_wheel": hit["per_wheel"],
        "onehot": cls,
        "strict": {"hit_rate": hit_first["hit_rate"], "per_wheel": hit_first["per_wheel"],
                   "differences": [STRICT_DIFFERENCES[0], STRICT_DIFFERENCES[1], STRICT_DIFFERENCES[2]]},
        "chance_floor": onehot_floor(g_labels, g_cls, mapper.classes, official, mapper),
    }
    samples = [{"id": sid, "gt": g_labels[j], "pred": p_labels[j], "gt_class": g_cls[j], "pred_class": p_cls[j],
                "hit": hit["per_sample"][j], "hit_first_label": hit_first["per_sample"][j]}
               for j, sid in enumerate(ids)]
    plots = {"per_metric": {k: v["hit_rate"] for k, v in hit["per_wheel"].items()},
             "per_metric_strict": {k: v["hit_rate"] for k, v in hit_first["per_wheel"].items()},
             "chance": res["chance_floor"]["best"], "confusion": cls["confusion"],
             "labels_per_sample": {"ground truth": [len(x) for x in g_labels],
                                   "prediction": [len(x) for x in p_labels]}}
    return Evaluation(res, samples, plots)


# --------------------------------------------------------------------------------------------------- sentiment
def _sentiment(t: Task, ids: list[str], gt: SampleFile, preds: _Predictions, _o: Normaliser, _s: Normaliser,
               judge_factory: Any, _sg: Any, _emb: bool, _detail: bool) -> Evaluation:
    g_val = []
    for sid in ids:
        v = gt.records[sid].number
        if v is None:
            raise ValueError(f"{gt.path}: sample '{sid}' has no valence; every ground-truth row needs a number")
        g_val.append(v)
    p_val: list[float] = []
    p_labels: list[list[str]] = []
    for sid in ids:
        rec = preds.record(sid)
        if rec is not None and rec.number is not None:
            preds.sources["number"] += 1
            p_val.append(rec.number)
            p_labels.append([])
            continue
        labels = preds.labels(sid)
        p_labels.append(labels)
        p_val.append(float(judge_factory().polarity(labels)) if labels else 0.0)
    res: dict[str, Any] = sentiment_metrics(g_val, p_val)
    res["strict"]["differences"] = [STRICT_DIFFERENCES[3]]
    res["chance_floor"] = sentiment_floor(g_val)
    samples = [{"id": sid, "gt": g_val[j], "pred": p_val[j], "pred_labels": p_labels[j]} for j, sid in enumerate(ids)]
    plots = {"per_metric": {"accuracy": res["accuracy"], "weighted_f1": res["weighted_f1"]},
             "per_metric_strict": {"accuracy": res["strict"]["acc2_strict"], "weighted_f1": res["strict"]["acc2_strict"]},
             "chance": res["chance_floor"]["best"]}
    return Evaluation(res, samples, plots)


# --------------------------------------------------------------------------------------------------- EMER
def _emer(t: Task, ids: list[str], gt: SampleFile, preds: _Predictions, _o: Normaliser, _s: Normaliser,
          judge_factory: Any, _sg: Any, embeddings: bool, _detail: bool) -> Evaluation:
    from affectllm.evaluation import emer

    ref_text = [gt.records[i].text or "" for i in ids]
    ref_labels = [clean_labels(parse_list_string(gt.records[i].labels)) for i in ids]
    pred_text, pred_labels = [], []
    for sid in ids:
        rec = preds.record(sid)
        pred_text.append((rec.text or "") if rec is not None else "")
        pred_labels.append(preds.labels(sid))
    res: dict[str, Any] = {}
    judged = emer.judge_scores(judge_factory(), ref_text, pred_text)
    if judged is not None:
        res.update({k: v for k, v in judged.items() if k != "per_sample"})
    else:
        res["judge_note"] = "the lexicon judge cannot rate; pass --judge hf:PATH or --judge openai for clue/label overlap"
    if embeddings:
        e = emer.embedding_scores(ref_text, pred_text, ref_labels, pred_labels)
        res["embedding"] = {k: v for k, v in e.items() if k != "per_sample"}
    res["chance_floor"] = {"note": "not defined for judge-rated EMER scores"}
    samples = [{"id": sid, "gt_reason": ref_text[j], "pred_reason": pred_text[j], "gt": ref_labels[j],
                "pred": pred_labels[j]} for j, sid in enumerate(ids)]
    if embeddings:
        for j, row in enumerate(samples):
            row.update({k: v[j] for k, v in e["per_sample"].items()})
    if judged is not None:
        for j, row in enumerate(samples):
            row.update({k: v[j] for k, v in judged["per_sample"].items()})
    return Evaluation(res, samples, {})


# --------------------------------------------------------------------------------------------------- summary
def _summary(t: Task, r: dict[str, Any]) -> dict[str, float | None]:
    """The headline numbers, flat (what ``eval compare`` prints)."""
    cf = (r.get("chance_floor") or {}).get("best") or {}
    if t.kind == "openset":
        out = {"M-avg": r["M-avg"], "EW-L1": r["EW-L1"], "M1 F": r["M1"]["f1"], "M2 F": r["M2"]["f1"],
               "strict M-avg": r["strict"]["M-avg"], "chance M-avg": cf.get("M-avg")}
        if r.get("MER2024"):  # the number depends on who made the groups: say so in the key
            src = r["MER2024"]["groups_source"]
            out["MER2024 score" if not src.startswith("judge ") else
                f"MER2024 score ({src.split()[1].split(':')[0]} groups)"] = r["MER2024"]["score"]
        return out
    if t.kind == "onehot":
        return {"hit_rate": r["hit_rate"], "strict hit_rate": r["strict"]["hit_rate"],
                "accuracy": r["onehot"]["accuracy"], "UAR": r["onehot"]["UAR"],
                "weighted_f1": r["onehot"]["weighted_f1"], "chance hit_rate": cf.get("hit_rate")}
    if t.kind == "sentiment":
        return {"accuracy": r["accuracy"], "weighted_f1": r["weighted_f1"], "acc2_strict": r["strict"]["acc2_strict"],
                "chance weighted_f1": cf.get("weighted_f1")}
    emb = r.get("embedding") or {}
    return {"clue_overlap": r.get("clue_overlap"), "label_overlap": r.get("label_overlap"),
            "reason_similarity": emb.get("reason_similarity"), "label_similarity": emb.get("label_similarity")}
