"""The same model on the same candidates, in the same run, through rerank-plugins and through the tools users pick.

Candidates: BM25 (bm25s, Lucene k1=1.5 b=0.75) top-``--depth`` of the first ``--queries`` judged Cranfield queries.

* **cross-encoder**: the bundled all-MiniLM-L6-v2 weights loaded as a one-logit
  ``AutoModelForSequenceClassification`` (seed 0). Its classification head is RANDOM, so absolute nDCG is
  meaningless: the point is that every tool computes the same ranking (nDCG@10 must agree to 1e-3) and how fast.
  Systems: ours (``CrossEncoderReranker``, per query and batched across queries), sentence-transformers
  ``CrossEncoder.predict``, AnswerDotAI ``rerankers``, LlamaIndex ``SentenceTransformerRerank``, Haystack
  ``SentenceTransformersSimilarityRanker`` (sentence-transformers-haystack), LangChain ``CrossEncoderReranker``
  with ``HuggingFaceCrossEncoder``. Same max_length (512) everywhere; each tool's default batch size.
* **bi-encoder**: the bundled MiniLM as a sentence embedding model (cosine). Ours (``EmbeddingReranker``), bare
  sentence-transformers ``encode`` + cosine, LangChain ``EmbeddingsFilter`` (``HuggingFaceEmbeddings``, k=depth),
  Haystack ``SentenceTransformersDiversityRanker`` (maximum-margin relevance with lambda=1: pure cosine order).
  AnswerDotAI rerankers and LlamaIndex have no bi-encoder reranker.
* **LLM** (``--llm-queries``, optional): our listwise and FIRST strategies with the bundled SmolLM2-135M on the
  first few queries' top ``--llm-depth`` (no peer runs these models on CPU in-process; shown for cost).

Every system reranks one query at a time (as in a pipeline) after one untimed warm-up query, the systems of a group
interleaved query by query (so a busy, shared machine slows them alike), except the rows "(batched)", which use
``rerank_batch`` over all queries at once. Output: a markdown table (stdout and
``benchmarks/results/peers.md``), ``peers.json`` and a quality-vs-latency plot ``peers.png`` (copied to
``docs/img/peers.png``).

    python benchmarks/peers.py [--queries 10] [--depth 100] [--llm-queries 3] [--llm-depth 20] [--replot]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
Docs = list[tuple[str, str]]
RankFn = Callable[[str, Docs], list[tuple[str, float]]]


@dataclass
class Row:
    name: str
    group: str
    library: str
    ndcg10: float = float("nan")
    mrr10: float = float("nan")
    seconds: float = float("nan")
    load_s: float = float("nan")
    queries: int = 0
    pairs: int = 0
    same_top10: str = ""
    note: str = ""
    error: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def ms_per_query(self) -> float:
        return 1000 * self.seconds / self.queries if self.queries else float("nan")

    @property
    def pairs_per_s(self) -> float:
        return self.pairs / self.seconds if self.seconds and self.seconds == self.seconds else float("nan")


# ---------------------------------------------------------------------------------------------- models
def minilm_folder() -> Path:
    from rerank_plugins.models import resolve_model

    return Path(resolve_model("minilm").name_or_path)


def build_cross_encoder(folder: Path) -> Path:
    """MiniLM weights + a seeded random one-logit head, saved with the tokenizer (max length 512)."""
    import torch
    import transformers

    torch.manual_seed(0)
    model = transformers.AutoModelForSequenceClassification.from_pretrained(str(minilm_folder()), num_labels=1)
    model.save_pretrained(str(folder))
    transformers.AutoTokenizer.from_pretrained(str(minilm_folder())).save_pretrained(str(folder))
    return folder


def _ordered(ids: Sequence[str], scores: Sequence[float]) -> list[tuple[str, float]]:
    order = sorted(range(len(ids)), key=lambda i: -float(scores[i]))
    return [(ids[i], float(scores[i])) for i in order]


def _by_rank(ids: Sequence[str]) -> list[tuple[str, float]]:
    """For tools that return an order without scores: rank-derived scores."""
    return [(d, float(len(ids) - i)) for i, d in enumerate(ids)]


# ---------------------------------------------------------------------------------------------- cross-encoder systems
def ours_reranker(model: Any, **options: Any) -> tuple[Any, RankFn]:
    from rerank_plugins import Candidate, load_reranker

    reranker = load_reranker(model, **options)

    def rank(query: str, docs: Docs) -> list[tuple[str, float]]:
        ranked = reranker.rerank(query, [Candidate(id=i, text=t) for i, t in docs])
        return [(r.id, r.score) for r in ranked]

    return reranker, rank


def st_cross_encoder(path: str, depth: int) -> RankFn:
    from sentence_transformers import CrossEncoder

    ce = CrossEncoder(path, max_length=512, device="cpu")
    return lambda q, docs: _ordered([i for i, _ in docs], ce.predict([(q, t) for _, t in docs]))


def answerdotai_rerankers(path: str, depth: int) -> RankFn:
    from rerankers import Reranker

    ranker = Reranker(path, model_type="cross-encoder", device="cpu", verbose=0)

    def rank(q: str, docs: Docs) -> list[tuple[str, float]]:
        res = ranker.rank(q, [t for _, t in docs], doc_ids=[i for i, _ in docs])
        return [(str(r.document.doc_id), float(r.score)) for r in res.results]

    return rank


def llamaindex_sbert(path: str, depth: int) -> RankFn:
    from llama_index.core.postprocessor import SentenceTransformerRerank
    from llama_index.core.schema import NodeWithScore, TextNode

    pp = SentenceTransformerRerank(top_n=depth, model=path, device="cpu")

    def rank(q: str, docs: Docs) -> list[tuple[str, float]]:
        nodes = [NodeWithScore(node=TextNode(text=t, id_=i), score=0.0) for i, t in docs]
        return [(n.node.node_id, float(n.score or 0.0)) for n in pp.postprocess_nodes(nodes, query_str=q)]

    return rank


def haystack_similarity(path: str, depth: int) -> RankFn:
    from haystack import Document
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.rankers.sentence_transformers import SentenceTransformersSimilarityRanker

    ranker = SentenceTransformersSimilarityRanker(
        model=path, top_k=depth, device=ComponentDevice.from_str("cpu"), token=None
    )
    ranker.warm_up()

    def rank(q: str, docs: Docs) -> list[tuple[str, float]]:
        out = ranker.run(query=q, documents=[Document(id=i, content=t) for i, t in docs])["documents"]
        return [(d.id, float(d.score)) for d in out]

    return rank


def langchain_cross_encoder(path: str, depth: int) -> RankFn:
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker
    from langchain_community.cross_encoders import HuggingFaceCrossEncoder
    from langchain_core.documents import Document

    model = HuggingFaceCrossEncoder(model_name=path, model_kwargs={"device": "cpu", "max_length": 512})
    compressor = CrossEncoderReranker(model=model, top_n=depth)

    def rank(q: str, docs: Docs) -> list[tuple[str, float]]:
        out = compressor.compress_documents([Document(page_content=t, id=i) for i, t in docs], q)
        return _by_rank([str(d.id) for d in out])  # it returns the order only

    return rank


# ---------------------------------------------------------------------------------------------- bi-encoder systems
def st_bi_encoder(path: str, depth: int) -> RankFn:
    from sentence_transformers import SentenceTransformer, util

    model = SentenceTransformer(path, device="cpu")

    def rank(q: str, docs: Docs) -> list[tuple[str, float]]:
        sims = util.cos_sim(model.encode([q]), model.encode([t for _, t in docs]))[0]
        return _ordered([i for i, _ in docs], sims.tolist())

    return rank


def langchain_embeddings_filter(path: str, depth: int) -> RankFn:
    from langchain_classic.retrievers.document_compressors import EmbeddingsFilter
    from langchain_community.embeddings import HuggingFaceEmbeddings
    from langchain_core.documents import Document

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # HuggingFaceEmbeddings moved to langchain-huggingface (deprecation)
        emb = HuggingFaceEmbeddings(model_name=path, model_kwargs={"device": "cpu"})
    flt = EmbeddingsFilter(embeddings=emb, k=depth, similarity_threshold=None)

    def rank(q: str, docs: Docs) -> list[tuple[str, float]]:
        # its stateful copies drop Document.id, so the id travels in metadata
        out = flt.compress_documents([Document(page_content=t, metadata={"doc_id": i}) for i, t in docs], q)
        return [(str(d.metadata["doc_id"]), float(d.state["query_similarity_score"])) for d in out]

    return rank


def haystack_mmr(path: str, depth: int) -> RankFn:
    from haystack import Document
    from haystack.utils import ComponentDevice
    from haystack_integrations.components.rankers.sentence_transformers import SentenceTransformersDiversityRanker

    ranker = SentenceTransformersDiversityRanker(
        model=path, top_k=depth, device=ComponentDevice.from_str("cpu"), token=None, similarity="cosine",
        strategy="maximum_margin_relevance", lambda_threshold=1.0,
    )  # fmt: skip
    ranker.warm_up()

    def rank(q: str, docs: Docs) -> list[tuple[str, float]]:
        out = ranker.run(query=q, documents=[Document(id=i, content=t) for i, t in docs])["documents"]
        return _by_rank([d.id for d in out])

    return rank


# ---------------------------------------------------------------------------------------------- timing
def score_row(row: Row, out: dict, data: Any, reference: dict | None) -> None:
    from rerank_plugins.eval.metrics import evaluate

    res = evaluate(out, data.qrels, ("nDCG@10", "MRR@10"), queries=list(data.queries))
    row.ndcg10, row.mrr10 = res["nDCG@10"], res["MRR@10"]
    if reference is not None:
        same = sum([d for d, _ in out[q][:10]] == [d for d, _ in reference[q][:10]] for q in data.queries)
        row.same_top10 = f"{same}/{len(data.queries)}"


def run_group(rows: list[Row], systems: list[tuple[Row, Callable[[], RankFn]]], data: Any, run: dict,
              depth: int, compare: bool = True) -> None:  # fmt: skip
    """Build every system of a group and warm it on the first query, then time one call per query with the
    systems INTERLEAVED (query by query, rotating who goes first), so a busy machine slows all of them alike.
    A system that fails is reported in its row, never hidden."""
    qids = list(data.queries)
    docs = {q: [(d, data.document_text(d)) for d, _ in run[q][:depth]] for q in qids}
    live: list[tuple[Row, RankFn]] = []
    for row, make in systems:
        print(f"  load {row.name} ...", file=sys.stderr, flush=True)
        try:
            t0 = time.perf_counter()
            rank = make()
            row.load_s = time.perf_counter() - t0
            rank(data.queries[qids[0]], docs[qids[0]])  # warm-up, untimed
            live.append((row, rank))
        except Exception as exc:
            row.error = f"{type(exc).__name__}: {exc}"[:200]
        rows.append(row)
    outs: dict[str, dict] = {row.name: {} for row, _ in live}
    elapsed = dict.fromkeys(outs, 0.0)
    for n, q in enumerate(qids):
        print(f"  query {n + 1}/{len(qids)}", file=sys.stderr, flush=True)
        k = n % len(live) if live else 0
        for row, rank in live[k:] + live[:k]:
            if row.error:
                continue
            try:
                t = time.perf_counter()
                outs[row.name][q] = rank(data.queries[q], docs[q])
                elapsed[row.name] += time.perf_counter() - t
            except Exception as exc:
                row.error = f"{type(exc).__name__}: {exc}"[:200]
    reference: dict | None = None
    for row, _ in live:
        if row.error:
            continue
        row.seconds, row.queries, row.pairs = elapsed[row.name], len(qids), sum(len(v) for v in docs.values())
        score_row(row, outs[row.name], data, reference if compare else None)
        reference = reference if reference is not None else outs[row.name]


def ours_batched(row: Row, model: Any, options: dict, data: Any, run: dict, depth: int) -> Row:
    from rerank_plugins import load_reranker
    from rerank_plugins.eval.runner import rerank_run

    t0 = time.perf_counter()
    reranker = load_reranker(model, **options)
    row.load_s = time.perf_counter() - t0
    out, row.seconds, _ = rerank_run(reranker, data, run, depth=depth, queries_per_batch=len(data.queries))
    row.queries, row.pairs = len(data.queries), sum(min(depth, len(run[q])) for q in data.queries)
    score_row(row, out, data, None)
    return row


# ---------------------------------------------------------------------------------------------- report
def table(rows: Sequence[Row], ref: dict[str, Row]) -> str:
    head = (
        "| group | system | library | nDCG@10 | MRR@10 | same top-10 as first row | ms/query | pairs/s | x ours "
        "| load (s) |"
    )
    lines = [head, "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.error:
            lines.append(f"| {r.group} | {r.name} | {r.library} | failed: {r.error} | | | | | | |")
            continue
        base = ref.get(r.group)
        ratio = base.pairs_per_s / r.pairs_per_s if base is not None and r.pairs_per_s else float("nan")
        lines.append(
            f"| {r.group} | {r.name} | {r.library} | {r.ndcg10:.4f} | {r.mrr10:.4f} | {r.same_top10} | "
            f"{r.ms_per_query:.0f} | {r.pairs_per_s:.1f} | {ratio:.2f} | {r.load_s:.1f} |"
        )
    return "\n".join(lines)


def plot(rows: Sequence[Row], path: Path, title: str) -> None:
    """Quality against latency: numbered markers (red: ours, blue: peers) and a key beside the axes."""
    import textwrap

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    markers = {"cross-encoder": "o", "bi-encoder": "s", "llm": "^"}
    fig, (ax, key) = plt.subplots(1, 2, figsize=(13, 6), gridspec_kw={"width_ratios": [1.45, 1]})
    lines = []
    shown = [r for r in rows if not r.error and r.queries and r.group in markers]
    for n, r in enumerate(shown, 1):
        ours = r.library == "rerank-plugins"
        color = "tab:red" if ours else "tab:blue"
        ax.scatter(r.ms_per_query, r.ndcg10, marker=markers[r.group], s=80 if ours else 55, color=color, alpha=0.75)
        offset = (5, 4 + 9 * ((n - 1) % 3)) if r.group != "llm" else (5, 4)
        ax.annotate(str(n), (r.ms_per_query, r.ndcg10), fontsize=7, xytext=offset, textcoords="offset points")
        note = f"  ({r.note})" if r.note else ""
        lines.append(
            f"{n:>2}  {r.name}  [{r.library}]\n    nDCG@10 {r.ndcg10:.4f}, {r.ms_per_query:.0f} ms/query{note}"
        )
    ax.set_xscale("log")
    for r in rows:
        if r.group == "first stage" and not r.error:
            ax.axhline(r.ndcg10, color="gray", ls="--", lw=1)
            label = f"{r.name} (the candidates): {r.ndcg10:.4f}"
            ax.annotate(label, (0.01, r.ndcg10), xycoords=("axes fraction", "data"),
                        fontsize=7, color="gray", xytext=(0, 3), textcoords="offset points")  # fmt: skip
    ax.set_xlabel("latency per query (ms, log scale)")
    ax.set_ylabel("nDCG@10")
    ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], marker=m, ls="", color="gray", label=g) for g, m in markers.items()]
    handles += [plt.Line2D([], [], marker="o", ls="", color=c, label=lab)
                for c, lab in (("tab:red", "rerank-plugins"), ("tab:blue", "peer"))]  # fmt: skip
    ax.legend(handles=handles, fontsize=7, loc="center right")
    key.axis("off")
    key.text(0, 1, "\n".join(lines), fontsize=6.5, va="top", family="monospace")
    fig.suptitle("\n".join(textwrap.wrap(title, 130)), fontsize=9)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=130)
    plt.close(fig)


def replot(json_path: Path, out: Path) -> None:
    """Redraw the plot from a saved ``peers.json`` (no model is run)."""
    payload = json.loads(json_path.read_text())
    fields = set(Row.__dataclass_fields__)
    rows = [Row(**{k: v for k, v in r.items() if k in fields}) for r in payload["rows"]]
    plot(rows, out, payload["title"])


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--queries", type=int, default=10)
    ap.add_argument("--depth", type=int, default=100)
    ap.add_argument("--llm-queries", type=int, default=3, help="0 skips the LLM strategies")
    ap.add_argument("--llm-depth", type=int, default=20)
    ap.add_argument("--cranfield", default=None, help="Cranfield folder (default: found next to the repository)")
    ap.add_argument("--skip", nargs="*", default=[], help="system names to skip (e.g. 'haystack MMR')")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--replot", action="store_true", help="only redraw peers.png from OUT/peers.json")
    args = ap.parse_args(argv)
    if args.replot:
        replot(args.out / "peers.json", args.out / "peers.png")
        (ROOT / "docs" / "img").mkdir(parents=True, exist_ok=True)
        shutil.copyfile(args.out / "peers.png", ROOT / "docs" / "img" / "peers.png")
        return 0

    from rerank_plugins.eval.datasets import load_cranfield
    from rerank_plugins.eval.first_stage import bm25_run
    from rerank_plugins.eval.metrics import evaluate

    data = load_cranfield(args.cranfield).head(args.queries)
    run = bm25_run(data, args.depth)
    bm25 = evaluate(run, data.qrels, ("nDCG@10", "MRR@10"))
    rows = [Row("BM25 (bm25s)", "first stage", "rerank-plugins", bm25["nDCG@10"], bm25["MRR@10"], 0.0, 0.0,
                len(data.queries), 0, note="candidates")]  # fmt: skip
    tmp = Path(tempfile.mkdtemp(prefix="peers-ce-"))
    try:
        ce = str(build_cross_encoder(tmp))
        st = str(minilm_folder())
        opts_ce = {"kind": "cross-encoder", "max_length": 512}
        d = args.depth

        def ours(model: str, **o: Any) -> Callable[[], RankFn]:
            return lambda: ours_reranker(model, **o)[1]

        groups = {
            "cross-encoder": [
                (Row("ours CrossEncoderReranker", "cross-encoder", "rerank-plugins"), ours(ce, **opts_ce)),
                (Row("sentence-transformers CrossEncoder", "cross-encoder", "sentence-transformers"),
                 lambda: st_cross_encoder(ce, d)),
                (Row("AnswerDotAI rerankers", "cross-encoder", "rerankers"), lambda: answerdotai_rerankers(ce, d)),
                (Row("LlamaIndex SentenceTransformerRerank", "cross-encoder", "llama-index-core"),
                 lambda: llamaindex_sbert(ce, d)),
                (Row("Haystack SentenceTransformersSimilarityRanker", "cross-encoder",
                     "sentence-transformers-haystack"), lambda: haystack_similarity(ce, d)),
                (Row("LangChain CrossEncoderReranker", "cross-encoder", "langchain-classic"),
                 lambda: langchain_cross_encoder(ce, d)),
            ],
            "bi-encoder": [
                (Row("ours EmbeddingReranker", "bi-encoder", "rerank-plugins"), ours("minilm", kind="embedding")),
                (Row("sentence-transformers encode+cos", "bi-encoder", "sentence-transformers"),
                 lambda: st_bi_encoder(st, d)),
                (Row("LangChain EmbeddingsFilter", "bi-encoder", "langchain-classic"),
                 lambda: langchain_embeddings_filter(st, d)),
                (Row("Haystack MMR (lambda=1)", "bi-encoder", "sentence-transformers-haystack"),
                 lambda: haystack_mmr(st, d)),
            ],
        }  # fmt: skip
        for group, systems in groups.items():
            print(f"{group}:", file=sys.stderr)
            run_group(rows, [(r, m) for r, m in systems if r.name not in args.skip], data, run, d)
        print("batched:", file=sys.stderr)
        rows.append(ours_batched(Row("ours CrossEncoderReranker (batched)", "cross-encoder", "rerank-plugins"),
                                 ce, opts_ce, data, run, d))  # fmt: skip
        rows.append(ours_batched(Row("ours EmbeddingReranker (batched)", "bi-encoder", "rerank-plugins"),
                                 "minilm", {"kind": "embedding"}, data, run, d))  # fmt: skip
        if args.llm_queries > 0:
            small = data.head(args.llm_queries)
            sub = evaluate(run, small.qrels, ("nDCG@10",), queries=list(small.queries))["nDCG@10"]
            print("llm:", file=sys.stderr)
            llm = [
                (Row(f"ours listwise SmolLM2-135M ({args.llm_queries}q, top-{args.llm_depth})", "llm",
                     "rerank-plugins", note=f"BM25 on these queries: {sub:.4f}"),
                 ours("smollm2-135m", kind="listwise", fallback="keep")),
                (Row(f"ours FIRST SmolLM2-135M ({args.llm_queries}q, top-{args.llm_depth})", "llm",
                     "rerank-plugins", note=f"BM25 on these queries: {sub:.4f}"),
                 ours("smollm2-135m", kind="first", fallback="keep")),
            ]  # fmt: skip
            run_group(rows, llm, small, run, args.llm_depth, compare=False)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)

    ref: dict[str, Row] = {}
    for r in rows:  # the first (per-query) row of ours in each group is the reference
        if r.library == "rerank-plugins" and not r.error and "batched" not in r.name:
            ref.setdefault(r.group, r)
    for r in rows:
        if r.group in ("cross-encoder", "bi-encoder") and not r.error and r.group in ref:
            r.extra["ndcg_diff_vs_ours"] = abs(r.ndcg10 - ref[r.group].ndcg10)
            r.extra["agrees_1e-3"] = r.extra["ndcg_diff_vs_ours"] < 1e-3
    title = (f"Cranfield, BM25 top-{args.depth}, {len(data.queries)} queries, {os.cpu_count()} CPUs (shared); "
             "cross-encoder head is random: compare agreement and speed, not absolute nDCG")  # fmt: skip
    md = table(rows, ref)
    disagree = [r.name for r in rows if r.extra.get("agrees_1e-3") is False]
    text = "\n".join([
        f"**{title}**", "", md, "",
        "x ours = our pairs/s divided by the system's pairs/s (above 1: we are faster).",
        "Agreement of nDCG@10 with ours to 1e-3: " + ("all" if not disagree else f"NOT for {disagree}"),
        f"python {platform.python_version()}, torch threads default; command: python benchmarks/peers.py "
        + " ".join(argv if argv is not None else sys.argv[1:]),
    ])  # fmt: skip
    print(text)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "peers.md").write_text(text + "\n", encoding="utf-8")
    payload = [dict(asdict(r), ms_per_query=r.ms_per_query, pairs_per_s=r.pairs_per_s) for r in rows]
    (args.out / "peers.json").write_text(json.dumps({"title": title, "rows": payload}, indent=2, default=str))
    plot(rows, args.out / "peers.png", title)
    img = ROOT / "docs" / "img"
    img.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(args.out / "peers.png", img / "peers.png")
    return 0 if not disagree else 1


if __name__ == "__main__":
    sys.exit(main())
