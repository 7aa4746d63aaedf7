"""The composed methods (issue 7) on Cranfield and the FAQ set, beside the first-stage baselines.

Every row goes through the evaluation API (``rerank_plugins.eval``: loaders, first stages, ``rerank_run``,
ir-measures, paired t-test and randomisation test). First stages: BM25 (bm25s Lucene k1=1.5 b=0.75, lowercase,
no stemming), dense (MiniLM, faiss) and their RRF (k=60), each cut at ``--depth``; a reranker reorders the top
``--depth`` of one of them. MiniLM embeddings are computed once per text and shared by the rows
(:class:`SharedEmbeddings`); the cosine, PRF and E2Rank scores are the same as without sharing.

The LLM-based methods (InsertRank, pairwise judges, rating judge) run with the bundled SmolLM2-135M-Instruct on
the first ``--llm-queries`` judged Cranfield queries only (BM25 top ``--llm-depth``), because they are slow on
a CPU; their rows are compared with BM25 and with the plain listwise / FIRST rerankers on the same queries.

    python benchmarks/methods.py                              # both data sets + LLM rows, prints markdown
    python benchmarks/methods.py --llm-queries 0              # embedding-based rows only
    python benchmarks/methods.py --llm-queries 0 --update-docs docs/methods.md       # rewrite the docs' tables
    python benchmarks/methods.py --datasets --update-docs docs/methods.md --block methods-llm \
        --out benchmarks/results/methods_llm.json                                   # LLM rows only
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

MEASURES = ("nDCG@10", "MRR@10", "R@100")
#: the composed pipeline: RRF(BM25, dense) top-100, then text PRF on MiniLM with the query keeping the majority
PIPELINE = "rrf > prf-text (sum, +query x5)"


class SharedEmbeddings:
    """``embed_queries`` / ``embed_documents`` of an EmbeddingReranker, each distinct text embedded once."""

    def __init__(self, inner: Any) -> None:
        self.inner, self.normalize, self.name, self.model = inner, inner.normalize, inner.name, inner.model
        self._q: dict[str, Any] = {}
        self._d: dict[str, Any] = {}

    def _get(self, texts: Sequence[str], memo: dict[str, Any], embed: Callable[[list[str]], Any]) -> Any:
        import numpy as np

        todo = [t for t in dict.fromkeys(texts) if t not in memo]
        if todo:
            memo.update(zip(todo, embed(todo)))
        if not texts:
            return np.zeros((0, self.inner.dimension), dtype=np.float32)
        return np.stack([memo[t] for t in texts])

    def embed_queries(self, texts: Sequence[str]) -> Any:
        return self._get(list(texts), self._q, self.inner.embed_queries)

    def embed_documents(self, texts: Sequence[str]) -> Any:
        return self._get(list(texts), self._d, self.inner.embed_documents)

    def close(self) -> None:
        """The wrapped model belongs to the benchmark."""


def embedding_rows(emb: Any, shared: SharedEmbeddings) -> list[tuple[str, str, Any]]:
    """(label, first stage, reranker) for every embedding-based row."""
    from rerank_plugins.rankers.cascade import CascadeReranker
    from rerank_plugins.rankers.e2rank import E2RankReranker
    from rerank_plugins.rankers.fusion import FusionReranker
    from rerank_plugins.rankers.prf_text import TextPRFReranker
    from rerank_plugins.rankers.prf_vector import VectorPRFReranker

    def text_prf(weight: float) -> Any:
        return TextPRFReranker(emb, aggregation="sum", include_original=True, original_weight=weight)

    return [
        ("MiniLM cosine", "bm25", emb),
        ("rrf(bm25 score, MiniLM)", "bm25", FusionReranker([emb], "rrf", include_first_stage=True)),
        ("borda(bm25 score, MiniLM)", "bm25", FusionReranker([emb], "borda", include_first_stage=True)),
        ("combsum-z(bm25 score, MiniLM)", "bm25",
         FusionReranker([emb], "combsum", normalization="zscore", include_first_stage=True)),
        ("combmnz-minmax(bm25 score, MiniLM)", "bm25",
         FusionReranker([emb], "combmnz", normalization="minmax", include_first_stage=True)),
        ("prf-vector (self, k=3, a=.7 b=.3)", "bm25", VectorPRFReranker(shared)),
        ("prf-vector (input, k=3, a=.7 b=.3)", "bm25", VectorPRFReranker(shared, feedback="input")),
        ("prf-text (borda, k=3)", "bm25", TextPRFReranker(emb)),
        ("e2rank (paper prompt, k=20)", "bm25", E2RankReranker(shared)),
        ("e2rank (query first, k=3, 200 chars)", "bm25",
         E2RankReranker(shared, layout="query_first", num_input_docs=3, max_doc_chars=200)),
        ("cascade(MiniLM@100 > prf-vector@30)", "bm25",
         CascadeReranker([(emb, 100), (VectorPRFReranker(shared), 30)])),
        ("MiniLM cosine", "rrf", emb),
        ("prf-vector (input, k=3, a=.7 b=.3)", "rrf", VectorPRFReranker(shared, feedback="input")),
        ("prf-vector (input, k=3, a=.8 b=.2)", "rrf",
         VectorPRFReranker(shared, feedback="input", alpha=0.8, beta=0.2)),
        ("prf-text (sum, +query x1)", "rrf", text_prf(1.0)),
        ("prf-text (sum, +query x3)", "rrf", text_prf(3.0)),
        ("prf-text (sum, +query x5)", "rrf", text_prf(5.0)),
    ]


def evaluate_dataset(name: str, args: argparse.Namespace, emb: Any, shared: SharedEmbeddings) -> dict[str, Any]:
    from rerank_plugins.eval.datasets import load_dataset
    from rerank_plugins.eval.first_stage import first_stage_run
    from rerank_plugins.eval.metrics import evaluate
    from rerank_plugins.eval.runner import rerank_run

    data = load_dataset(name).head(args.queries)
    judged = data.judged_query_ids
    cache: dict[str, Any] = {}
    runs, rows = {}, []
    for fs in ("bm25", "dense", "rrf"):
        t0 = time.perf_counter()
        runs[fs] = first_stage_run(data, fs, args.depth, embedder=shared, cache=cache)
        rows.append({"system": fs, "first_stage": fs, "seconds": time.perf_counter() - t0,
                     "metrics": evaluate(runs[fs], data.qrels, MEASURES, queries=judged)})
    for label, fs, reranker in embedding_rows(emb, shared):
        reranked, seconds, _ = rerank_run(reranker, data, runs[fs], depth=args.depth, queries_per_batch=len(judged))
        metrics = evaluate(reranked, data.qrels, MEASURES, queries=judged)
        rows.append({"system": f"{fs} > {label}", "first_stage": fs, "seconds": seconds, "metrics": metrics})
        print(f"  {name}: {fs} > {label}: nDCG@10 {metrics['nDCG@10']:.4f} ({seconds:.0f}s)", file=sys.stderr)
    return {"dataset": data.summary(), "depth": args.depth, "rows": rows, "pipeline": PIPELINE}


def llm_rows(args: argparse.Namespace, emb: Any) -> dict[str, Any]:
    from rerank_plugins.backends.loader import load_llm_backend
    from rerank_plugins.eval.datasets import load_cranfield
    from rerank_plugins.eval.first_stage import bm25_run
    from rerank_plugins.eval.metrics import evaluate
    from rerank_plugins.eval.runner import rerank_run
    from rerank_plugins.rankers.cascade import CascadeReranker
    from rerank_plugins.rankers.insertrank import InsertRankReranker
    from rerank_plugins.rankers.listwise import ListwiseReranker
    from rerank_plugins.rankers.pairwise import PairwiseReranker, RatingJudgeReranker

    data = load_cranfield().head(args.llm_queries)
    judged = data.judged_query_ids
    run = bm25_run(data, k=args.llm_depth)
    backend = load_llm_backend("smollm2-135m", device="cpu")
    words = {"max_passage_words": args.llm_words}
    lw = {"window_size": args.llm_depth, "stride": max(1, args.llm_depth // 2), "fallback": "keep", **words}
    rerankers = [
        ("listwise generate (rankzephyr)", ListwiseReranker(backend, **lw)),
        ("insertrank generate (raw BM25)", InsertRankReranker(backend, **lw)),
        ("FIRST", ListwiseReranker(backend, mode="first", **lw)),
        ("insertrank FIRST (raw BM25)", InsertRankReranker(backend, mode="first", **lw)),
        ("insertrank FIRST (percent)", InsertRankReranker(backend, mode="first", score_scale="percent", **lw)),
        ("pairwise prp heap top-5", PairwiseReranker(backend, method="heap", top_k_settle=5, **words)),
        ("pairwise judge heap top-5", PairwiseReranker(backend, method="heap", top_k_settle=5,
                                                       prompt="pairwise-judge", **words)),
        ("rating judge (0..10)", RatingJudgeReranker(backend, **words)),
        ("cascade(MiniLM@20 > pairwise prp all pairs@8)",
         CascadeReranker([(emb, None), (PairwiseReranker(backend, **words), 8)])),
    ]
    base = evaluate(run, data.qrels, MEASURES, queries=judged)
    first = f"bm25@{args.llm_depth}"
    rows: list[dict[str, Any]] = [{"system": first, "first_stage": first, "seconds": 0.0, "metrics": base}]
    for label, reranker in rerankers:
        reranked, seconds, _ = rerank_run(reranker, data, run, depth=args.llm_depth, queries_per_batch=len(judged))
        metrics = evaluate(reranked, data.qrels, MEASURES, queries=judged)
        rows.append({"system": f"bm25 > {label}", "first_stage": first, "seconds": seconds, "metrics": metrics})
        print(f"  llm: {label}: nDCG@10 {metrics['nDCG@10']:.4f} ({seconds:.0f}s)", file=sys.stderr)
    return {"dataset": data.summary(), "depth": args.llm_depth, "rows": rows}


# ---------------------------------------------------------------------------------------------- output
def _metrics(r: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    """(aggregate, per-query nDCG@10) of a row, whether it holds an EvalResult or its JSON form."""
    m = r["metrics"]
    if isinstance(m, dict):
        return m["aggregate"], m["per_query"]["nDCG@10"]
    return m.aggregate, m.per_query["nDCG@10"]


def _first_stage(r: dict[str, Any], rows: list[dict[str, Any]]) -> str:
    return str(r.get("first_stage") or rows[0]["system"])


def comparisons(result: dict[str, Any]) -> dict[str, Any]:
    """Each reranked row against its own first stage, Holm-corrected over the rows reranking that first stage
    (PyTerrier's ``Experiment(baseline=..., correction="holm")`` per first stage); the pipeline against RRF
    within that family, and against its best part (a single comparison)."""
    from rerank_plugins.eval.compare import compare_to

    rows = result["rows"]
    per_query = {r["system"]: _metrics(r)[1] for r in rows}
    if len(next(iter(per_query.values()))) < 2:
        return {"rows": {}}
    by_row: dict[str, Any] = {}
    for fs in dict.fromkeys(_first_stage(r, rows) for r in rows):
        family = [r["system"] for r in rows if _first_stage(r, rows) == fs and r["system"] != fs]
        if family:
            by_row.update({c.b: c for c in compare_to(fs, per_query, measure="nDCG@10", rows=family)})
    out: dict[str, Any] = {"rows": by_row}
    pipeline = result.get("pipeline", PIPELINE if PIPELINE in per_query else None)
    if pipeline in per_query:
        parts = [p for p in ("bm25", "dense", "rrf", "rrf > MiniLM cosine", "bm25 > MiniLM cosine") if p in per_query]
        best = max(parts, key=lambda p: _metrics(next(r for r in rows if r["system"] == p))[0]["nDCG@10"])
        out["pipeline"] = pipeline
        out["vs_rrf"] = by_row[pipeline]
        out["best_part"] = best
        out["vs_best_part"] = compare_to(best, per_query, measure="nDCG@10", rows=[pipeline])[0]
    return out


def _row(r: dict[str, Any], n: int, comp: Any) -> str:
    aggregate, _ = _metrics(r)
    p = "" if comp is None else (
        f"{comp.test.diff:+.4f} (t p={comp.t_pvalue:.2g}, perm p={comp.permutation_pvalue:.2g})"
    )
    ms = 1000.0 * r["seconds"] / max(1, n)
    return f"| {r['system']} | " + " | ".join(f"{aggregate[k]:.4f}" for k in MEASURES) + f" | {p} | {ms:.1f} |"


def table(result: dict[str, Any]) -> str:
    rows = result["rows"]
    n = len(_metrics(rows[0])[1])
    comp = comparisons(result)
    head = ("| system | " + " | ".join(MEASURES)
            + " | Δ nDCG@10 vs its first stage (Holm over the rows on that first stage) | ms/query |")
    lines = [f"**{result['dataset']}** (depth {result['depth']})", "", head, "|---|" + "---:|" * (len(MEASURES) + 2)]
    lines += [_row(r, n, comp["rows"].get(r["system"])) for r in rows]
    if "pipeline" in comp:
        a, b = comp["vs_rrf"], comp["vs_best_part"]
        lines += [
            "",
            f"Pipeline `{comp['pipeline']}`: {a.test.mean_b:.4f} vs RRF(BM25, dense) {a.test.mean_a:.4f}: "
            f"{a.test.diff:+.4f} (paired t p={a.test.t_pvalue:.3g}, randomisation p={a.test.permutation_pvalue:.3g} "
            f"uncorrected; Holm over the {a.family_size} rows reranking RRF: t p={a.t_pvalue:.3g}, randomisation "
            f"p={a.permutation_pvalue:.3g}; {a.test.n} queries); vs its best part `{comp['best_part']}` "
            f"{b.test.mean_a:.4f}: {b.test.diff:+.4f} (t p={b.t_pvalue:.3g}, "
            f"randomisation p={b.permutation_pvalue:.3g}).",
        ]
    return "\n".join(lines)


def _jsonable(result: dict[str, Any]) -> dict[str, Any]:
    def conv(v: Any) -> Any:
        if hasattr(v, "aggregate"):
            return {"aggregate": v.aggregate, "n_queries": v.n_queries, "per_query": v.per_query}
        if hasattr(v, "t_pvalue"):
            return dict(v.__dict__)
        if isinstance(v, dict):
            return {k: conv(x) for k, x in v.items()}
        if isinstance(v, list):
            return [conv(x) for x in v]
        return v

    return conv(result)  # type: ignore[no-any-return]


def update_docs(path: str, block: str, text: str) -> None:
    start, end = f"<!-- {block}:start -->", f"<!-- {block}:end -->"
    doc = Path(path)
    body = doc.read_text(encoding="utf-8")
    if start not in body or end not in body:
        raise SystemExit(f"{doc} has no {start} ... {end} block")
    head, rest = body.split(start, 1)
    _, tail = rest.split(end, 1)
    doc.write_text(f"{head}{start}\n{text}\n{end}{tail}", encoding="utf-8")


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--datasets", nargs="*", default=["cranfield", "faq"])
    p.add_argument("--depth", type=int, default=100)
    p.add_argument("--queries", type=int, default=None, help="only the first N judged queries (default: all)")
    p.add_argument("--llm-queries", type=int, default=5, help="Cranfield queries for the LLM rows (0: none)")
    p.add_argument("--llm-depth", type=int, default=20)
    p.add_argument("--llm-words", type=int, default=100, help="passages cut to this many words in LLM prompts")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")
    p.add_argument("--update-docs", default=None, help="rewrite a table block of this markdown file")
    p.add_argument("--block", default="methods-table", help="the block: <!-- BLOCK:start --> ... <!-- BLOCK:end -->")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "methods.json"))
    p.add_argument("--from-json", default=None, help="render the tables of a saved --out file (no evaluation)")
    args = p.parse_args(argv)
    if args.from_json:
        import json

        saved = json.loads(Path(args.from_json).read_text(encoding="utf-8"))
        text = "\n\n".join(table(r) for r in saved["results"])
        print(text)
        if args.update_docs:
            update_docs(args.update_docs, args.block, text)
        return 0

    import torch

    from rerank_plugins.rankers.embedding import EmbeddingReranker

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*(were cut to fit|exceed the model's max_seq_length).*")
    emb = EmbeddingReranker("minilm", batch_size=64)
    shared = SharedEmbeddings(emb)
    results = [evaluate_dataset(name, args, emb, shared) for name in args.datasets]
    llm = llm_rows(args, emb) if args.llm_queries > 0 else None
    blocks = [table(r) for r in results]
    if llm is not None:
        blocks.append(f"LLM rows: bundled SmolLM2-135M-Instruct (transformers, CPU fp32), first {args.llm_queries} "
                      f"judged Cranfield queries only, passages cut to {args.llm_words} words.\n\n" + table(llm))
    text = "\n\n".join(blocks)
    print(text)
    record = {
        "benchmark": "methods", "config": vars(args), "platform": platform.platform(),
        "python": sys.version.split()[0], "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "results": [_jsonable(r) for r in results], "llm": None if llm is None else _jsonable(llm),
    }
    save_results(args.out, record, indent=1)
    if args.update_docs:
        update_docs(args.update_docs, args.block, text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
