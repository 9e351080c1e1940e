"""``affectllm chat [MEDIA...]``: a multi-turn conversation about clips, streamed; scriptable through stdin."""

from __future__ import annotations

from typing import Annotated

import typer

from affectllm.cli.options import AdapterOpt, DeviceOpt, DtypeOpt, ModelOpt, QuantizationOpt, quantization_arg
from affectllm.model.limits import MAX_NEW_TOKENS

HELP = (
    "Talk to AffectLLM about videos, audio and images.\n\n"
    "MEDIA given here is attached before the first question. In the conversation: /attach PATH, /reset, "
    "/save FILE (the conversation as JSON), /help, /quit. On a terminal answers stream token by token; when "
    "stdin is not a terminal each input line is one user turn and each answer is printed to stdout as one "
    "block (notes go to stderr), e.g.  printf 'How does she feel?\\n' | affectllm chat clip.mp4\n\n"
    "Exit status: 0, or 1 when a command failed in a scripted run (unreadable media, unknown command); "
    "2 when the model cannot be loaded.\n\n"
    "Testing aid: affectllm.testing.save_tiny_checkpoint(FOLDER) writes a random tiny model that --model FOLDER loads (its output is meaningless)."
)


def register(app: typer.Typer) -> None:
    @app.command("chat", help=HELP)
    def chat(
        media: Annotated[list[str] | None, typer.Argument(help="Media to attach first.", show_default=False)] = None,
        model: ModelOpt = None,
        adapter: AdapterOpt = None,
        max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = MAX_NEW_TOKENS,
        device: DeviceOpt = "auto",
        dtype: DtypeOpt = "auto",
        quantization: QuantizationOpt = "auto",
    ) -> None:
        import sys

        from affectllm.chat import ChatSession, run_repl
        from affectllm.loading import load as load_model

        interactive = sys.stdin.isatty()
        if interactive:
            try:
                import readline  # noqa: F401 - line editing and history for input lines
            except ImportError:  # pragma: no cover - Windows
                pass
        try:
            m, proc = load_model(model, adapter, device, dtype, quantization=quantization_arg(quantization))
        except (OSError, ValueError, RuntimeError) as e:
            typer.echo(f"error: cannot load the model ({e})", err=True)
            raise typer.Exit(2) from e
        session = ChatSession(m, proc, max_new_tokens=max_new_tokens)
        failures = run_repl(session, sys.stdin, sys.stdout, sys.stderr, interactive, media=list(media or []))
        if failures and not interactive:
            raise typer.Exit(1)
