"""``affectllm convert``: turn another project's published checkpoint into an AffectLLM checkpoint folder.

    affectllm convert affectgpt CHECKPOINT.pth --out DIR [--vision-model ID|PATH] [--audio-model ID|PATH]
                                                        [--text-model ID|PATH] [--variant frame|face]

The folder then works with every surface (``affectllm caption --model DIR``, chat, serve, web, eval run).
Exit status 2 when the file is refused (needs more than ``torch.load(weights_only=True)``) or does not fit.
"""

from __future__ import annotations

from typing import Annotated

import typer

app = typer.Typer(no_args_is_help=True, help="Convert published checkpoints of other projects.")


@app.command("affectgpt")
def affectgpt(
    checkpoint: Annotated[str | None, typer.Argument(help="AffectGPT's checkpoint_*.pth (ICML 2025 release).")] = None,
    out: Annotated[str | None, typer.Option("--out", "-o", help="Output folder (an AffectLLM checkpoint).")] = None,
    vision_model: Annotated[str, typer.Option(help="CLIP id or local folder.")] = "openai/clip-vit-large-patch14",
    audio_model: Annotated[str, typer.Option(help="HuBERT id or local folder.")] = (
        "TencentGameMate/chinese-hubert-large"),
    text_model: Annotated[str, typer.Option(help="LLM id or local folder.")] = "Qwen/Qwen2.5-7B-Instruct",
    variant: Annotated[str, typer.Option(help="frame (raw frames, default) or face (OpenFace .npy crops).")] = "frame",
    dry_run: Annotated[bool, typer.Option("--dry-run", help="Only report the published model's parameter counts "
                                          "and GPU weight memory (meta device; nothing read or downloaded).")] = False,
) -> None:
    """Convert AffectGPT's published checkpoint (projector + LoRA); towers and LLM stay named by id/path."""
    from affectllm.compat.affectgpt_convert import ConversionError, convert_checkpoint

    if dry_run:
        from affectllm.compat.affectgpt_hub import dry_run as report

        r = report(variant)
        for part, n in r["parameters"].items():
            typer.echo(f"{part:36s} {n / 1e6:10.1f} M parameters")
        typer.echo(f"{'total':36s} {r['total_parameters'] / 1e9:10.3f} B parameters "
                   f"(LoRA {r['lora_parameters'] / 1e6:.1f} M)")
        typer.echo(f"weights in bf16: {r['weights_bf16_gib']:.1f} GiB; LLM in 4-bit NF4: "
                   f"{r['weights_4bit_gib']:.1f} GiB (plus activations and KV cache)")
        return
    if checkpoint is None or out is None:
        raise typer.BadParameter("give CHECKPOINT and --out (or --dry-run)")
    try:
        summary = convert_checkpoint(checkpoint, out, vision_model=vision_model, audio_model=audio_model,
                                     text_model=text_model, variant=variant)
    except (ConversionError, ValueError, OSError) as e:
        typer.echo(f"error: {e}", err=True)
        raise typer.Exit(2) from e
    dropped = summary["dropped_buffers"]
    note = f"; {len(dropped)} frozen-tower buffers rebuilt from their sources" if dropped else ""
    typer.echo(f"converted {summary['tensors']} tensors{note} -> {summary['out']}")
