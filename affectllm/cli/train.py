"""``affectllm train --config RECIPE.yaml [section.key=value ...]``: run a training recipe (see train/README.md)."""

from __future__ import annotations

from pathlib import Path

import typer


def register(app: typer.Typer) -> None:
    @app.command("train")
    def train_cmd(
        config: Path = typer.Option(..., "--config", "-c", help="recipe YAML (train/configs/*.yaml)"),
        overrides: list[str] = typer.Argument(None, help="section.key=value overrides, e.g. train.max_steps=20"),
        resume: bool = typer.Option(False, "--resume", help="continue exactly from the newest checkpoint"),
        max_steps: int = typer.Option(None, "--max-steps", help="override train.max_steps"),
        save_every: int = typer.Option(None, "--save-every", help="override train.save_every (optimizer steps)"),
        output_dir: Path = typer.Option(None, "--output-dir", "-o", help="override output_dir"),
        dry_run: bool = typer.Option(False, "--dry-run",
                                     help="build the model without weights (meta device) and print parameter "
                                          "counts and a memory estimate; offline, nothing is trained"),
    ) -> None:
        """Train the projector (stage alignment) or projector + LoRA (stage instruct) from a recipe."""
        from affectllm.training.config import ConfigError, load_config

        extra = list(overrides or [])
        if max_steps is not None:
            extra.append(f"train.max_steps={max_steps}")
        if save_every is not None:
            extra.append(f"train.save_every={save_every}")
        if output_dir is not None:
            extra.append(f"output_dir={output_dir}")
        try:
            cfg = load_config(config, extra)
        except ConfigError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
        if dry_run:
            from affectllm.training.dryrun import dry_run as run_dry

            typer.echo(run_dry(cfg))
            return
        from affectllm.training.trainer import train

        try:
            train(cfg, resume=resume, echo=typer.echo)
        except ConfigError as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from None
