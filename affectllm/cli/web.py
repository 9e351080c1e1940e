"""``affectllm web``: the Gradio page (upload a clip, streamed answer, label chips, evidence plots).

Heavy imports (torch, transformers, gradio) happen inside the command so ``affectllm --help`` stays fast.
"""

from __future__ import annotations

import os
import sys
from typing import Annotated

import typer

from affectllm.cli.options import AdapterOpt, DeviceOpt, DtypeOpt, ModelOpt, QuantizationOpt, quantization_arg
from affectllm.model.limits import MAX_NEW_TOKENS

HELP = ("Open a web page to talk to the model about a video, audio clip or image: the answer streams in, the "
        "labels show as chips, and the evidence panel shows the transcript, the face expression over time and "
        "the prosody. Binds 127.0.0.1 unless --host says otherwise. Testing aid: "
        "affectllm.testing.save_tiny_checkpoint(FOLDER) writes a random tiny model that --model FOLDER loads.")


def register(app: typer.Typer) -> None:
    @app.command("web", help=HELP)
    def web(
        model: ModelOpt = None,
        adapter: AdapterOpt = None,
        host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the page to the network.")]
        = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 7860,
        share: Annotated[bool, typer.Option(help="Also open a public gradio.live tunnel (needs internet).")] = False,
        max_new_tokens: Annotated[int, typer.Option(help="Longest answer, in tokens.")] = MAX_NEW_TOKENS,
        max_media_seconds: Annotated[float, typer.Option(help="Longest upload accepted, seconds.")] = 300.0,
        device: DeviceOpt = "auto",
        dtype: DtypeOpt = "auto",
        quantization: QuantizationOpt = "auto",
    ) -> None:
        os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # no phoning home
        from affectllm.loading import load as load_model
        from affectllm.web import build_demo, launch

        m, proc = load_model(model=model, adapter=adapter, device=device, dtype=dtype,
                                 quantization=quantization_arg(quantization))
        demo = build_demo(m, proc, max_new_tokens=max_new_tokens, max_media_seconds=max_media_seconds)
        print(f"AffectLLM web page on http://{host}:{port}", file=sys.stderr, flush=True)
        launch(demo, host=host, port=port, share=share)
