"""The ``affectllm`` command: one typer app, each verb group in its own module of this package."""

from __future__ import annotations

import importlib
import sys
from typing import Annotated

import typer

from affectllm.utils.quiet import configure_output

app = typer.Typer(
    name="affectllm",
    help="AffectLLM: watch and listen to a video, say which emotions people show and why.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)

VERBOSE_FLAGS = ("--verbose", "-v")


@app.callback()
def _global_options(
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show the warnings, logs and progress bars of "
                                          "dependencies (transformers, huggingface_hub, tqdm ...).")] = False,
) -> None:
    configure_output(verbose)


# (module, group name or None for top-level commands). A group module defines `app: typer.Typer`;
# a command module defines `register(app)`.
_GROUPS = [
    ("affectllm.cli.models", "models", "Install, convert and list the offline weights."),
    ("affectllm.cli.eval", "eval", "Score predictions on OV-MER / MER-UniBench / EMER tasks."),
    ("affectllm.cli.data", "data", "Build and validate instruction data."),
    ("affectllm.cli.features", "features", "Precompute frozen-tower features into the cache."),
    ("affectllm.cli.convert", "convert", "Convert other projects' published checkpoints (AffectGPT)."),
    ("affectllm.cli.export", "export", "Export AffectLLM checkpoints in other tools' formats (PEFT)."),
]
_COMMANDS = [
    "affectllm.cli.caption",
    "affectllm.cli.train",
    "affectllm.cli.chat",
    "affectllm.cli.serve",
    "affectllm.cli.web",
]


def _build() -> typer.Typer:
    for mod_name, name, help_text in _GROUPS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name == mod_name:
                continue  # verb group not built yet
            raise
        app.add_typer(mod.app, name=name, help=help_text)
    for mod_name in _COMMANDS:
        try:
            mod = importlib.import_module(mod_name)
        except ModuleNotFoundError as e:
            if e.name == mod_name:
                continue
            raise
        mod.register(app)
    return app


def main() -> None:
    # decided before the verb modules are imported, so libraries read the quiet settings at import time
    args = sys.argv[1:]
    verbose = any(a in VERBOSE_FLAGS for a in args[:_first_verb(args)])
    configure_output(verbose)
    _build()()


def _first_verb(args: list[str]) -> int:
    """Index of the first non-option argument (global options come before the verb)."""
    return next((i for i, a in enumerate(args) if not a.startswith("-")), len(args))
