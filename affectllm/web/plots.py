"""Evidence figures for the web UI (matplotlib ``Figure`` objects, no pyplot state, so threads are safe).

``face_figure``: the main face's expression per sampled frame over time (bar height = probability of the
top class, colour = class) beside the clip's mean probabilities. ``prosody_figure``: pitch (YIN) and loudness
contours of the audio track, titled with the prosody cues the model read.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch

EXPRESSION_COLOURS = {"angry": "#d62728", "disgust": "#8c564b", "fear": "#9467bd", "happy": "#f2b701",
                      "sad": "#1f77b4", "surprise": "#17becf", "neutral": "#7f7f7f"}


def _colour(name: str) -> str:
    return EXPRESSION_COLOURS.get(name, "#2ca02c")


def face_figure(face: dict[str, Any]) -> Figure | None:
    """Bars over time from ``evidence["face"]`` (``per_frame`` [{t, top, p}], ``mean_probs``); None if empty."""
    per_frame = face.get("per_frame") or []
    mean = face.get("mean_probs") or {}
    if not per_frame and not mean:
        return None
    fig = Figure(figsize=(7.0, 2.6), layout="constrained")
    ax_t, ax_m = fig.subplots(1, 2, width_ratios=[2.2, 1])
    if per_frame:
        t = np.array([f["t"] for f in per_frame], dtype=float)  # [T']
        p = np.array([f["p"] for f in per_frame], dtype=float)
        width = 0.8 * float(np.min(np.diff(t))) if len(t) > 1 else 0.3
        ax_t.bar(t, p, width=width, color=[_colour(f["top"]) for f in per_frame], edgecolor="black", linewidth=0.4)
        for x, y, f in zip(t, p, per_frame):
            ax_t.text(x, y + 0.02, f["top"], ha="center", va="bottom", fontsize=7)
        names = list(dict.fromkeys(f["top"] for f in per_frame))
        ax_t.legend(handles=[Patch(color=_colour(n), label=n) for n in names], fontsize=7, loc="upper right")
    ax_t.set(ylim=(0, 1.15), xlabel="time (s)", ylabel="probability", title="Face expression per frame")
    ax_t.title.set_fontsize(9)
    if mean:
        names = sorted(mean, key=lambda k: mean[k])
        ax_m.barh(names, [mean[n] for n in names], color=[_colour(n) for n in names])
        ax_m.set(xlim=(0, 1), title="Mean over the clip")
        ax_m.title.set_fontsize(9)
        ax_m.tick_params(labelsize=7)
    else:
        ax_m.set_axis_off()
    return fig


def prosody_figure(audio: np.ndarray | None, voice: dict[str, Any], sr: int = 16000) -> Figure | None:
    """Pitch (where speech is active) and loudness over time of ``audio`` ([S] float32 at ``sr``); None when
    there is no audio."""
    from affectllm.perception.prosody import HOP_S, activity_gate, frame_energy_db, yin

    if audio is None or len(audio) < sr // 10:
        return None
    audio = np.asarray(audio, dtype=np.float32)[: 120 * sr]  # plot at most two minutes
    f0, _ = yin(audio, sr=sr)  # [F] Hz, NaN where unvoiced
    energy = frame_energy_db(audio, sr=sr)  # [F'] dBFS
    n = min(len(f0), len(energy))
    f0 = np.where(activity_gate(energy)[:n], f0[:n], np.nan)  # pitch only where someone is speaking
    t_f0 = np.arange(len(f0)) * HOP_S
    t_en = np.arange(len(energy)) * HOP_S
    fig = Figure(figsize=(7.0, 2.8), layout="constrained")
    ax_p, ax_e = fig.subplots(2, 1, sharex=True)
    ax_p.plot(t_f0, f0, ".", markersize=2, color="#1f77b4")
    if voice.get("f0_mean_hz"):
        ax_p.axhline(voice["f0_mean_hz"], color="#1f77b4", linestyle="--", linewidth=0.8)
    ax_p.set_ylabel("pitch (Hz)", fontsize=8)
    ax_e.plot(t_en, energy, color="#d62728", linewidth=0.8)
    ax_e.set_ylabel("level (dBFS)", fontsize=8)
    ax_e.set_xlabel("time (s)", fontsize=8)
    cues = "; ".join(voice.get("cues") or [])
    ax_p.set_title("Voice" + (f": {cues}" if cues else ""), fontsize=9)
    for ax in (ax_p, ax_e):
        ax.tick_params(labelsize=7)
    return fig
