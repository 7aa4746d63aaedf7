"""``rerank-plugins demo``: BM25 top-100, reranked by the bundled MiniLM, before/after and nDCG@10. No set-up needed.

Default data: the ``zaragoza-construction-faq`` package (503 English questions; each question's own answer is its
one relevant document). ``--dataset cranfield`` uses the Cranfield collection next to the repository, or give a
BEIR / Cranfield folder.
"""

from __future__ import annotations

import sys
import time
from typing import Annotated, Any

import typer

from ._eval_common import fail, load_data, offline_env

__all__ = ["demo_command", "register"]


def _is_terminal(stream: Any) -> bool:
    isatty = getattr(stream, "isatty", None)
    return bool(isatty is not None and isatty())


def _shown_queries(judged: list[str], n: int) -> list[str]:
    """``n`` queries spread evenly over the data set (deterministic, not picked for a good result)."""
    if n >= len(judged):
        return list(judged)
    if n == 1:
        return [judged[0]]
    return [judged[round(i * (len(judged) - 1) / (n - 1))] for i in range(n)]


def _snippet(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text if len(text) <= width else text[: width - 1] + "…"


def _print_list(title: str, ranked: list[tuple[str, float]], dataset: Any, qid: str, top: int, width: int) -> None:
    typer.echo(f"  {title}")
    judged = dataset.qrels.get(qid, {})
    id_width = max((len(d) for d, _ in ranked[:top]), default=0)
    for rank, (doc_id, score) in enumerate(ranked[:top], 1):
        gain = judged.get(doc_id, 0)
        mark = f"*{gain}" if gain > 0 else "  "
        text = _snippet(dataset.document_text(doc_id), width)
        typer.echo(f"   {mark} {rank:>2}. {score:7.3f}  {doc_id:<{id_width}}  {text}")


def _rank_of_relevant(ranked: list[tuple[str, float]], judged: dict[str, int]) -> str:
    ranks = [i for i, (d, _) in enumerate(ranked, 1) if judged.get(d, 0) > 0]
    return f"first relevant at rank {ranks[0]}" if ranks else "no relevant document retrieved"


def demo_command(
    dataset: Annotated[str, typer.Option(help="faq (default), cranfield, or a BEIR / Cranfield folder")] = "faq",
    queries: Annotated[int, typer.Option(min=1, help="how many queries to show before/after")] = 3,
    depth: Annotated[int, typer.Option(min=1, help="BM25 candidates reranked per query")] = 100,
    model: Annotated[str, typer.Option(help="reranker name or path for load_reranker")] = "minilm",
    top: Annotated[int, typer.Option(min=1, help="results shown per list")] = 5,
    width: Annotated[int, typer.Option(min=20, help="characters of each document shown")] = 90,
    progress: Annotated[
        bool | None,
        typer.Option("--progress/--no-progress", help="progress bars (default: only when stderr is a terminal)"),
    ] = None,
) -> None:
    """Rerank BM25 results with the bundled MiniLM and show what changes, with nDCG@10 over all queries."""
    # bars are for a person watching: `make demo > demo.log 2>&1` gets the results, not thousands of bar redraws
    bars = progress if progress is not None else _is_terminal(sys.stderr)
    offline_env(quiet=not bars)
    from ..errors import RerankError
    from ..eval.first_stage import bm25_run
    from ..eval.metrics import evaluate, paired_test
    from ..eval.runner import rerank_run
    from ..models import load_reranker

    data = load_data(dataset, None)
    judged = data.judged_query_ids
    typer.echo(f"data: {data.summary()}")
    try:
        t0 = time.perf_counter()
        before = bm25_run(data, depth, progress=bars)
        t_bm25 = time.perf_counter() - t0
        t0 = time.perf_counter()
        reranker = load_reranker(model)
        t_load = time.perf_counter() - t0
        with reranker:
            after, t_rerank, rep = rerank_run(
                reranker, data, before, depth=depth, progress=bars, queries_per_batch=256
            )
        m_before = evaluate(before, data.qrels, ("nDCG@10",), queries=judged)
        m_after = evaluate(after, data.qrels, ("nDCG@10",), queries=judged)
    except (RerankError, ImportError) as exc:
        raise fail(str(exc)) from exc
    label = getattr(reranker, "name", model)
    typer.echo(f"BM25 (bm25s, Lucene k1=1.5 b=0.75) top-{depth}, then {label}.  * = judged relevant (gain)\n")
    for qid in _shown_queries(judged, queries):
        typer.echo(f"query {qid}: {data.queries[qid]}")
        _print_list(f"BM25 ({_rank_of_relevant(before[qid], data.qrels[qid])})", before[qid], data, qid, top, width)
        _print_list(
            f"BM25 > {label} ({_rank_of_relevant(after[qid], data.qrels[qid])})", after[qid], data, qid, top, width
        )
        typer.echo("")
    sig = paired_test(m_before.per_query["nDCG@10"], m_after.per_query["nDCG@10"])
    typer.echo(f"nDCG@10 over all {len(judged)} judged queries of {data.name}:")
    typer.echo(f"  BM25 top-{depth}            {m_before['nDCG@10']:.4f}   ({t_bm25:.1f} s)")
    typer.echo(
        f"  BM25 top-{depth} > {label:<10} {m_after['nDCG@10']:.4f}   "
        f"(rerank {t_rerank:.1f} s, model load {t_load:.1f} s)"
    )
    typer.echo(f"  paired t-test p = {sig.t_pvalue:.2g}, randomisation test p = {sig.permutation_pvalue:.2g}")
    if rep.problems:
        typer.echo(f"  data problems while reranking: {rep.summary()}")


def register(app: typer.Typer) -> None:
    app.command("demo")(demo_command)
