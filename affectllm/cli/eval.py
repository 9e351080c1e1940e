"""``affectllm eval``: score prediction files, run a model over a task, compare runs, fetch the wheel resources.

Scoring never imports torch; ``run`` imports the model API inside the command.
"""

from __future__ import annotations

import csv
import zipfile
from pathlib import Path
from typing import Annotated

import typer

from affectllm.cli.options import AdapterOpt, DeviceOpt, DtypeOpt, QuantizationOpt, quantization_arg

app = typer.Typer(no_args_is_help=True, help="Score predictions on OV-MER / MER-UniBench / EMER tasks.")

JudgeOpt = Annotated[str, typer.Option("--judge", help="lexicon (default, offline) | hf:/path/to/model | openai[:MODEL]")]
BaseUrlOpt = Annotated[str | None, typer.Option("--judge-base-url", envvar="AFFECTLLM_JUDGE_BASE_URL",
                                                help="OpenAI-compatible endpoint, e.g. http://localhost:8000/v1")]
ModelOpt = Annotated[str | None, typer.Option("--judge-model", envvar="AFFECTLLM_JUDGE_MODEL", help="judge model name")]
KeyOpt = Annotated[str | None, typer.Option("--judge-api-key", envvar="AFFECTLLM_JUDGE_API_KEY", show_default=False,
                                            help="API key of the endpoint")]
CacheOpt = Annotated[Path | None, typer.Option("--judge-cache", help="sqlite file for judge answers "
                                                                     "(default: the user cache)")]
WheelOpt = Annotated[Path | None, typer.Option("--wheel-dir", help="folder with format.csv, synonym.xlsx, "
                                                                   "wheel1..5.xlsx (default: $AFFECTLLM_WHEEL_DIR, "
                                                                   "../shared, the user cache)")]


def _fail(e: Exception) -> None:
    typer.echo(f"error: {e}", err=True)
    raise typer.Exit(2)


def _judge(spec: str, wheel_dir: Path | None, base_url: str | None, model: str | None, key: str | None,
           cache: Path | None):
    from affectllm.evaluation.judges import make_judge

    if spec == "lexicon":
        return None  # the scorer builds it only if a prediction needs it
    return make_judge(spec, wheel_dir=wheel_dir, cache_path=cache, base_url=base_url, model=model, api_key=key)


def _print_summary(results: dict, paths: dict[str, Path]) -> None:
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"{results['task']} ({results['n_samples']} samples)")
    table.add_column("metric")
    table.add_column("value", justify="right")
    for k, v in results["summary"].items():
        table.add_row(k, "—" if v is None else f"{v:.4f}")
    console = Console()
    console.print(table)
    ids = results["ids"]
    for key, info in ids.items():
        if info["count"]:
            console.print(f"[yellow]{key.replace('_', ' ')}: {info['count']} (e.g. {', '.join(info['examples'])}); "
                          f"{info['handling']}[/yellow]")
    for name, p in paths.items():
        console.print(f"{name}: {p}")


# Bad input files end in exit 2 with a message, never a traceback or click's bare "Aborted." (an EOFError).
_ERRORS: tuple[type[Exception], ...] = (ValueError, OSError, RuntimeError, EOFError, csv.Error, zipfile.BadZipFile)


@app.command()
def score(
    task: Annotated[str, typer.Option("--task", help="task name (see `affectllm eval tasks`) or a task YAML path")],
    gt: Annotated[Path, typer.Option("--gt", help="ground-truth CSV")],
    pred: Annotated[Path, typer.Option("--pred", help="predictions: CSV (name, openset), JSONL (id + labels) or .npz")],
    out: Annotated[Path, typer.Option("--out", help="output folder for results.json, samples.jsonl, report.html")],
    wheel_dir: WheelOpt = None,
    synonym_groups: Annotated[Path | None, typer.Option(
        "--synonym-groups", help="MER2024 synonym-group cache (.zip / folder of <id>.npy, or .json/.jsonl); "
                                 "default: groups from the judge")] = None,
    judge: JudgeOpt = "lexicon",
    judge_base_url: BaseUrlOpt = None,
    judge_model: ModelOpt = None,
    judge_api_key: KeyOpt = None,
    judge_cache: CacheOpt = None,
    no_html: Annotated[bool, typer.Option("--no-html", help="skip report.html")] = False,
    no_embeddings: Annotated[bool, typer.Option("--no-embeddings", help="EMER: skip the MiniLM variant")] = False,
) -> None:
    """Score a prediction file against a task's ground truth and write the three outputs."""
    from affectllm.evaluation.outputs import write_outputs
    from affectllm.evaluation.scoring import evaluate

    try:
        j = _judge(judge, wheel_dir, judge_base_url, judge_model, judge_api_key, judge_cache)
        ev = evaluate(task, gt, pred, wheel_dir, judge=j, synonym_groups=synonym_groups,
                      embeddings=not no_embeddings)
        paths = write_outputs(ev, out, html=not no_html)
    except _ERRORS as e:
        _fail(e)
    _print_summary(ev.results, paths)


@app.command()
def run(
    task: Annotated[str, typer.Option("--task", help="task name or YAML path")],
    data_root: Annotated[Path, typer.Option("--data-root", help="dataset folder (media + ground truth)")],
    out: Annotated[Path, typer.Option("--out", help="output folder (responses are cached here)")],
    model: Annotated[str | None, typer.Option("--model", help="AffectLLM checkpoint / LM id (default: embedded)")] = None,
    gt: Annotated[Path | None, typer.Option("--gt", help="ground-truth CSV (default: the task's file under "
                                                         "--data-root)")] = None,
    limit: Annotated[int | None, typer.Option("--limit", help="only the first N samples")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", min=1, help="samples perceived and answered "
                                            "together (one batched generation)")] = 1,
    adapter: AdapterOpt = None,
    device: DeviceOpt = "auto",
    dtype: DtypeOpt = "auto",
    quantization: QuantizationOpt = "auto",
    wheel_dir: WheelOpt = None,
    judge: JudgeOpt = "lexicon",
    judge_base_url: BaseUrlOpt = None,
    judge_model: ModelOpt = None,
    judge_api_key: KeyOpt = None,
    judge_cache: CacheOpt = None,
) -> None:
    """Run a model over a task's media (cached per sample and model), then score."""
    from affectllm.evaluation.runner import run_task

    def progress(n: int, total: int, sid: str) -> None:
        typer.echo(f"[{n}/{total}] {sid}", err=True)

    try:
        j = _judge(judge, wheel_dir, judge_base_url, judge_model, judge_api_key, judge_cache)
        load_kwargs = {"adapter": adapter, "device": device, "dtype": dtype,
                       "quantization": quantization_arg(quantization)}
        ev = run_task(task, model, data_root, out, gt=gt, limit=limit, wheel_dir=wheel_dir, judge=j,
                      progress=progress, batch_size=batch_size, load_kwargs=load_kwargs)
    except _ERRORS as e:
        _fail(e)
    _print_summary(ev.results, {"results": out / "results.json", "samples": out / "samples.jsonl",
                                "report": out / "report.html"})


@app.command()
def compare(
    out_dirs: Annotated[list[Path], typer.Argument(help="output folders of `eval score` / `eval run`")],
) -> None:
    """Print the headline numbers of several runs side by side (chance floor included)."""
    from rich.console import Console
    from rich.table import Table

    from affectllm.evaluation.outputs import read_results

    try:
        runs = [(d, read_results(d)) for d in out_dirs]
    except _ERRORS as e:
        _fail(e)
    metrics: list[str] = []
    for _, r in runs:
        metrics += [k for k in r.get("summary", {}) if k not in metrics]
    table = Table(title="affectllm eval compare")
    table.add_column("metric")
    names = [d.name for d, _ in runs]
    for (d, r), name in zip(runs, names, strict=True):
        label = str(d) if names.count(name) > 1 else name  # same folder name twice: show the paths
        table.add_column(f"{label}\n{r.get('task')}", justify="right")
    for m in metrics:
        cells = []
        for _, r in runs:
            v = r.get("summary", {}).get(m)
            cells.append("—" if v is None else f"{v:.4f}")
        table.add_row(m, *cells)
    table.add_row("n_samples", *[str(r.get("n_samples")) for _, r in runs])
    table.add_row("predictions", *[str((r.get("prediction_file") or {}).get("sha256", ""))[:12] for _, r in runs])
    Console(width=max(100, 24 + 22 * len(runs))).print(table)


@app.command("fetch-resources")
def fetch_resources_cmd(
    dest: Annotated[Path | None, typer.Option("--dest", help="target folder (default: the user cache, found "
                                                             "automatically by the scorer)")] = None,
    base_url: Annotated[str | None, typer.Option("--base-url", help="folder URL holding format.csv etc.")] = None,
    no_verify: Annotated[bool, typer.Option("--no-verify", help="accept files whose sha256 differs")] = False,
    force: Annotated[bool, typer.Option("--force", help="download even if present")] = False,
) -> None:
    """Download the public AffectGPT emotion-wheel files (needs internet once)."""
    from affectllm.evaluation.fetch import fetch_resources

    try:
        status = fetch_resources(dest, base_url, verify=not no_verify, force=force)
    except _ERRORS as e:
        _fail(e)
    for name, s in status.items():
        typer.echo(f"{name}: {s}")


@app.command()
def tasks() -> None:
    """List the task files (name, kind, primary metric, aliases)."""
    from affectllm.evaluation.tasks import list_tasks

    for t in list_tasks():
        typer.echo(f"{t.name:12s} {t.kind:10s} {t.primary:14s} {', '.join(t.aliases)}")
