"""report.html of a scored run: one self-contained page, plots embedded as base64 PNG (matplotlib Figure + Agg).

Plots: per-metric bars (official vs strict, with the chance floor as a dashed line), the confusion matrix for
one-hot tasks, and the labels-per-sample histogram (ground truth vs prediction).
"""

from __future__ import annotations

import base64
import html
import io
import json
from typing import Any


def _png(fig: Any) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return base64.b64encode(buf.getvalue()).decode()


def plot_metrics(per_metric: dict[str, float], per_metric_strict: dict[str, float],
                 lines: list[tuple[str, float, str]], title: str) -> str:
    """Grouped bars (official, strict) per metric; ``lines`` = (label, value, colour) horizontal references."""
    from matplotlib.figure import Figure  # the Agg canvas, without pyplot's global state

    names = list(per_metric)
    x = range(len(names))
    fig = Figure(figsize=(max(6.0, 0.75 * len(names) + 2), 3.8))
    ax = fig.subplots()
    w = 0.38
    ax.bar([i - w / 2 for i in x], [per_metric[n] for n in names], w, label="official", color="#3b6ea8")
    ax.bar([i + w / 2 for i in x], [per_metric_strict.get(n, 0.0) for n in names], w, label="strict", color="#e0a030")
    for label, value, color in lines:
        ax.axhline(value, ls="--", color=color, lw=1.5, label=f"{label} {value:.3f}")
    ax.set_xticks(list(x))
    ax.set_xticklabels(names, rotation=35, ha="right", fontsize=9)
    ax.set_ylim(0, 1)
    ax.set_ylabel("score")
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper right")
    ax.grid(axis="y", alpha=0.3)
    return _png(fig)


def plot_confusion(conf: dict[str, Any]) -> str:
    from matplotlib.figure import Figure  # the Agg canvas, without pyplot's global state

    rows, cols, m = conf["rows"], conf["cols"], conf["matrix"]  # m: [len(rows), len(cols)] counts
    fig = Figure(figsize=(1.0 + 0.7 * len(cols), 1.0 + 0.6 * len(rows)))
    ax = fig.subplots()
    ax.imshow(m, cmap="Blues")
    top = max((v for r in m for v in r), default=0)
    for i, r in enumerate(m):
        for j, v in enumerate(r):
            ax.text(j, i, str(v), ha="center", va="center", fontsize=8, color="white" if v > top / 2 else "black")
    ax.set_xticks(range(len(cols)))
    ax.set_xticklabels(cols, rotation=35, ha="right", fontsize=8)
    ax.set_yticks(range(len(rows)))
    ax.set_yticklabels(rows, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("ground truth")
    ax.set_title("confusion matrix")
    return _png(fig)


def plot_label_counts(counts: dict[str, list[int]]) -> str:
    from matplotlib.figure import Figure  # the Agg canvas, without pyplot's global state

    top = max((max(v) for v in counts.values() if v), default=0)
    bins = [b - 0.5 for b in range(0, top + 2)]
    fig = Figure(figsize=(6, 3.2))
    ax = fig.subplots()
    for (name, vals), color in zip(counts.items(), ("#3b6ea8", "#e0a030"), strict=False):
        ax.hist(vals, bins=bins, alpha=0.6, label=f"{name} (mean {sum(vals) / max(1, len(vals)):.2f})", color=color)
    ax.set_xlabel("labels per sample")
    ax.set_ylabel("samples")
    ax.set_title("labels per sample")
    ax.legend(fontsize=8)
    return _png(fig)


def _fmt(v: Any) -> str:
    if isinstance(v, float):
        return f"{v:.4f}"
    if v is None:
        return "—"
    return html.escape(str(v))


def render_html(results: dict[str, Any], plots: dict[str, Any]) -> str:
    """The report page for one results.json (and the plot data from the scorer)."""
    images: list[tuple[str, str]] = []
    chance = plots.get("chance") or {}
    key = next((k for k in ("M-avg", "hit_rate", "weighted_f1") if k in chance), None)
    primary_chance = chance.get(key) if key else None
    if plots.get("per_metric"):
        lines = []
        model_value = results.get(key) if key in results else (results.get("onehot") or {}).get(key)
        if isinstance(model_value, float):
            lines.append((f"model {key}", model_value, "#2a7a2a"))
        if primary_chance is not None:
            lines.append((f"chance floor {key} (k={chance.get('k')})", primary_chance, "#b03030"))
        images.append(("Per-metric scores (official vs strict)", plot_metrics(
            plots["per_metric"], plots.get("per_metric_strict", {}), lines, f"{results.get('task')}: per-metric scores")))
    if plots.get("confusion"):
        images.append(("Confusion matrix", plot_confusion(plots["confusion"])))
    if plots.get("labels_per_sample"):
        images.append(("Labels per sample", plot_label_counts(plots["labels_per_sample"])))
    summary = results.get("summary", {})
    rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{_fmt(v)}</td></tr>" for k, v in summary.items())
    ids = results.get("ids", {})
    id_rows = "".join(f"<tr><td>{html.escape(k)}</td><td>{v['count']}</td><td>{html.escape(', '.join(v['examples']))}"
                      f"</td><td>{html.escape(v['handling'])}</td></tr>" for k, v in ids.items())
    diffs = "".join(f"<li>{html.escape(d)}</li>" for d in results.get("config", {}).get("strict_differences", []))
    floor = ""
    if chance:
        floor = (f"<p><b>Chance floor:</b> predicting {html.escape(str(chance.get('labels')))} for every sample "
                 f"scores {_fmt(primary_chance)} on the primary metric. A model score near this line has learned "
                 "little beyond the label distribution.</p>")
    figs = "".join(f"<h3>{html.escape(t)}</h3><img alt='{html.escape(t)}' src='data:image/png;base64,{b}'/>"
                   for t, b in images)
    detail = html.escape(json.dumps({k: v for k, v in results.items() if k not in ("summary",)}, indent=1,
                                    ensure_ascii=False, default=str))
    return f"""<!doctype html><html><head><meta charset="utf-8"><title>AffectLLM eval: {_fmt(results.get('task'))}</title>
<style>body{{font-family:sans-serif;max-width:1100px;margin:2em auto;color:#222}}table{{border-collapse:collapse}}
td,th{{border:1px solid #ccc;padding:3px 8px;text-align:left}}img{{max-width:100%}}pre{{background:#f6f6f6;padding:1em;
overflow:auto;max-height:30em;font-size:12px}}</style></head><body>
<h1>{_fmt(results.get('title') or results.get('task'))}</h1>
<p>task <b>{_fmt(results.get('task'))}</b> ({_fmt(results.get('kind'))}), {results.get('n_samples')} ground-truth
samples, primary metric <b>{_fmt(results.get('primary'))}</b>; AffectLLM {_fmt(results.get('version'))},
{_fmt(results.get('created'))}.</p>
<h2>Summary</h2><table><tr><th>metric</th><th>value</th></tr>{rows}</table>{floor}
<h2>Plots</h2>{figs}
<h2>Ids</h2><table><tr><th></th><th>count</th><th>examples</th><th>handling</th></tr>{id_rows}</table>
<h2>Strict variants differ from the official metric in</h2><ul>{diffs}</ul>
<h2>All numbers (results.json)</h2><pre>{detail}</pre></body></html>"""
