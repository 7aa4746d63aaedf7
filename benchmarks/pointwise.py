"""Pointwise cross-encoder speed and agreement, ours against peers, on the same pairs in the same run.

Pairs: BM25 (bm25s, Lucene k1=1.5 b=0.75, lowercase, no stemming) top-100 of the first ``--queries`` judged
Cranfield queries, thinned evenly to ``--pairs`` pairs (so they span ranks 1..100). Model: the bundled
all-MiniLM-L6-v2 weights loaded as a one-logit ``AutoModelForSequenceClassification`` (seeded random head; the
compute equals a real ms-marco MiniLM-L6 cross-encoder), saved once to a temporary folder that every system
loads. Same ``max_length`` everywhere.

Systems: ours fp32 and our optional fast paths (``--fast``: bf16 = ``dtype="bfloat16"``, onnx, int8, onnx-int8),
sentence-transformers ``CrossEncoder.predict``, AnswerDotAI ``rerankers`` (its raw logits are passed through a
sigmoid before the score comparison), and a bare token-sorted loop. Each system runs ``--repeats`` times,
interleaved in a fresh random order each round, best time kept (the least disturbed run on a shared machine).
CPU seconds are reported too.

Columns: pairs/s, ratio vs sentence-transformers, max |score - ST score|, Kendall tau vs our fp32 scores (over
all pairs, and the mean of the per-query taus: a reranker only orders one query's candidates), padded-token
share (padding positions / positions executed, from each system's own batching), useful GFLOP/s
(per-layer matmul FLOPs on real tokens: QKV/O and FFN projections plus attention scores and context), and its
share of this CPU's matmul ceiling (best of a large fp32 ``torch.matmul``; a bf16 one for the bf16 row).

    python benchmarks/pointwise.py [--pairs 500] [--queries 20] [--max-length 512] [--repeats 2]
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import random
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

import numpy as np

Pairs = list[tuple[str, str]]


# ---------------------------------------------------------------------------------------------- data and model
def cranfield_pairs(n_queries: int, n_pairs: int, cranfield: str | None) -> Pairs:
    from rerank_plugins.eval.datasets import load_cranfield
    from rerank_plugins.eval.first_stage import bm25_run

    data = load_cranfield(cranfield).head(n_queries)
    run = bm25_run(data, k=100)
    all_pairs = [(data.queries[q], data.document_text(d)) for q in data.queries for d, _ in run[q]]
    if n_pairs >= len(all_pairs):
        return all_pairs
    picks = np.linspace(0, len(all_pairs) - 1, n_pairs).round().astype(int)
    return [all_pairs[i] for i in picks]


def build_model(folder: Path) -> Path:
    import torch
    import transformers

    from rerank_plugins.testing.tiny_models import minilm_folder

    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(minilm_folder()), num_labels=1)
    model.save_pretrained(str(folder))
    transformers.AutoTokenizer.from_pretrained(str(minilm_folder())).save_pretrained(str(folder))
    return folder


def matmul_ceiling(size: int = 2048, repeats: int = 7, dtype: Any = None) -> float:
    import torch

    a, b = torch.randn(size, size, dtype=dtype), torch.randn(size, size, dtype=dtype)
    a @ b
    best = math.inf
    for _ in range(repeats):
        t = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t)
    return 2 * size**3 / best / 1e9


# ---------------------------------------------------------------------------------------------- accounting
def useful_flops(lengths: Sequence[int], config: Any) -> float:
    """Matmul FLOPs of an encoder on unpadded sequences (embeddings and layer norms ignored)."""
    h, ffn, layers = config.hidden_size, config.intermediate_size, config.num_hidden_layers
    total = 0.0
    for n in lengths:
        per_layer = 2 * n * 4 * h * h + 2 * n * 2 * h * ffn + 2 * 2 * n * n * h
        total += layers * per_layer + 2 * h * h  # + pooler
    return total


def padding_of(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches)
    return 1 - real / padded


def kendall_tau(a: Sequence[float], b: Sequence[float]) -> float:
    from scipy.stats import kendalltau

    return float(kendalltau(a, b).statistic)


# ---------------------------------------------------------------------------------------------- systems
def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def make_systems(path: Path, pairs: Pairs, max_length: int, fast: Sequence[str], lengths: list[int]) -> dict[str, Any]:
    """name -> (score function, padding share, note)."""
    import torch
    import transformers
    from sentence_transformers import CrossEncoder

    from rerank_plugins.engine.batching import plan_batches
    from rerank_plugins.rankers.cross_encoder import CrossEncoderReranker

    systems: dict[str, Any] = {}
    ours = CrossEncoderReranker(str(path), max_length=max_length, long_documents="truncate")
    ours.score_pairs(pairs[:4])
    ours_pad = padding_of(lengths, plan_batches(lengths, max_batch_size=ours.batch_size, max_tokens=ours.max_tokens))
    systems["ours fp32"] = (lambda: ours.score_pairs(pairs)[0], ours_pad, f"batch<= {ours.batch_size}, "
                            f"<= {ours.max_tokens} padded tokens")
    for mode in fast:
        t = time.perf_counter()
        option = {"dtype": "bfloat16"} if mode == "bf16" else {"quantize": mode}
        try:
            fast_ranker = CrossEncoderReranker(str(path), max_length=max_length, long_documents="truncate", **option)
        except Exception as exc:  # report, do not hide, a path that cannot run here
            systems[f"ours {mode}"] = (None, None, f"unavailable: {type(exc).__name__}: {exc}")
            continue
        setup = time.perf_counter() - t
        fast_ranker.score_pairs(pairs[:4])
        label = ", ".join(f"{k}={v!r}" for k, v in option.items())
        systems[f"ours {mode}"] = (lambda r=fast_ranker: r.score_pairs(pairs)[0], ours_pad,
                                   f"{label}; setup {setup:.1f}s (export/quantisation, cached)")

    st = CrossEncoder(str(path), max_length=max_length, device="cpu")
    st.predict(pairs[:4], show_progress_bar=False)
    char_order = sorted(range(len(pairs)), key=lambda i: -(len(pairs[i][0]) + len(pairs[i][1])))
    st_batches = [char_order[i : i + 32] for i in range(0, len(pairs), 32)]
    systems["sentence-transformers"] = (
        lambda: st.predict(pairs, batch_size=32, show_progress_bar=False).tolist(),
        padding_of(lengths, st_batches),
        "CrossEncoder.predict, batch 32, sorted by characters",
    )

    try:
        from rerankers import Reranker as AnswerDotAI

        rr = AnswerDotAI(str(path), model_type="cross-encoder", device="cpu", dtype=torch.float32, verbose=0)
        groups: dict[str, list[int]] = {}
        for i, (q, _) in enumerate(pairs):
            groups.setdefault(q, []).append(i)

        def run_rerankers() -> list[float]:
            out = [0.0] * len(pairs)
            for q, idx in groups.items():
                res = rr.rank(q, [pairs[i][1] for i in idx], doc_ids=list(range(len(idx))))
                for r in res.results:
                    out[idx[r.document.doc_id]] = float(sigmoid(np.float64(r.score)))
            return out

        rr_batches = [idx[k : k + 16] for idx in groups.values() for k in range(0, len(idx), 16)]
        rr_max = rr.tokenizer.model_max_length
        note = f"rank() per query, batch 16, no sorting, truncation at {rr_max} tokens; sigmoid applied to logits"
        run_rerankers()
        systems["rerankers (AnswerDotAI)"] = (run_rerankers, padding_of(lengths, rr_batches), note)
    except Exception as exc:
        systems["rerankers (AnswerDotAI)"] = (None, None, f"unavailable: {type(exc).__name__}: {exc}")

    tok = transformers.AutoTokenizer.from_pretrained(str(path))
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(path)).eval()

    def bare() -> list[float]:
        enc = tok([q for q, _ in pairs], [d for _, d in pairs], truncation=True, max_length=max_length)
        rows = [{k: enc[k][i] for k in enc} for i in range(len(pairs))]
        order = sorted(range(len(pairs)), key=lambda i: -len(rows[i]["input_ids"]))
        out = [0.0] * len(pairs)
        with torch.inference_mode():
            for k in range(0, len(order), 32):
                idx = order[k : k + 32]
                batch = tok.pad([rows[i] for i in idx], return_tensors="pt")
                scores = torch.sigmoid(model(**batch).logits[:, 0]).tolist()
                for i, s in zip(idx, scores):
                    out[i] = s
        return out

    token_order = sorted(range(len(pairs)), key=lambda i: -lengths[i])
    systems["bare token-sorted loop"] = (bare, padding_of(lengths, [token_order[i : i + 32]
                                                                   for i in range(0, len(pairs), 32)]),
                                         "tokenize once, sort by tokens, batch 32")
    return systems


# ---------------------------------------------------------------------------------------------- main
def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pairs", type=int, default=500)
    ap.add_argument("--queries", type=int, default=20)
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--fast", default="bf16,onnx,int8,onnx-int8",
                    help="comma-separated fast paths: bf16 (dtype), int8, onnx, onnx-int8 ('' for none)")
    ap.add_argument("--cranfield", default=None, help="Cranfield folder (default: the shared copy)")
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "pointwise.json"))
    args = ap.parse_args(argv)
    if args.queries < 20:
        print("note: the issue asks for at least 20 queries", file=sys.stderr)
    warnings.filterwarnings("ignore")
    import torch
    import transformers

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    pairs = cranfield_pairs(args.queries, args.pairs, args.cranfield)
    with tempfile.TemporaryDirectory(prefix="pointwise-bench-") as tmp:
        path = build_model(Path(tmp))
        tok = transformers.AutoTokenizer.from_pretrained(str(path))
        enc = tok([q for q, _ in pairs], [d for _, d in pairs], truncation=True, max_length=args.max_length)
        lengths = [len(x) for x in enc["input_ids"]]
        config = transformers.AutoConfig.from_pretrained(str(path))
        flops = useful_flops(lengths, config)
        ceiling = matmul_ceiling()
        ceiling_bf16 = matmul_ceiling(dtype=torch.bfloat16)
        fast = [m for m in args.fast.split(",") if m]
        systems = make_systems(path, pairs, args.max_length, fast, lengths)
        times: dict[str, float] = {}
        cpu: dict[str, float] = {}
        scores: dict[str, list[float]] = {}
        order = list(systems)
        shuffle = random.Random(0).shuffle
        for _ in range(args.repeats):
            shuffle(order)  # a new order each round, so no system always runs in the same load phase
            for name in order:
                fn = systems[name][0]
                if fn is None:
                    continue
                t, c = time.perf_counter(), time.process_time()
                out = fn()
                dt, dc = time.perf_counter() - t, time.process_time() - c
                times[name] = min(times.get(name, math.inf), dt)
                cpu[name] = min(cpu.get(name, math.inf), dc)
                scores[name] = [float(x) for x in out]
        ceiling = max(ceiling, matmul_ceiling())
        ceiling_bf16 = max(ceiling_bf16, matmul_ceiling(dtype=torch.bfloat16))
    groups = [q for q, _ in pairs]
    rows = report(systems, times, cpu, scores, flops, {"fp32": ceiling, "bf16": ceiling_bf16}, groups)
    meta = {
        "pairs": len(pairs), "queries": args.queries, "max_length": args.max_length, "repeats": args.repeats,
        "tokens": sum(lengths), "mean_tokens": sum(lengths) / len(lengths), "matmul_gflops": ceiling,
        "matmul_gflops_bf16": ceiling_bf16,
        "torch": torch.__version__, "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "useful_gflop": flops / 1e9,
    }
    print(f"\n{len(pairs)} pairs, {args.queries} Cranfield queries, BM25 top-100, max_length {args.max_length}, "
          f"{sum(lengths) / len(lengths):.0f} tokens/pair on average; matmul ceiling {ceiling:.0f} GFLOP/s fp32, "
          f"{ceiling_bf16:.0f} bf16 (the bf16 row is against the bf16 one) ({torch.get_num_threads()} threads); "
          f"best of {args.repeats}")
    save_results(args.output, {"meta": meta, "results": rows})
    return 0


def per_query_tau(a: Sequence[float], b: Sequence[float], groups: Sequence[str]) -> float:
    """Mean over queries of the Kendall tau within each query's candidates (what a reranker's order depends on)."""
    by: dict[str, list[int]] = {}
    for i, g in enumerate(groups):
        by.setdefault(g, []).append(i)
    taus = [kendall_tau([a[i] for i in idx], [b[i] for i in idx]) for idx in by.values() if len(idx) > 1]
    return float(np.mean(taus))


#: The table's columns; every row (measured or skipped) has exactly one cell per column.
COLUMNS = [
    "system", "pairs/s", "vs ST", "vs ST (CPU time)", "max abs diff vs ST", "Kendall tau vs ours fp32",
    "per-query Kendall tau", "padded tokens", "useful GFLOP/s", "% of matmul ceiling", "note",
]


def _md_row(cells: Sequence[str]) -> str:
    if len(cells) != len(COLUMNS):
        raise ValueError(f"a table row needs {len(COLUMNS)} cells, got {len(cells)}: {list(cells)}")
    return "| " + " | ".join(cells) + " |"


def report(systems: dict[str, Any], times: dict[str, float], cpu: dict[str, float], scores: dict[str, list[float]],
           flops: float, ceilings: dict[str, float], groups: Sequence[str]) -> list[dict[str, Any]]:
    st_name, ref_name = "sentence-transformers", "ours fp32"
    n = len(scores[ref_name])
    rows = []
    print("\n" + _md_row(COLUMNS))
    print(_md_row(["---"] + ["---:"] * (len(COLUMNS) - 2) + ["---"]))
    for name, (_, pad, note) in systems.items():
        if name not in times:
            print(_md_row([name] + ["-"] * (len(COLUMNS) - 2) + [note]))
            rows.append({"system": name, "note": note})
            continue
        pps = n / times[name]
        gflops = flops / times[name] / 1e9
        diff = float(np.max(np.abs(np.array(scores[name]) - np.array(scores[st_name]))))
        tau = kendall_tau(scores[name], scores[ref_name])
        q_tau = per_query_tau(scores[name], scores[ref_name], groups)
        ceiling = ceilings["bf16" if "bf16" in name else "fp32"]
        ratio = times[st_name] / times[name]
        cpu_ratio = cpu[st_name] / cpu[name]
        print(_md_row([name, f"{pps:.1f}", f"{ratio:.2f}x", f"{cpu_ratio:.2f}x", f"{diff:.1e}", f"{tau:.4f}",
                       f"{q_tau:.4f}", f"{pad:.1%}", f"{gflops:.0f}", f"{gflops / ceiling:.0%}", note]))
        rows.append({"system": name, "pairs_per_s": pps, "ratio_vs_st": ratio, "max_abs_diff_vs_st": diff,
                     "kendall_tau_vs_ours_fp32": tau,
                     "per_query_kendall_tau": q_tau, "padding_share": pad, "useful_gflops": gflops,
                     "ceiling_share": gflops / ceiling, "seconds": times[name], "cpu_seconds": cpu[name],
                     "ratio_vs_st_cpu_time": cpu_ratio, "note": note})
    return rows


if __name__ == "__main__":
    sys.exit(main())
