"""Long documents: truncate against chunk-and-aggregate on a Cranfield needle collection (issue 20).

Collection: the first ``--queries`` judged Cranfield queries (``--all`` for all 225). Each query's candidates are
its BM25 top ``--candidates`` (bm25s, Lucene k1=1.5 b=0.75, lowercase) plus every document judged relevant to it
(gain > 0), so every relevant document is there to be found. The padded collection places each candidate after
at least ``--pad-tokens`` (600) MiniLM WordPiece tokens of unrelated Cranfield text (whole abstracts drawn with a
fixed seed from those neither judged for the query nor among its candidates), every candidate alike, so length
says nothing about relevance; the unpadded collection is the same candidates as they are.

Models: the bundled ``minilm`` (all-MiniLM-L6-v2, sentence-transformers, ``max_seq_length`` 256) as an embedding
reranker; and a cross-encoder built from the same MiniLM weights with a seeded random one-logit head (no trained
cross-encoder weights exist offline; benchmarks/pointwise.py builds the same one), ``max_length`` 512. Its nDCG
says nothing about cross-encoder quality (its scores are noise), only that the mechanics run; its cost columns are
real.

Rows: ``unpadded`` (baseline, truncate, as the reference cuts), then on the padded collection ``truncate`` and
``chunk`` with ``max`` (MaxP), ``first`` and ``mean`` (default ``max_chunks`` 10, ``chunk_overlap`` 32). Columns:
nDCG@10 (ir-measures), its difference to the unpadded baseline, model inputs run (texts embedded / pairs scored,
after dedupe), wall time and its ratio to ``truncate`` on the same model. Every system reranks all queries in one
``rerank_batch`` call. The three chunk rows read the same windows, so ``first`` and ``mean`` reuse the window
scores ``max`` computed where the reranker's cache allows it (a shared score cache; their cost is then ``max``'s)
unless ``--cold``.

    python benchmarks/long_documents.py [--queries 10 | --all] [--candidates 10] [--ce-queries 5]
        [--pad-tokens 600] [--no-cross-encoder] [--cold] [--json results.json]
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import save_results
from pointwise import build_model

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

COLUMNS = ("model", "documents", "long_documents", "nDCG@10", "Δ vs unpadded", "model inputs", "time (s)",
           "time / truncate")
MODES: tuple[tuple[str, str, dict[str, Any]], ...] = (
    ("unpadded", "truncate", {}),
    ("padded", "truncate", {}),
    ("padded", "chunk max", {"long_documents": "chunk", "chunk_aggregate": "max"}),
    ("padded", "chunk first", {"long_documents": "chunk", "chunk_aggregate": "first"}),
    ("padded", "chunk mean", {"long_documents": "chunk", "chunk_aggregate": "mean"}),
)

Candidates = dict[str, list[tuple[str, str]]]  # qid -> [(doc id, text)]


# ---------------------------------------------------------------------------------------------- collection
def candidate_ids(qrels: dict[str, dict[str, int]], run: dict[str, list[tuple[str, float]]],
                  qids: Sequence[str]) -> dict[str, list[str]]:
    """Per query: its BM25 candidates, then the relevant documents BM25 missed."""
    out = {}
    for q in qids:
        ids = [d for d, _ in run.get(q, [])]
        ids += [d for d, g in qrels[q].items() if g > 0 and d not in ids]
        out[q] = ids
    return out


def needle_collection(
    corpus_text: dict[str, str],
    qrels: dict[str, dict[str, int]],
    candidates: dict[str, list[str]],
    count_tokens: Callable[[str], int],
    pad_tokens: int,
    seed: int = 0,
) -> tuple[Candidates, Candidates]:
    """``(unpadded, padded)``: every candidate as it is, and placed after at least ``pad_tokens`` tokens of whole
    unrelated documents (neither judged for the query nor among its candidates), drawn with ``seed``."""
    ids = sorted(corpus_text)
    unpadded: Candidates = {}
    padded: Candidates = {}
    for q, cands in candidates.items():
        banned = set(qrels.get(q, {})) | set(cands)
        pool = [d for d in ids if d not in banned and corpus_text[d].strip()]
        rng = random.Random(f"{seed}|{q}")
        unpadded[q] = [(d, corpus_text[d]) for d in cands]
        padded[q] = []
        for d in cands:
            filler: list[str] = []
            used = 0
            while used < pad_tokens:
                text = corpus_text[rng.choice(pool)]
                filler.append(text)
                used += count_tokens(text)
            padded[q].append((d, " ".join(filler) + " " + corpus_text[d]))
    return unpadded, padded


# ---------------------------------------------------------------------------------------------- running
def run_system(reranker: Any, queries: dict[str, str], collection: Candidates) -> tuple[dict[str, Any], int, float]:
    """``(run, model inputs, seconds)`` of one reranker over every query, in one ``rerank_batch`` call."""
    qids = list(collection)
    texts = [[t for _, t in collection[q]] for q in qids]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncation warnings are the point of the padded rows
        start = time.perf_counter()
        results = reranker.rerank_batch([queries[q] for q in qids], texts)
        seconds = time.perf_counter() - start
    run = {}
    for q, result in zip(qids, results):
        ids = [d for d, _ in collection[q]]
        run[q] = [(ids[int(r.id)], float(r.score)) for r in result.results]
    details = results[0].details if results else {}
    inputs = details.get("rows_scored", details.get("rows", 0))
    return run, int(inputs), seconds


def report(rows: list[dict[str, Any]]) -> None:
    """Print the markdown table (one header cell per row cell)."""
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "|".join("---" for _ in COLUMNS) + "|")
    for row in rows:
        cells = [row["model"], row["documents"], row["mode"], f"{row['ndcg']:.4f}", f"{row['delta']:+.4f}",
                 str(row["inputs"]), f"{row['seconds']:.1f}", f"{row['ratio']:.2f}"]
        print("| " + " | ".join(cells) + " |")


def summarise(model: str, measured: list[tuple[str, str, float, int, float]]) -> list[dict[str, Any]]:
    """Table rows from ``(documents, mode, nDCG, inputs, seconds)``: deltas to ``unpadded``, time ratios to the
    padded ``truncate`` row."""
    base = next(n for docs, mode, n, _, _ in measured if docs == "unpadded")
    trunc = next(s for docs, mode, _, _, s in measured if docs == "padded" and mode == "truncate")
    return [{"model": model, "documents": docs, "mode": mode, "ndcg": n, "delta": n - base, "inputs": inputs,
             "seconds": s, "ratio": s / trunc if trunc > 0 else float("nan")}
            for docs, mode, n, inputs, s in measured]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--queries", type=int, default=10, help="first N judged queries (default 10)")
    parser.add_argument("--all", action="store_true", help="every judged query")
    parser.add_argument("--candidates", type=int, default=10, help="BM25 candidates per query (default 10)")
    parser.add_argument("--ce-queries", type=int, default=5,
                        help="the cross-encoder's rows use the first N of those queries (default 5)")
    parser.add_argument("--cold", action="store_true", help="chunk first/mean score their windows again")
    parser.add_argument("--pad-tokens", type=int, default=600, help="unrelated tokens before each candidate")
    parser.add_argument("--no-cross-encoder", action="store_true", help="the embedding model only")
    parser.add_argument("--cranfield", default=None, help="Cranfield folder (default: found as the loaders do)")
    parser.add_argument("--json", default=None, help="also write the rows to this JSON file")
    args = parser.parse_args(argv)

    from rerank_plugins.engine.cache import ScoreCache
    from rerank_plugins.eval.datasets import load_cranfield
    from rerank_plugins.eval.first_stage import bm25_run
    from rerank_plugins.eval.metrics import evaluate
    from rerank_plugins.rankers.cross_encoder import CrossEncoderReranker
    from rerank_plugins.rankers.embedding import EmbeddingReranker

    data = load_cranfield(args.cranfield)
    data = data.head(None if args.all else args.queries)
    qids = data.judged_query_ids
    run = bm25_run(data, k=args.candidates)
    corpus_text = {d: data.document_text(d) for d in data.corpus}
    embedder = EmbeddingReranker("minilm")
    tok = embedder.model.tokenizer

    def count(text: str) -> int:
        return len(tok(text, add_special_tokens=False, verbose=False)["input_ids"])

    unpadded, padded = needle_collection(corpus_text, data.qrels, candidate_ids(data.qrels, run, qids), count,
                                         args.pad_tokens)
    n_docs = sum(len(v) for v in padded.values())
    mean_tokens = sum(count(t) for v in padded.values() for _, t in v) / n_docs
    print(f"{len(qids)} queries, {n_docs} candidates ({n_docs / len(qids):.1f} per query), padded documents "
          f"{mean_tokens:.0f} MiniLM tokens on average, at least {args.pad_tokens} of them unrelated")

    def measure(label: str, build: Callable[[dict[str, Any]], Any], keep: Sequence[str]) -> list[dict[str, Any]]:
        measured: list[tuple[str, str, float, int, float]] = []
        shared = ScoreCache()
        chunk_cost: tuple[int, float] | None = None
        for docs, mode, options in MODES:
            reuse = options.get("long_documents") == "chunk" and not args.cold
            reranker = build({**options, "cache": shared} if reuse else options)
            collection = unpadded if docs == "unpadded" else padded
            ranked, inputs, seconds = run_system(reranker, data.queries, {q: collection[q] for q in keep})
            if reuse and chunk_cost is not None and inputs == 0:
                inputs, seconds = chunk_cost  # every window came from max's run: the same cost by construction
            elif reuse:
                chunk_cost = (inputs, seconds)
            ndcg = evaluate(ranked, data.qrels, ["nDCG@10"], queries=keep)["nDCG@10"]
            measured.append((docs, mode, ndcg, inputs, seconds))
            print(f"  {label} {docs} {mode}: nDCG@10 {ndcg:.4f}, {inputs} inputs, {seconds:.1f} s", file=sys.stderr)
        return summarise(f"{label}, {len(keep)} queries", measured)

    rows = measure("minilm (embedding)", lambda o: EmbeddingReranker(embedder.model, **o), qids)
    if not args.no_cross_encoder:
        with tempfile.TemporaryDirectory() as tmp:
            folder = build_model(Path(tmp) / "ce")  # benchmarks/pointwise.py's cross-encoder
            ce = CrossEncoderReranker(str(folder))
            rows += measure("MiniLM cross-encoder, random head",
                            lambda o: CrossEncoderReranker(ce.model, tokenizer=ce.tokenizer, **o),
                            qids[: args.ce_queries])
    report(rows)
    if args.json:
        save_results(args.json, {"args": vars(args), "queries": len(qids), "rows": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
