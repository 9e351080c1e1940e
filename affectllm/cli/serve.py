"""``affectllm serve``: the OpenAI-compatible HTTP server (FastAPI + uvicorn) around one loaded model.

Heavy imports (torch, transformers, fastapi) happen inside the command so ``affectllm --help`` stays fast.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from affectllm.cli.options import AdapterOpt, DeviceOpt, DtypeOpt, ModelOpt, QuantizationOpt, quantization_arg

HELP = """Serve the model over HTTP with OpenAI's chat-completions API.

POST /v1/chat/completions takes messages whose content parts are text, image_url, video_url, audio_url or
input_audio (base64); "stream": true answers with server-sent events ending in "data: [DONE]";
"response_format" {"type": "json_object"} or {"type": "json_schema", ...} answers with the EmotionReport JSON
(the fields the schema names). Decoding is greedy unless "temperature" > 0 ("top_p", "seed" apply then); "stop"
cuts the answer; "n" must be 1. GET /v1/models, GET /health, GET /metrics (Prometheus).
The model id is --served-model-name (default: the checkpoint folder's name, or affectllm-default); requests may
also name affectllm-default or omit "model". With --api-key, /docs and /openapi.json need the key too.

Media: data: URLs and input_audio always work; file:// URLs and paths only inside --allowed-media-dir
(no '..', no symlink leaving it); http(s) URLs only with --allow-remote-media. Concurrent requests wait in a
bounded queue (--max-queue; beyond it: 429 with Retry-After) and decode in batches of up to --max-batch-size. Binds 127.0.0.1 unless --host says otherwise; use --api-key when others can reach it.

Testing aid: affectllm.testing.save_tiny_checkpoint(FOLDER) writes a random tiny model; --model FOLDER serves it.
"""


def _unwrap(text: str) -> str:
    """Paragraphs as single lines, so the terminal (not this file) decides where lines break."""
    return "\n\n".join(" ".join(par.split()) for par in text.strip().split("\n\n"))


def register(app: typer.Typer) -> None:
    @app.command("serve", help=_unwrap(HELP))
    def serve(
        host: Annotated[str, typer.Option(help="Interface to bind; 0.0.0.0 exposes the server to the network.")]
        = "127.0.0.1",
        port: Annotated[int, typer.Option(help="TCP port.")] = 8000,
        model: ModelOpt = None,
        adapter: AdapterOpt = None,
        api_key: Annotated[str | None, typer.Option(envvar="AFFECTLLM_API_KEY", help="Require 'Authorization: "
                                                    "Bearer KEY' on /v1 routes (or set AFFECTLLM_API_KEY).")] = None,
        allowed_media_dir: Annotated[Path | None, typer.Option(help="Folder whose files requests may name by "
                                                               "path or file:// URL.")] = None,
        allow_remote_media: Annotated[bool, typer.Option(help="Let requests name http(s) media URLs the server "
                                                         "downloads (it can then reach any host it can).")] = False,
        max_body_mb: Annotated[float, typer.Option(help="Largest request body, MiB (base64 media included).")] = 32.0,
        max_media_mb: Annotated[float, typer.Option(help="Largest media file, MiB.")] = 64.0,
        max_media_seconds: Annotated[float, typer.Option(help="Longest media accepted, seconds.")] = 120.0,
        max_new_tokens: Annotated[int, typer.Option(help="Cap on max_tokens, and the default.")] = 512,
        max_queue: Annotated[int, typer.Option(min=1, help="Requests that may wait for or use the model; one "
                                               "more is answered 429 with Retry-After.")] = 32,
        max_batch_size: Annotated[int, typer.Option(min=1, help="Requests decoded together in one batch (1: one "
                                                    "at a time).")] = 8,
        batch_window_ms: Annotated[float, typer.Option(min=0, help="How long a request waits for others to "
                                                       "batch with (0: batch only what is already queued).")] = 0.0,
        device: DeviceOpt = "auto",
        dtype: DtypeOpt = "auto",
        quantization: QuantizationOpt = "auto",
        log_level: Annotated[str, typer.Option(help="uvicorn log level.")] = "info",
        served_model_name: Annotated[str | None, typer.Option(help="The model id /v1/models lists and requests "
                                                              "name; default: the checkpoint folder's name, or "
                                                              "affectllm-default (never a path).")] = None,
    ) -> None:
        if allowed_media_dir is not None and not allowed_media_dir.is_dir():
            raise typer.BadParameter(f"{allowed_media_dir}: not a folder; pass an existing folder of media",
                                     param_hint="--allowed-media-dir")
        if host not in ("127.0.0.1", "localhost", "::1") and not api_key:
            print(f"warning: binding {host} without --api-key: anyone who can reach this port can use the model",
                  file=sys.stderr)
        import uvicorn

        from affectllm.loading import load as load_model
        from affectllm.serving import MediaPolicy, ServeSettings, create_app

        try:
            m, proc = load_model(model=model, adapter=adapter, device=device, dtype=dtype,
                                 quantization=quantization_arg(quantization))
        except (ValueError, OSError) as err:  # unusable --model/--adapter (pickled-only, missing …): no traceback
            typer.echo(f"error: {err}", err=True)
            raise typer.Exit(2) from err
        policy = MediaPolicy(allowed_dir=allowed_media_dir.absolute() if allowed_media_dir else None,
                             allow_remote=allow_remote_media, max_media_bytes=int(max_media_mb * 2**20),
                             max_media_seconds=max_media_seconds)
        settings = ServeSettings(api_key=api_key, media=policy, max_body_bytes=int(max_body_mb * 2**20),
                                 max_new_tokens=max_new_tokens, max_queue=max_queue, max_batch=max_batch_size,
                                 batch_window_s=batch_window_ms / 1000, model_id=served_model_name)
        server_app = create_app(m, proc, settings)
        print(f"serving {server_app.state.engine.model_id!r} on http://{host}:{port}/v1", file=sys.stderr,
              flush=True)
        uvicorn.run(server_app, host=host, port=port, log_level=log_level)
