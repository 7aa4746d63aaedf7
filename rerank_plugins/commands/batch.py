"""``rerank-plugins batch``: rerank a JSONL / Parquet file or folder of (query, candidates) rows with Ray Data."""

from __future__ import annotations

from typing import Annotated, Any

import typer

from ._eval_common import fail, offline_env, parse_options

__all__ = ["batch_command", "register"]


def batch_command(
    input: Annotated[str, typer.Argument(help="JSONL or Parquet file or folder of {query_id, query, candidates}")],
    output: Annotated[str, typer.Argument(help="output folder (result parts; rerunning skips finished rows)")],
    model: Annotated[str, typer.Option("--model", "-m", help="reranker name, bundled model or path")] = "minilm",
    kind: Annotated[str | None, typer.Option(help="strategy kind when the model needs one")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="reranker option key=value (JSON values), repeatable")
    ] = None,
    actors: Annotated[int, typer.Option(min=1, help="actors in the pool (one model each)")] = 1,
    num_cpus: Annotated[float, typer.Option(min=0.0, help="CPUs reserved per actor")] = 1.0,
    num_gpus: Annotated[float, typer.Option(min=0.0, help="GPUs reserved per actor")] = 0.0,
    batch_size: Annotated[int, typer.Option(min=1, help="rows per rerank_batch call and per result part")] = 32,
    top_k: Annotated[int | None, typer.Option(min=0, help="keep the best k candidates per row")] = None,
    input_format: Annotated[str | None, typer.Option(help="jsonl or parquet (default: from file names)")] = None,
    output_format: Annotated[str | None, typer.Option(help="jsonl or parquet (default: as the input)")] = None,
    address: Annotated[str | None, typer.Option(help="Ray cluster address (default: start a local Ray)")] = None,
    local_cpus: Annotated[int | None, typer.Option(min=1, help="CPUs of the local Ray (default: all)")] = None,
    keep_query: Annotated[bool, typer.Option("--keep-query", help="copy the query text into the results")] = False,
    on_error: Annotated[
        str,
        typer.Option(help="raise: write the good rows, then fail (exit 1) naming the bad ones; record: go on (exit 0)"),
    ] = "raise",
    progress: Annotated[bool, typer.Option("--progress", help="show Ray Data progress bars")] = False,
) -> None:
    """Rerank every row not yet in OUTPUT with an actor pool; print what was done."""
    offline_env()
    try:
        from ..batch import rerank_dataset
    except ImportError as exc:  # pragma: no cover - depends on the install
        raise fail(f"{exc}. Install: pip install 'rerank-plugins[ray]'") from exc
    from ..batch import BatchRowsFailed
    from ..errors import RerankError

    ray_init = {"num_cpus": local_cpus} if local_cpus is not None and address is None else None
    try:
        report = rerank_dataset(
            input, output, reranker=model, kind=kind, options=parse_options(option), top_k=top_k,
            input_format=input_format, output_format=output_format,  # type: ignore[arg-type]
            batch_size=batch_size, actors=actors, num_cpus=num_cpus, num_gpus=num_gpus, address=address,
            ray_init=ray_init, keep_query=keep_query, on_error=on_error, progress=progress,  # type: ignore[arg-type]
        )
    except BatchRowsFailed as exc:
        _summary(exc.report, actors)
        raise fail(str(exc), code=1) from exc
    except RerankError as exc:
        raise fail(str(exc)) from exc
    _summary(report, actors)


def _summary(report: Any, actors: int) -> None:
    typer.echo(
        f"reranked {report.reranked} rows in {report.seconds:.1f}s ({report.rows_per_second:.1f} rows/s) with "
        f"{actors} actor(s); skipped {report.already_done} already done; {report.failed} failed; "
        f"{report.files} part file(s) in {report.output}"
    )


def register(app: typer.Typer) -> None:
    app.command("batch")(batch_command)
