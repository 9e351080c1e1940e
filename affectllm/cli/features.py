"""``affectllm features extract --data FILE --config RECIPE``: precompute frozen-tower features into the cache."""

from __future__ import annotations

from pathlib import Path

import typer

app = typer.Typer(no_args_is_help=True)


@app.command("extract")
def extract_cmd(
    data: Path = typer.Option(..., "--data", "-d", help="instruction JSONL (affectllm.instruct schema)"),
    config: Path = typer.Option(..., "--config", "-c", help="the training recipe whose model and settings apply"),
    overrides: list[str] = typer.Argument(None, help="section.key=value overrides of the recipe"),
    batch_size: int = typer.Option(None, "--batch-size", help="rows per tower batch (default: the recipe's)"),
) -> None:
    """Decode every row's media once and cache the frozen towers' outputs (keyed by content + tower fingerprint)."""
    from affectllm.training.config import ConfigError, load_config

    try:
        cfg = load_config(config, list(overrides or []))
    except ConfigError as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from None
    if not data.is_file():
        typer.echo(f"error: {data}: no such instruction file", err=True)
        raise typer.Exit(2)
    from affectllm.training.extract import extract_features

    extract_features(cfg, data, batch_size=batch_size, echo=typer.echo)
