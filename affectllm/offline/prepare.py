"""Do every offline conversion ahead of time and report what is where (``affectllm models prepare``/``list``).

Conversions are idempotent and cached (see ``registry``): running ``prepare_all`` twice converts once. Errors of
one component are recorded and the others still run, so one missing wheel does not hide the rest.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from affectllm.offline.cachefs import tree_size
from affectllm.offline.registry import COMPONENTS, Component, get_component


def _ensure_fn(comp: Component) -> Callable[[], Path] | None:
    """The conversion entry point of a component (None for components used in place)."""
    if comp.name == "gemma-3-270m":
        from affectllm.offline.gemma import ensure_gemma

        return ensure_gemma
    if comp.name == "smollm2-135m-instruct":
        from affectllm.offline.smollm2 import ensure_smollm2

        return ensure_smollm2
    if comp.name.startswith("whisper-"):
        from affectllm.offline.whisper_convert import ensure_whisper

        name = comp.name.removeprefix("whisper-")
        return lambda: ensure_whisper(name)
    return None


def component_status(comp: Component) -> dict:
    """One row of ``affectllm models list``: where the component lives and whether it is ready."""
    installed = comp.installed()
    if comp.converts:
        path = comp.cache_path()
        ready = comp.prepared()
        state = "ready" if ready else ("not converted" if installed else "wheel missing")
    else:
        path = comp.source_paths()[0] if installed else None
        ready = installed
        state = "ready (in place)" if installed else "wheel missing"
    return {
        "name": comp.name,
        "role": comp.role,
        "licence": comp.licence,
        "wheels": list(comp.wheels),
        "description": comp.description,
        "state": state,
        "ready": ready,
        "path": str(path) if path else None,
        "bytes": tree_size(path) if path and ready else 0,
    }


def ensure_language_model(name: str) -> Path:
    """The converted folder of an embedded language model (name or alias: gemma, smollm2), converting once."""
    comp = get_component(name)
    fn = _ensure_fn(comp)
    if comp.role != "language model" or fn is None:
        known = ", ".join(c.name for c in COMPONENTS if c.role == "language model")
        raise ValueError(f"{name!r} is not an embedded language model; known: {known}")
    return fn()


def default_components(llm: str | None = None) -> list[Component]:
    """What a plain ``prepare`` converts: the default components, with ``llm`` (name or alias) as the language
    model in place of the default one when given."""
    chosen = [c for c in COMPONENTS if c.default]
    if llm is None:
        return chosen
    backbone = get_component(llm)
    if backbone.role != "language model":
        raise KeyError(f"{llm!r} is not a language model component")
    return [backbone] + [c for c in chosen if c.role != "language model"]


def prepare_all(cache_dir: str | Path | None = None, components: Iterable[str] | None = None,
                progress: bool = True, llm: str | None = None) -> dict[str, dict]:
    """Convert (once) every default component (``llm`` picks the language model), or only ``components``.

    ``cache_dir`` sets ``AFFECTLLM_HOME`` for this process. Returns ``{name: status}`` where status has the
    fields of ``component_status`` plus ``action`` ("converted", "cached", "in place" or "error"),
    ``seconds`` and, on failure, ``error``.
    """
    if cache_dir is not None:
        os.environ["AFFECTLLM_HOME"] = str(Path(cache_dir).expanduser().resolve())
    chosen = [get_component(n) for n in components] if components else default_components(llm)
    results: dict[str, dict] = {}
    reporter = _Reporter(progress)
    with reporter:
        for comp in chosen:
            fn = _ensure_fn(comp)
            was_ready = comp.prepared()
            action = "in place" if fn is None else ("cached" if was_ready else "converted")
            task = reporter.start(comp.name, "checking" if was_ready or fn is None else "converting")
            t0 = time.perf_counter()
            error = None
            try:
                if fn is None:
                    comp.source_paths()
                else:
                    fn()
            except Exception as e:  # noqa: BLE001 - reported per component, the rest still run
                error, action = f"{type(e).__name__}: {e}", "error"
            seconds = time.perf_counter() - t0
            reporter.done(task, comp.name, action, seconds)
            status = component_status(comp)
            status.update(action=action, seconds=round(seconds, 2))
            if error:
                status["error"] = error
            results[comp.name] = status
    return results


class _Reporter:
    """A rich progress display (one spinner per component), or nothing when ``enabled`` is False."""

    def __init__(self, enabled: bool):
        self.progress = None
        if enabled:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self.progress = Progress(SpinnerColumn(), TextColumn("{task.description}"), TimeElapsedColumn())

    def __enter__(self) -> _Reporter:
        if self.progress is not None:
            self.progress.__enter__()
        return self

    def __exit__(self, *exc) -> None:
        if self.progress is not None:
            self.progress.__exit__(*exc)

    def start(self, name: str, verb: str):
        if self.progress is None:
            return None
        return self.progress.add_task(f"{name}: {verb}", total=1)

    def done(self, task, name: str, action: str, seconds: float) -> None:
        if self.progress is not None and task is not None:
            self.progress.update(task, completed=1, description=f"{name}: {action} ({seconds:.1f} s)")
