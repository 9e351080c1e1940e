"""Task definitions: YAML files shipped as package data in affectllm/evaluation/task_files/, so a wheel install has
them (``$AFFECTLLM_TASKS_DIR`` overrides the folder).

A task says what kind of ground truth it has (openset / onehot / sentiment / emer), which columns to read, the
closed label set where there is one, the metrics and the primary one, and where a sample's media live under
``--data-root`` (for ``affectllm eval run``). The YAML keys are documented in eval/README.md.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

TASK_FILES = Path(__file__).resolve().parent / "task_files"
KINDS = ("openset", "onehot", "sentiment", "emer")


class TaskError(ValueError):
    """A task name or task file is wrong; the message lists what exists."""


@dataclass
class Task:
    name: str
    kind: str
    title: str = ""
    aliases: list[str] = field(default_factory=list)
    id_column: str | None = None
    label_column: str | None = None
    text_column: str | None = None
    number_column: str | None = None
    subtitle_column: str | None = None
    labels: list[str] = field(default_factory=list)  # closed label set (onehot)
    metrics: list[str] = field(default_factory=list)
    primary: str = ""
    gt_file: str | None = None  # relative to --data-root
    media: dict[str, Any] = field(default_factory=dict)  # video / audio / image: pattern(s) with {id}
    reference: str = ""
    notes: str = ""
    path: str | None = None

    def gt_columns(self) -> dict[str, str | None]:
        return {"id_column": self.id_column, "label_column": self.label_column, "text_column": self.text_column,
                "number_column": self.number_column, "subtitle_column": self.subtitle_column}

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v not in (None, "", [], {})}


def tasks_dir() -> Path:
    env = os.environ.get("AFFECTLLM_TASKS_DIR")
    return Path(env) if env else TASK_FILES


def _key(name: str) -> str:
    return re.sub(r"[^a-z0-9]", "", name.lower())


def _from_yaml(path: Path) -> Task:
    """Parsed once per (file, mtime): scoring many files must not re-read every task YAML."""
    st = path.stat()
    return _parse_yaml(str(path.resolve()), st.st_mtime_ns)


@lru_cache(maxsize=64)
def _parse_yaml(path_str: str, _mtime_ns: int) -> Task:
    import yaml

    path = Path(path_str)
    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader) or {}  # noqa: S506 - a safe loader
    except yaml.YAMLError as e:
        raise TaskError(f"{path}: invalid YAML ({e})") from None
    if not isinstance(data, dict):
        raise TaskError(f"{path}: expected a mapping at the top level")
    gt = data.pop("ground_truth", {}) or {}
    unknown = set(data) - set(Task.__dataclass_fields__) - {"ground_truth"}
    if unknown:
        raise TaskError(f"{path}: unknown key(s) {', '.join(sorted(unknown))}; see eval/README.md")
    for k in ("file", "id_column", "label_column", "text_column", "number_column", "subtitle_column"):
        if k in gt:
            data["gt_file" if k == "file" else k] = gt[k]
    if "name" not in data or data.get("kind") not in KINDS:
        raise TaskError(f"{path}: needs 'name' and 'kind' (one of {', '.join(KINDS)})")
    return Task(**data, path=str(path))


def list_tasks() -> list[Task]:
    d = tasks_dir()
    if not d.is_dir():
        raise TaskError(f"{d}: task folder not found; set AFFECTLLM_TASKS_DIR to a folder of task YAMLs "
                        "(or unset it to use the shipped ones)")
    return [_from_yaml(p) for p in sorted(d.glob("*.yaml"))]


def load_task(name_or_path: str | os.PathLike[str] | Task) -> Task:
    """A task by name or alias (case, '-' and '_' ignored), or from a YAML path."""
    if isinstance(name_or_path, Task):
        return name_or_path
    p = Path(name_or_path)
    if p.suffix in (".yaml", ".yml") and p.is_file():
        return _from_yaml(p)
    want = _key(str(name_or_path))
    direct = tasks_dir() / f"{name_or_path}.yaml"
    if direct.is_file():
        return _from_yaml(direct)
    tasks = list_tasks()
    for t in tasks:
        if want in {_key(t.name), *(_key(a) for a in t.aliases)}:
            return t
    raise TaskError(f"unknown task '{name_or_path}'; known: {', '.join(t.name for t in tasks)}")
