"""``affectllm export peft CHECKPOINT OUT``: an AffectLLM checkpoint's LoRA as a standard PEFT adapter folder (plus
its projector, config and model card), readable by ``PeftModel.from_pretrained`` and vLLM's ``--lora-modules``."""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Export AffectLLM checkpoints in other tools' formats.")


@app.command("peft")
def peft(
    checkpoint: Annotated[str, typer.Argument(help="AffectLLM checkpoint folder (an adapter that `train` wrote).")],
    out: Annotated[str, typer.Argument(help="Output folder (adapter_config.json, adapter_model.safetensors, "
                                            "projector.safetensors, affectllm_config.json, README.md).")],
) -> None:
    """Write CHECKPOINT's LoRA as a PEFT adapter on its bare language model."""
    from pathlib import Path

    from affectllm.loading import is_checkpoint, load
    from affectllm.model.peft_export import export_peft

    if not is_checkpoint(checkpoint):
        typer.echo(f"error: {checkpoint}: not an AffectLLM checkpoint folder (no config.json of model_type "
                   "affectllm); pass the folder `affectllm train` wrote (OUTDIR/adapter)", err=True)
        raise typer.Exit(2)
    try:
        model, _ = load(adapter=checkpoint, device="cpu", merge_lora=False)
        folder = export_peft(model, out, name=f"{Path(checkpoint).resolve().name} (PEFT export)")
    except (ValueError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    typer.echo(f"wrote {folder}")
