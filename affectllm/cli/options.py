"""The options every model-loading command shares (caption, chat, serve, web, eval run): one definition each, so
``--model``, ``--adapter``, ``--device``, ``--dtype`` and ``--quantization`` read the same everywhere and reach
``affectllm.load`` unchanged."""

from __future__ import annotations

from typing import Annotated

import typer

from affectllm.model.limits import QUANTIZATIONS

ModelOpt = Annotated[str | None, typer.Option(
    "--model", help="AffectLLM checkpoint folder, 'affectgpt' (the published AffectGPT, fetched and converted "
    "once) or a causal-LM id/path; default: the embedded offline model.")]
AdapterOpt = Annotated[str | None, typer.Option("--adapter", help="AffectLLM checkpoint (projector + LoRA) to "
                                                "apply.")]
DeviceOpt = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:1 ...")]
DtypeOpt = Annotated[str, typer.Option("--dtype", help=(
    "auto (bfloat16 on a GPU, and for an embedded default on a CPU with native bf16; float32 otherwise), "
    "float32, bfloat16, float16."))]
QuantizationOpt = Annotated[str, typer.Option(
    "--quantization", help=f"Load the language model quantised: {', '.join(QUANTIZATIONS)}. 8bit / 4bit (NF4) are "
    "bitsandbytes on a CUDA GPU (the 'gpu' extra: pip install 'affectllm[gpu]'); dynamic-int8 is torch's int8 "
    "linear layers on the CPU (~2.7x faster decoding on 2 cores, but the 135M default then breaks its report "
    "format more often); auto (the default): unquantised (model/limits.py: AUTO_CPU_QUANTIZATION).")]


def quantization_arg(value: str) -> str | None:
    """``--quantization`` as ``affectllm.load`` takes it (None for none, "auto" kept); a clear error otherwise."""
    v = value.strip().lower()
    if v not in QUANTIZATIONS:
        raise typer.BadParameter(f"{value!r}: use one of {', '.join(QUANTIZATIONS)}", param_hint="--quantization")
    return None if v == "none" else v
