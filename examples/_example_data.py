"""Shared by the framework examples: command-line options, the evaluation data, and before/after printing.

Not a library module: each example script puts this folder on ``sys.path`` (Python does that for a script).
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@dataclass(frozen=True)
class ExampleQuery:
    id: str
    text: str
    relevant: frozenset[str]


@dataclass(frozen=True)
class ExampleData:
    name: str
    documents: list[tuple[str, str]]  # (doc id, text)
    queries: list[ExampleQuery]


def parser(
    description: str, *, model: str, kind: str | None, options: str = "{}", candidates: int = 10
) -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=description)
    p.add_argument("--dataset", choices=["faq", "cranfield"], default="faq",
                   help="the Zaragoza construction FAQ package (default) or Cranfield (../shared/data/cranfield, "
                        "or the folder in $RERANK_PLUGINS_CRANFIELD)")
    p.add_argument("--queries", type=int, default=3, help="number of (judged) queries to run")
    p.add_argument("--candidates", type=int, default=candidates, help="documents the first stage retrieves per query")
    p.add_argument("--top-n", type=int, default=3, help="documents kept after reranking")
    p.add_argument("--model", default=model, help="reranker model or strategy name, path or hub id")
    p.add_argument("--kind", default=kind, help="reranker strategy kind (None: from the model or registry)")
    p.add_argument("--options", default=options, help="JSON object of reranker options for load_reranker")
    return p


def reranker_options(args: argparse.Namespace) -> dict[str, object]:
    options = json.loads(args.options)
    if not isinstance(options, dict):
        raise SystemExit(f"--options must be a JSON object, got {args.options!r}")
    return options


def load_data(dataset: str, n_queries: int) -> ExampleData:
    from rerank_plugins.eval.datasets import load_cranfield, load_faq

    ds = load_faq() if dataset == "faq" else load_cranfield()
    docs = [(doc_id, ds.document_text(doc_id)) for doc_id in ds.corpus]
    queries = [
        ExampleQuery(qid, ds.queries[qid], frozenset(d for d, g in ds.qrels[qid].items() if g > 0))
        for qid in ds.judged_query_ids[:n_queries]
    ]
    print(f"data: {ds.summary()}; running {len(queries)} queries")
    return ExampleData(ds.name, docs, queries)


def first_relevant(ids: Sequence[str], relevant: frozenset[str]) -> int | None:
    """1-based rank of the first relevant document, or None."""
    return next((i for i, d in enumerate(ids, start=1) if d in relevant), None)


def show(title: str, rows: Sequence[tuple[str, float | None, str]], relevant: frozenset[str], n: int) -> None:
    """Print the top ``n`` (id, score, text) rows; relevant documents are marked with ``*``."""
    print(f"  {title}:")
    for rank, (doc_id, score, text) in enumerate(rows[:n], start=1):
        mark = "*" if doc_id in relevant else " "
        shown = "      -" if score is None else f"{score:7.3f}"
        flat = " ".join(text.split())
        print(f"   {mark}{rank:>2}. {shown}  [{doc_id}] {flat[:88]}{'...' if len(flat) > 88 else ''}")


class Tally:
    """MRR@n (reciprocal rank of the first relevant document in the top ``n``) before and after reranking."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.before: list[float] = []
        self.after: list[float] = []

    def add(self, before_ids: Sequence[str], after_ids: Sequence[str], relevant: frozenset[str]) -> None:
        b, a = first_relevant(before_ids, relevant), first_relevant(after_ids, relevant)
        print(f"  first relevant document: rank {b} before, rank {a} after reranking (None: not retrieved/kept)")
        self.before.append(0.0 if b is None or b > self.n else 1.0 / b)
        self.after.append(0.0 if a is None or a > self.n else 1.0 / a)

    def report(self) -> None:
        count = len(self.before)
        if count:
            print(f"\nMRR@{self.n} over {count} queries: first stage {sum(self.before) / count:.3f}, "
                  f"after reranking {sum(self.after) / count:.3f}")
