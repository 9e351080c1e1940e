"""``affectllm data``: validate instruction files, build them from public corpora, list the builders."""

from __future__ import annotations

import logging
from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


@app.command()
def validate(
    file: Path = typer.Argument(..., help="Instruction JSONL file."),
    check_media: bool = typer.Option(False, "--check-media", help="Also check that every media file exists."),
    max_errors: int = typer.Option(0, "--max-errors", help="Print at most this many errors (0: all)."),
) -> None:
    """Check every row against the schema; print each error with its line and field. Exit 1 on any error."""
    from affectllm.instruct.dataset import scan_file
    from affectllm.instruct.schema import RowError

    printed = 0

    def show(err: RowError, rid: str | None) -> None:
        nonlocal printed
        if max_errors and printed >= max_errors:
            return
        printed += 1
        typer.echo(f"{file}:{err.line}" + (f" [{rid}]" if rid else "") + f" {err.field}: {err.message}")

    try:
        report = scan_file(file, check_media=check_media, on_error=show)
    except FileNotFoundError as e:
        typer.echo(str(e), err=True)
        raise typer.Exit(1) from None
    for line in report.lines(check_media):
        typer.echo(line)
    if not report.ok:
        raise typer.Exit(1)


@app.command()
def build(
    source: str = typer.Option(..., "--source", help="Builder name (see `affectllm data sources`)."),
    root: Path = typer.Option(..., "--root", help="The corpus folder (or its annotation file)."),
    out: Path = typer.Option(..., "--out", help="Output JSONL file (written atomically)."),
    limit: int | None = typer.Option(None, "--limit", min=0, help="Stop after N source samples."),
    seed: int = typer.Option(0, "--seed", help="Seed of the prompt choice (builds are deterministic)."),
    tasks: str = typer.Option("all", "--tasks", help="Comma-separated tasks to emit, or 'all' (applicable ones)."),
    paths: str = typer.Option("auto", "--paths", help="Media paths: auto (relative inside the output folder, "
                              "else absolute), relative, or absolute."),
    allow_missing_media: bool = typer.Option(False, "--allow-missing-media",
                                             help="Keep samples whose clip is not found (text-only rows)."),
) -> None:
    """Build an instruction file from a corpus; ends with rows written and rows skipped per reason."""
    from affectllm.instruct.builders import build as run_build
    from affectllm.instruct.builders import get_builder

    logging.basicConfig(level=logging.WARNING, format="%(message)s")
    if paths not in ("auto", "relative", "absolute"):
        raise typer.BadParameter("use auto, relative or absolute", param_hint="--paths")
    task_list = None if tasks.strip().lower() == "all" else [t.strip() for t in tasks.split(",") if t.strip()]
    try:
        builder = get_builder(source)
        summary = run_build(builder, root, out, tasks=task_list, seed=seed, limit=limit,
                            path_mode=paths, require_media=not allow_missing_media)  # type: ignore[arg-type]
    except (KeyError, FileNotFoundError, ValueError) as e:
        typer.echo(f"error: {e.args[0] if e.args else e}", err=True)
        raise typer.Exit(1) from None
    for line in summary.lines():
        typer.echo(line)
    if summary.rows == 0:
        typer.echo(f"error: no rows written from {root}; see the skip reasons above", err=True)
        raise typer.Exit(1)


@app.command()
def sources() -> None:
    """List the dataset builders and the files each one expects under --root."""
    from affectllm.instruct.builders import SOURCES

    for name, cls in SOURCES.items():
        typer.echo(f"{name:18s} {cls.summary}")
        typer.echo(f"{'':18s} expects: {cls.layout}")
