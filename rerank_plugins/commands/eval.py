"""``rerank-plugins eval``: first stages and rerankers on a test collection, one table, TREC runs and a JSON."""

from __future__ import annotations

import json
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Annotated, Any

import typer

from ._eval_common import (
    fail,
    load_data,
    load_rerankers,
    offline_env,
    parse_options,
    reranker_labels,
    select_queries,
)

__all__ = ["eval_command", "register"]

_ALL_BASELINES = ("bm25", "dense", "rrf")


def _kind_help() -> str:
    from ..models import strategies

    return (
        "strategy kind, one for all rerankers or one per --reranker (default: detected from the model); one of: "
        + ", ".join(sorted(strategies()))
        + ". Examples: --reranker minilm --kind embedding; --reranker smollm2-135m --kind listwise"
    )


def eval_command(
    dataset: Annotated[str, typer.Option(help="cranfield, faq, faq-sv, or a BEIR / Cranfield folder")] = "cranfield",
    split: Annotated[
        str | None, typer.Option(help="BEIR qrels split (qrels/SPLIT.tsv; default test, or the only one)")
    ] = None,
    first_stage: Annotated[
        str, typer.Option(help="bm25, dense, rrf (fusion: old name), or a TREC run file to rerank instead")
    ] = "bm25",
    depth: Annotated[int, typer.Option(min=1, help="candidates per query taken from the first stage")] = 100,
    reranker: Annotated[list[str] | None, typer.Option(help="reranker name/path (repeatable)")] = None,
    kind: Annotated[list[str] | None, typer.Option(help=_kind_help())] = None,
    option: Annotated[
        list[str] | None,
        typer.Option("--option", "-o", help="reranker option key=value, or LABEL:key=value for one reranker"),
    ] = None,
    baseline: Annotated[
        list[str] | None,
        typer.Option(help="first stages shown as baselines (repeatable; default bm25, dense and rrf)"),
    ] = None,
    queries: Annotated[int | None, typer.Option(min=1, help="only the first N judged queries")] = None,
    measure: Annotated[
        list[str] | None, typer.Option(help="ir-measures names (default nDCG@10 MRR@10 Recall@100)")
    ] = None,
    output_dir: Annotated[Path, typer.Option(help="where TREC runs and the JSON go")] = Path("runs"),
    output_format: Annotated[str, typer.Option("--format", help="markdown or json")] = "markdown",
    batch_queries: Annotated[
        int, typer.Option(min=1, help="queries per rerank_batch call (fewer: finer progress, less sharing)")
    ] = 256,
    compare_to: Annotated[
        str | None,
        typer.Option(help="row every other row is compared with (a name from the table; default: the first stage)"),
    ] = None,
    correction: Annotated[
        str | None,
        typer.Option(help="multiple-comparison correction: holm, bonferroni or none (default holm when 2+ rows)"),
    ] = None,
    pairwise: Annotated[
        list[str] | None,
        typer.Option(help="row for the pairwise table (repeat, 2+): every pair compared, corrected over the pairs"),
    ] = None,
    bm25_k1: Annotated[float, typer.Option(min=0.0, help="BM25 k1 (bm25s, Lucene variant)")] = 1.5,
    bm25_b: Annotated[float, typer.Option(min=0.0, max=1.0, help="BM25 b")] = 0.75,
    bm25_stemmer: Annotated[
        str | None, typer.Option(help="Snowball stemmer language for BM25, e.g. english (default: none)")
    ] = None,
    bm25_stopwords: Annotated[
        str | None, typer.Option(help="stopword list removed before BM25: english (default: none)")
    ] = None,
    dense_model: Annotated[
        str, typer.Option(help="embedding model of the dense first stage (name or path)")
    ] = "minilm",
    rrf_k: Annotated[int, typer.Option(min=0, help="k of reciprocal-rank fusion: 1 / (k + rank)")] = 60,
    no_cache: Annotated[
        bool,
        typer.Option(
            "--no-cache",
            help="recompute first stages and document embeddings (default: read them from the cache, "
            "$RERANK_PLUGINS_CACHE/eval, when the same collection and settings were run before)",
        ),
    ] = False,
    strict: Annotated[
        bool,
        typer.Option(help="stop at the first data problem (data set or run file) instead of counting it; exit 2"),
    ] = False,
    no_progress: Annotated[bool, typer.Option("--no-progress", help="no progress bars")] = False,
) -> None:
    """Evaluate first stages and rerankers (nDCG@10, MRR@10, Recall@100, time) on a data set."""
    offline_env(quiet=no_progress)
    if output_format not in ("markdown", "json"):
        raise fail(f"--format must be markdown or json, got {output_format!r}")
    from ..errors import RerankError
    from ..eval.cache import RunCache
    from ..eval.first_stage import FIRST_STAGE_ALIASES, FIRST_STAGES, FirstStageSettings
    from ..eval.metrics import DEFAULT_MEASURES, parse_measure
    from ..eval.runner import check_comparisons, planned_rows, run_eval
    from ..eval.trec import read_trec_run

    def canonical(name: str) -> str:
        if name in FIRST_STAGE_ALIASES:
            typer.secho(
                f"warning: {name!r} is now called {FIRST_STAGE_ALIASES[name]!r}; {name!r} will be removed",
                err=True,
                fg=typer.colors.YELLOW,
            )
            return FIRST_STAGE_ALIASES[name]
        return name

    first_stage = canonical(first_stage)
    measures = tuple(measure) if measure else DEFAULT_MEASURES
    try:
        for m in measures:
            parse_measure(m)
        settings = FirstStageSettings(
            k1=bm25_k1, b=bm25_b, stemmer=bm25_stemmer, stopwords=bm25_stopwords, dense_model=dense_model, rrf_k=rrf_k
        )
        settings.bm25_options()  # an unknown stemmer language fails here, before any data is read
    except RerankError as exc:
        raise fail(str(exc)) from exc
    full = load_data(dataset, None, strict=strict, split=split)
    data = select_queries(full, queries)
    given = None
    file_report = given_report = None
    if first_stage not in FIRST_STAGES:
        path = Path(first_stage)
        if not path.is_file():
            raise fail(f"--first-stage must be one of {FIRST_STAGES} or an existing TREC run file, got {first_stage!r}")
        # read and checked against the whole data set before any retrieval or model load: under --strict a bad
        # line, an unknown query or document id, or a judged query missing from the file stops here
        try:
            run, file_report = read_trec_run(path, strict=strict)
            given_report = full.check_run(run, strict=strict, source=path.stem, expected=data.judged_query_ids)
        except RerankError as exc:
            raise fail(str(exc)) from exc
        for rep in (file_report, given_report):
            if rep.problems:
                typer.secho(f"run: {rep.summary()}", err=True, fg=typer.colors.YELLOW)
        not_selected = sum(1 for q in run if q in full.queries and q not in data.queries)
        given_report.count("run_queries_not_selected", not_selected)  # --queries left them out: not a problem
        given = (path.stem, run)
    baselines = [canonical(b) for b in baseline] if baseline else list(_ALL_BASELINES)
    unknown = [b for b in baselines if b not in FIRST_STAGES]
    if unknown:
        raise fail(f"unknown --baseline {unknown}; choose from {FIRST_STAGES}")
    labels = [label for label, _, _ in reranker_labels(reranker or [], kind)]
    rows = planned_rows(baselines, given[0] if given is not None else first_stage, labels)
    try:
        check_comparisons(rows, compare_to, pairwise or (), correction)
    except RerankError as exc:
        raise fail(str(exc)) from exc
    built: list[dict[str, Any]] = []
    rerankers = load_rerankers(reranker or [], kind, parse_options(option), built=built)
    try:
        report = run_eval(
            data,
            first_stage=first_stage if given is None else "bm25",
            baselines=baselines,
            rerankers=rerankers,
            depth=depth,
            measures=measures,
            given_run=given,
            progress=not no_progress,
            queries_per_batch=batch_queries,
            strict=strict,
            given_run_report=given_report,
            compare_to=compare_to,
            correction=correction,
            pairwise=pairwise or (),
            settings=settings,
            disk_cache=None if no_cache else RunCache(),
        )
    except (RerankError, ImportError) as exc:
        raise fail(str(exc)) from exc
    finally:
        for _, r in rerankers:
            r.close()
    if given is not None and file_report is not None:
        report.run_reports[f"{given[0]} (file)"] = file_report
    from ..eval.provenance import provenance

    report.provenance = provenance(
        argv=["rerank-plugins", *sys.argv[1:]] if sys.argv else None,
        rerankers=built,
        extra={
            "dataset": {
                "spec": dataset,
                **{k: v for k, v in data.metadata.items() if k == "split"},
                "path": str(Path(data.metadata["path"]).resolve()) if "path" in data.metadata else None,
                "content_sha256": full.content_hash(),
                "corpus_sha256": full.content_hash("corpus"),
            },
            "first_stage": first_stage,
            "first_stage_settings": asdict(settings),
            "cache": None if no_cache else str(RunCache().root),
            "queries": queries,
            "strict": strict,
        },
    )
    json_path = report.write(output_dir)
    if output_format == "json":
        typer.echo(json.dumps(report.to_dict(per_query=False), indent=2, default=str))
    else:
        typer.echo(report.to_markdown())
        typer.echo(f"\nruns and JSON written to {output_dir}/ ({json_path.name})")


def register(app: typer.Typer) -> None:
    app.command("eval")(eval_command)
