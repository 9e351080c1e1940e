"""The model card (``README.md`` with YAML front matter, the Hugging Face Hub's format) that training writes beside
its adapter and ``export peft`` beside a PEFT folder: base model, towers, data, licences, metrics.

    ---
    base_model: HuggingFaceTB/SmolLM2-135M-Instruct
    library_name: peft
    license: other
    datasets: [ravdess, emodb, casia]
    metrics: [accuracy, f1]
    tags: [affectllm, emotion-recognition, multimodal, lora]
    ---
    # <name> ...

Dataset licences are known for the corpora this project's builders read (``DATASET_LICENCES``); an adapter
trained on data with several terms says ``license: other`` and lists each, since the most restrictive binds.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

CARD_NAME = "README.md"
DATASET_LICENCES = {
    "ravdess": "CC BY-NC-SA 4.0 (Livingstone & Russo 2018)",
    "emodb": "CC0-1.0 (audEERING release of Burkhardt et al. 2005)",
    "casia": "research use only (CASIA public subset)",
    "goemotions": "Apache-2.0",
    "meld": "GPL-3.0",
    "clue": "Apache-2.0 (CLUE benchmark)",
    "mer2023": "EULA of the MER challenge (research only)",
    "synthetic": "made with espeak-ng (its output is not covered by its GPL-3.0)",
}


def base_model_id(text_model: str | None) -> str | None:
    """The hub id a card names as ``base_model``: the registry component's upstream id for an embedded backbone,
    the id itself for a hub id, the folder's name (never a machine path) for a local folder."""
    if not text_model:
        return None
    if text_model.startswith("registry:"):
        from affectllm.offline.registry import get_component

        try:
            comp = get_component(text_model.split(":", 1)[1])
        except KeyError:
            return text_model
        return comp.upstream or text_model
    p = Path(text_model)
    if p.is_absolute() or text_model.startswith((".", "~")) or p.exists():
        return p.name
    return text_model


def render_card(config: Any, *, name: str, summary: dict[str, Any] | None = None,
                sources: dict[str, int] | None = None, library: str = "affectllm",
                notes: list[str] | None = None) -> str:
    """The card's text. ``config``: the model's ``AffectLLMConfig``; ``summary``: training's summary.json dict
    (steps, rows, eval metrics); ``sources``: training rows per data source."""
    base = base_model_id(getattr(config, "text_model", None))
    sources = dict(sorted((sources or {}).items()))
    datasets = [s for s in sources if s in DATASET_LICENCES and s != "synthetic"]
    evals = {k: v for k, v in ((summary or {}).get("eval") or {}).items() if isinstance(v, (int, float))}
    metrics = sorted({"f1" if "f1" in k else "precision" if "precision" in k else "recall" if "recall" in k
                      else "accuracy" if "acc" in k else "loss" for k in evals})
    licences = {s: DATASET_LICENCES.get(s, "unknown: check the data's own terms") for s in sources}
    single = set(licences.values())
    front = {"base_model": base, "library_name": library, "license": "other" if len(single) != 1 else
             _spdx(next(iter(single))), "datasets": datasets, "metrics": metrics,
             "tags": ["affectllm", "emotion-recognition", "multimodal", "lora"]}
    lines = ["---", *(f"{k}: {json.dumps(v, ensure_ascii=False)}" for k, v in front.items() if v not in (None, [])),
             "---", "", f"# {name}", "",
             "An AffectLLM adapter: a Q-Former projector and a LoRA on the language model, trained to answer which "
             "emotions a person in a clip shows and why (labels, valence, arousal and an explanation grounded in "
             "the measured cues).", "", "## Model", "",
             f"- base language model: `{base}`" + (f" (loaded as `{config.text_model}`)"
                                                  if str(config.text_model).startswith("registry:") else ""),
             f"- LoRA: r={config.lora.r}, alpha={config.lora.alpha}, dropout={config.lora.dropout}",
             f"- towers: {', '.join(_towers(config)) or 'none'}; expert cues in the prompt: "
             f"{'yes' if config.use_cues else 'no'}", ""]
    if sources:
        lines += ["## Training data", "", "| source | rows | terms |", "|---|---|---|",
                  *(f"| {s} | {n} | {licences[s]} |" for s, n in sources.items()), ""]
    lines += ["## Licence", "",
              "The adapter inherits the terms of its data; the most restrictive binds"
              + (f" ({', '.join(sorted(single))})." if sources else ": no data sources were recorded."), ""]
    if summary:
        lines += ["## Training", "", f"- steps: {summary.get('steps')}, rows: {summary.get('train_rows')}, "
                  f"wall time: {summary.get('wall_s')} s", ""]
    if evals:
        lines += ["## Evaluation (the recipe's eval split)", "", "| metric | value |", "|---|---|",
                  *(f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |" for k, v in evals.items()), ""]
    lines += [*(notes or []), "## Use", "", "```bash", "affectllm caption clip.mp4 --adapter THIS_FOLDER", "```", ""]
    return "\n".join(lines)


def write_card(folder: str | Path, config: Any, **kw: Any) -> Path:
    path = Path(folder) / CARD_NAME
    path.write_text(render_card(config, **kw), encoding="utf-8")
    return path


def read_front_matter(path: str | Path) -> dict[str, Any]:
    """The card's YAML front matter as a dict (the values are JSON, a subset of YAML)."""
    text = Path(path).read_text(encoding="utf-8")
    if not text.startswith("---\n"):
        raise ValueError(f"{path}: no YAML front matter (the file must start with '---')")
    head = text[4:text.index("\n---", 4)]
    return {k.strip(): json.loads(v) for k, v in (line.split(":", 1) for line in head.splitlines() if line.strip())}


def _spdx(terms: str) -> str:
    return {"Apache-2.0": "apache-2.0", "GPL-3.0": "gpl-3.0"}.get(terms.split(" ")[0], "other")


def _towers(config: Any) -> list[str]:
    out = []
    for attr, label in (("vision_config", "vision"), ("audio_config", "audio"), ("whisper_config", "whisper")):
        spec = getattr(config, attr, None)
        if spec:
            model = spec.get("model") if isinstance(spec, dict) else getattr(spec, "model", None)
            kind = spec.get("type") if isinstance(spec, dict) else getattr(spec, "type", None)
            out.append(f"{label} ({model or kind or 'default'})")
    return out
