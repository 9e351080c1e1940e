"""``affectllm caption PATH...``: one JSON record per input (files, folders, globs, CSV/JSONL manifests).

Heavy imports (torch, transformers) happen inside the command so ``affectllm --help`` stays fast.
"""

from __future__ import annotations

from typing import Annotated

import typer

from affectllm.cli.options import AdapterOpt, DeviceOpt, DtypeOpt, ModelOpt, QuantizationOpt, quantization_arg
from affectllm.model.limits import MAX_NEW_TOKENS

HELP = (
    "Caption videos, audio and images: one JSON record per input, to stdout or --out.\n\n"
    "PATH may be a file, a folder (walked for media files), a glob ('clips/**/*.mp4', quoted) or a CSV/JSONL "
    "manifest with columns id, path and optional subtitle. Each record holds id, source, status (ok | error), "
    "labels, explanation (explanation_source: the model's own or composed from the evidence; explanation_replaced: why), "
    "valence, arousal, transcript, language, evidence (face / voice / text), segments "
    "(inputs longer than --segment-seconds), model (name, fingerprint, trained), error and name_encoding (set when "
    "a file name is not valid UTF-8: id and source then hold it with each undecodable byte as \\xNN and "
    "backslashes doubled, so the original name can be recovered); timing is kept apart."
    "\n\n"
    "Exit status: 0 when every record is ok; 1 when any input failed (its record has status 'error' and a "
    "message naming the file, the problem and the fix; the run still captions everything else; with --resume, "
    "failed records already in the output count too); 2 for unusable arguments (bad manifest, duplicate ids, "
    "bad options).\n\n"
    "Testing aid: affectllm.testing.save_tiny_checkpoint(FOLDER) writes a random tiny model that --model FOLDER loads (its output is meaningless)."
)


def register(app: typer.Typer) -> None:
    @app.command("caption", help=HELP, no_args_is_help=True)
    def caption(
        paths: Annotated[list[str], typer.Argument(help="Files, folders, globs or CSV/JSONL manifests.",
                                                   show_default=False)],
        out: Annotated[str | None, typer.Option("--out", "-o", help="Output file: .jsonl (default) or .csv; "
                                                "stdout when omitted.")] = None,
        model: ModelOpt = None,
        adapter: AdapterOpt = None,
        segment_seconds: Annotated[float, typer.Option(help="Longer inputs are cut into speech-based segments of "
                                                       "at most this many seconds, each reported.")] = 30.0,
        batch_size: Annotated[int, typer.Option(help="Segments generated together (left padding).")] = 1,
        resume: Annotated[bool, typer.Option(help="Skip ids already in --out and append the rest.")] = False,
        num_shards: Annotated[int | None, typer.Option(help="Split the inputs into K shards (by id hash).")] = None,
        shard_index: Annotated[int | None, typer.Option(help="Which shard this process captions (0..K-1); "
                                                        "--out gets a .shard-I-of-K suffix.")] = None,
        backend: Annotated[str, typer.Option(help="local, or ray (Ray Data: the optional 'cluster' extra).")] = "local",
        ray_workers: Annotated[int, typer.Option(help="Ray actors (each loads the model once).")] = 1,
        ray_gpus_per_worker: Annotated[float, typer.Option(help="GPUs Ray reserves for each actor (0: CPU actors; "
                                                           "1 on a GPU node; 0.5 packs two actors per GPU).")] = 0.0,
        ray_cpus_per_worker: Annotated[float, typer.Option(help="CPUs Ray reserves for each actor.")] = 1.0,
        prompt: Annotated[str | None, typer.Option(help="The question asked for every input.")] = None,
        max_new_tokens: Annotated[int, typer.Option(help="Longest generated report, in tokens.")] = MAX_NEW_TOKENS,
        explanation: Annotated[str, typer.Option(
            help="Who writes each explanation: model (the language model; replaced by the composed one when it "
                 "fails the faithfulness checks), or evidence (the model writes labels, valence and arousal, and "
                 "the explanation is composed from the experts' evidence: several times faster).")] = "model",
        device: DeviceOpt = "auto",
        dtype: DtypeOpt = "auto",
        quantization: QuantizationOpt = "auto",
        progress: Annotated[bool, typer.Option(help="Show the progress bar and summary on stderr.")] = True,
    ) -> None:
        from affectllm.captioning.inputs import InputError
        from affectllm.captioning.run import CaptionOptions, run_caption

        opts = CaptionOptions(paths=list(paths), out=out, model=model, adapter=adapter,
                              segment_seconds=segment_seconds, batch_size=batch_size, resume=resume,
                              num_shards=num_shards, shard_index=shard_index, backend=backend, prompt=prompt,
                              max_new_tokens=max_new_tokens, explanation=explanation, device=device, dtype=dtype, progress=progress,
                              ray_workers=ray_workers, ray_gpus_per_worker=ray_gpus_per_worker,
                              ray_cpus_per_worker=ray_cpus_per_worker, quantization=quantization_arg(quantization))
        try:
            summary = run_caption(opts)
        except (InputError, ValueError, RuntimeError, OSError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        if summary.any_failed:
            raise typer.Exit(1)

    @app.command("caption-merge", no_args_is_help=True, help=(
        "Merge the shard files of one caption job into one file, every id exactly once.\n\n"
        "`affectllm caption-merge captions.jsonl` finds captions.shard-I-of-K.jsonl beside it (the files that "
        "`caption --out captions.jsonl --num-shards K --shard-index I` wrote), checks that all K are there, "
        "complete and without a repeated id, and writes captions.jsonl. Or name the shard files: "
        "`affectllm caption-merge --out all.jsonl a.jsonl b.jsonl`. Exit 2 (nothing written) when a check fails."))
    def caption_merge(
        files: Annotated[list[str], typer.Argument(help="The job's output name (shards are found beside it), or "
                                                   "the shard files themselves with --out.", show_default=False)],
        out: Annotated[str | None, typer.Option("--out", "-o", help="Merged file (.jsonl or .csv); default: the "
                                                "job's output name.")] = None,
    ) -> None:
        from affectllm.captioning.merge import MergeError, merge_shards, shard_job_name

        if out is None and len(files) == 1 and shard_job_name(files[0]) is None:
            target, shards = files[0], None
        else:
            target = out or shard_job_name(files[0])
            if target is None:
                typer.echo(f"error: {files[0]}: not a shard file name (NAME.shard-I-of-K.jsonl); pass --out",
                           err=True)
                raise typer.Exit(2)
            shards = list(files)
        try:
            s = merge_shards(target, shards)
        except (MergeError, OSError) as e:
            typer.echo(f"error: {e}", err=True)
            raise typer.Exit(2) from e
        typer.echo(f"merged {len(s.shards)} shard file(s) -> {s.out}: {s.records} records "
                   f"({s.failed} with status error)", err=True)
