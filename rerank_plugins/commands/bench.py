"""``rerank-plugins bench``: per-query latency (p50/p95), throughput and peak memory of rerankers on real data."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ._eval_common import fail, load_data, load_rerankers, offline_env, parse_options

__all__ = ["bench_command", "register"]


def bench_command(
    reranker: Annotated[list[str], typer.Option(help="reranker name/path (repeatable)")],
    dataset: Annotated[str, typer.Option(help="cranfield, faq, faq-sv, or a BEIR / Cranfield folder")] = "cranfield",
    first_stage: Annotated[str, typer.Option(help="bm25, dense or rrf: where the candidates come from")] = "bm25",
    depth: Annotated[int, typer.Option(min=1, help="candidates per query")] = 100,
    kind: Annotated[list[str] | None, typer.Option(help="strategy kind, one for all or one per reranker")] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="reranker option key=value or LABEL:key=value")
    ] = None,
    queries: Annotated[int, typer.Option(min=1, help="number of queries timed")] = 20,
    warmup: Annotated[int, typer.Option(min=0, help="untimed warm-up queries")] = 1,
    batch_queries: Annotated[int, typer.Option(min=1, help="queries per rerank_batch call (batched pass)")] = 16,
    output_format: Annotated[str, typer.Option("--format", help="markdown or json")] = "markdown",
    output: Annotated[Path | None, typer.Option(help="also write the results as JSON here")] = None,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bars")] = False,
) -> None:
    """Time rerankers on the first stage's top-DEPTH candidates: latency, throughput, memory."""
    offline_env(quiet=no_progress)
    if output_format not in ("markdown", "json"):
        raise fail(f"--format must be markdown or json, got {output_format!r}")
    import os

    from ..errors import RerankError
    from ..eval.bench import bench_table, benchmark_reranker
    from ..eval.first_stage import first_stage_run

    data = load_data(dataset, queries)
    options = parse_options(option)
    kinds = list(kind or ())
    results = []
    try:
        run = first_stage_run(data, first_stage, depth, progress=not no_progress)
        for i, name in enumerate(reranker):
            k = kinds[i : i + 1] if len(kinds) == len(reranker) else kinds
            label = name if not k else f"{name}[{k[0]}]"
            mine = {o: v for o, v in options.items() if ":" not in o or o.rpartition(":")[0] == label}

            def factory(name: str = name, k: list[str] = k, mine: dict = mine) -> object:
                return load_rerankers([name], k, mine)[0][1]

            result = benchmark_reranker(
                label, factory, data, run, depth=depth, warmup=warmup, queries_per_batch=batch_queries,
                progress=not no_progress,
            )  # fmt: skip
            results.append(result)
    except (RerankError, ImportError) as exc:
        raise fail(str(exc)) from exc
    payload = {
        "dataset": data.summary(),
        "first_stage": first_stage,
        "depth": depth,
        "cpu_count": os.cpu_count(),
        "results": [r.to_dict() for r in results],
    }
    if output is not None:
        output.parent.mkdir(parents=True, exist_ok=True)
        output.write_text(json.dumps(payload, indent=2, default=str), encoding="utf-8")
    if output_format == "json":
        typer.echo(json.dumps(payload, indent=2, default=str))
    else:
        typer.echo(f"**{data.summary()}**, {first_stage} top-{depth}, {os.cpu_count()} CPUs\n")
        typer.echo(bench_table(results))
        typer.echo(
            "\ntracemalloc sees Python allocations only (not torch/native buffers); peak RSS is the process high-water"
            " mark; latency is one rerank() call per query after warm-up."
        )


def register(app: typer.Typer) -> None:
    app.command("bench")(bench_command)
