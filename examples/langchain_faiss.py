"""LangChain end to end: a FAISS vector store retriever wrapped by ContextualCompressionRetriever with a
rerank-plugins compressor.

    python examples/langchain_faiss.py                       # FAQ data, vector PRF (Rocchio) on MiniLM
    python examples/langchain_faiss.py --dataset cranfield --queries 5
    python examples/langchain_faiss.py --model smollm2-135m --kind first --options '{"window_size": 20}'

The FAISS store embeds with the bundled MiniLM through a small LangChain ``Embeddings`` class over
``EmbeddingReranker.embed_queries`` / ``embed_documents`` (langchain-huggingface would pull an incompatible
huggingface-hub). The default reranker, ``prf-vector``, reuses that same loaded model: it moves the query
embedding toward the top candidates (pseudo-relevance feedback) and rescores, so the order can differ from the
first stage's plain cosine.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

from _example_data import Tally, load_data, parser, reranker_options, show


def main() -> None:
    args = parser(__doc__.splitlines()[0], model="prf-vector", kind=None, candidates=20).parse_args()
    started = time.perf_counter()

    from langchain_classic.retrievers import ContextualCompressionRetriever

    with warnings.catch_warnings():  # langchain-community announces its sunset on import; FAISS still lives there
        warnings.simplefilter("ignore", DeprecationWarning)
        from langchain_community.vectorstores import FAISS
    from langchain_core.embeddings import Embeddings
    from langchain_rerank_plugins import RerankPluginsCompressor

    from rerank_plugins import load_reranker

    minilm = load_reranker("minilm")  # EmbeddingReranker: embeds for FAISS and serves the PRF reranker

    class MiniLMEmbeddings(Embeddings):
        def embed_documents(self, texts: list[str]) -> list[list[float]]:
            return minilm.embed_documents(texts).tolist()  # type: ignore[no-any-return]

        def embed_query(self, text: str) -> list[float]:
            return minilm.embed_queries([text])[0].tolist()  # type: ignore[no-any-return]

    data = load_data(args.dataset, args.queries)
    ids = [doc_id for doc_id, _ in data.documents]
    store = FAISS.from_texts([text for _, text in data.documents], MiniLMEmbeddings(), ids=ids)
    print(f"indexed {len(ids)} documents in FAISS ({time.perf_counter() - started:.1f}s)")

    options: dict[str, Any] = reranker_options(args)
    if args.model == "prf-vector" and "model" not in options:
        options["model"] = minilm  # share the loaded embedding model instead of loading it twice
    compressor = RerankPluginsCompressor(model=args.model, kind=args.kind, options=options, top_n=args.top_n)
    base = store.as_retriever(search_kwargs={"k": args.candidates})
    retriever = ContextualCompressionRetriever(base_compressor=compressor, base_retriever=base)
    print(f"reranker: {compressor.reranker!r}")

    tally = Tally(args.top_n)
    for q in data.queries:
        print(f"\nquery {q.id}: {q.text}")
        before = base.invoke(q.text)
        show(f"first stage (FAISS, top {args.candidates})", [(d.id or "", None, d.page_content) for d in before],
             q.relevant, args.top_n)
        t = time.perf_counter()
        after = retriever.invoke(q.text)
        show(f"after reranking ({time.perf_counter() - t:.1f}s)",
             [(d.id or "", d.metadata["relevance_score"], d.page_content) for d in after], q.relevant, args.top_n)
        if after and after[0].metadata.get("rerank_reasoning"):
            print(f"  reasoning for the top document: {after[0].metadata['rerank_reasoning'][:200]}")
        tally.add([d.id or "" for d in before], [d.id or "" for d in after], q.relevant)
    tally.report()
    print(f"total {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
