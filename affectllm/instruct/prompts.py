"""Prompt pools per task (YAML beside this module) and the fixed pieces every user turn is built from.

Each task has several English paraphrases; builders pick one with a per-row seeded `random.Random`, so a build is
deterministic for a given ``--seed`` and independent of row order or ``--limit``. The subtitle line and the
media placeholders are fixed strings (not paraphrased) so that inference can reproduce them exactly.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from affectllm.instruct.schema import MEDIA_KEYS, PLACEHOLDERS, TASKS

FOLLOWUP_FOCI: tuple[str, ...] = ("why", "voice", "face", "words")
PROMPT_FIELDS = frozenset({"media", "label_set"})  # {media}: clip / recording / image / utterance


def row_rng(seed: int, *parts: str) -> random.Random:
    """A generator seeded by the build seed and the row's identity (str seeds hash with SHA-512: stable)."""
    return random.Random("\x1f".join((str(seed), *parts)))


def media_prefix(keys: Iterable[str]) -> str:
    """The placeholder block that starts a first user turn, in the fixed order video, audio, image."""
    present = set(keys)
    return "".join(PLACEHOLDERS[k] + "\n" for k in MEDIA_KEYS if k in present)


def subtitle_line(subtitle: str) -> str:
    """How a known transcript is written into a user turn (the processor uses the same line at inference)."""
    return f'Subtitle: "{" ".join(subtitle.split())}"\n'


@dataclass(frozen=True)
class PromptPools:
    """The paraphrase pools: ``prompts[task]`` for single-turn tasks, ``followups[focus]`` for follow-ups."""

    prompts: dict[str, tuple[str, ...]]
    followups: dict[str, tuple[str, ...]]

    def pick(self, task: str, rng: random.Random, **fields: Any) -> str:
        """One paraphrase for ``task``, with ``{label_set}``-style fields filled in."""
        pool = self.prompts.get(task)
        if not pool:
            raise KeyError(f"no prompt pool for task {task!r}; pools exist for {sorted(self.prompts)}")
        return rng.choice(pool).format(**fields)

    def pick_followup(self, focus: str, rng: random.Random) -> str:
        pool = self.followups.get(focus)
        if not pool:
            raise KeyError(f"no follow-up questions for focus {focus!r}; foci are {sorted(self.followups)}")
        return rng.choice(pool)


def _read_yaml(text: str, where: str) -> dict[str, Any]:
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise ValueError(f"{where}: not valid YAML ({e}); quote prompts that contain ':' '?' or brackets") from None
    if not isinstance(data, dict) or data.get("task") not in TASKS:
        raise ValueError(f"{where}: a prompt pool is a mapping with 'task: <one of {', '.join(TASKS)}>'")
    return data


def _strings(items: Any, where: str) -> tuple[str, ...]:
    if not isinstance(items, list) or not items or not all(isinstance(x, str) and x.strip() for x in items):
        raise ValueError(f"{where}: expected a non-empty list of prompt strings")
    for text in items:
        fields = {name for _, name, _, _ in string.Formatter().parse(text) if name is not None}
        if fields - PROMPT_FIELDS:
            raise ValueError(f"{where}: unknown field(s) {sorted(fields - PROMPT_FIELDS)} in {text!r}; "
                             f"prompts may use {{{'}, {'.join(sorted(PROMPT_FIELDS))}}}")
    return tuple(x.strip() for x in items)


def load_pools(folder: str | Path | None = None) -> PromptPools:
    """Read every ``*.yaml`` pool from ``folder`` (default: the packaged pools); checks that all tasks are there."""
    if folder is None:
        return _packaged_pools()
    files = sorted(Path(folder).glob("*.yaml"))
    return _parse([(str(p), p.read_text(encoding="utf-8")) for p in files], str(folder))


@lru_cache(maxsize=1)
def _packaged_pools() -> PromptPools:
    root = resources.files("affectllm.instruct") / "prompts"
    files = sorted((e.name, e.read_text(encoding="utf-8")) for e in root.iterdir() if e.name.endswith(".yaml"))
    return _parse(files, "affectllm/instruct/prompts")


def _parse(files: Sequence[tuple[str, str]], folder: str) -> PromptPools:
    prompts: dict[str, tuple[str, ...]] = {}
    followups: dict[str, tuple[str, ...]] = {}
    for name, text in files:
        data = _read_yaml(text, name)
        if data["task"] == "followup":
            qs = data.get("questions")
            if not isinstance(qs, dict) or set(qs) != set(FOLLOWUP_FOCI):
                raise ValueError(f"{name}: 'questions' must map each of {', '.join(FOLLOWUP_FOCI)} to a list")
            followups = {k: _strings(v, f"{name}: questions.{k}") for k, v in qs.items()}
        else:
            prompts[data["task"]] = _strings(data.get("prompts"), f"{name}: prompts")
    missing = [t for t in TASKS if t != "followup" and t not in prompts] + ([] if followups else ["followup"])
    if missing:
        raise ValueError(f"{folder}: no prompt pool for task(s) {', '.join(missing)}; add <task>.yaml files")
    for text in prompts["onehot"]:
        if "{label_set}" not in text:
            raise ValueError(f"{folder}: every onehot prompt must contain {{label_set}}: {text!r}")
    return PromptPools(prompts=prompts, followups=followups)
