"""Haystack end to end: an in-memory BM25 retriever feeding a rerank-plugins ranker in one pipeline.

    python examples/haystack_bm25.py                         # FAQ data, reranked by the bundled MiniLM
    python examples/haystack_bm25.py --dataset cranfield --queries 5
    python examples/haystack_bm25.py --model smollm2-135m --kind first

The pipeline is also saved to YAML and loaded back (that is how Haystack pipelines are shipped), and the loaded
copy is the one that runs.
"""

from __future__ import annotations

import time

from _example_data import Tally, load_data, parser, reranker_options, show


def main() -> None:
    args = parser(__doc__.splitlines()[0], model="minilm", kind=None, candidates=20).parse_args()
    started = time.perf_counter()

    from haystack import Document, Pipeline
    from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
    from haystack.document_stores.in_memory import InMemoryDocumentStore
    from haystack.document_stores.types import DuplicatePolicy
    from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

    data = load_data(args.dataset, args.queries)
    documents = [Document(id=doc_id, content=text) for doc_id, text in data.documents]

    pipe = Pipeline()
    pipe.add_component("retriever", InMemoryBM25Retriever(InMemoryDocumentStore(), top_k=args.candidates))
    pipe.add_component(
        "ranker",
        RerankPluginsRanker(model=args.model, kind=args.kind, options=reranker_options(args), top_k=args.top_n),
    )
    pipe.connect("retriever.documents", "ranker.documents")
    pipe = Pipeline.loads(pipe.dumps())  # round trip through YAML
    store = pipe.get_component("retriever").document_store
    store.write_documents(documents, policy=DuplicatePolicy.OVERWRITE)
    pipe.warm_up()  # loads the reranker once
    elapsed = time.perf_counter() - started
    print(f"indexed {store.count_documents()} documents for BM25, reranker loaded ({elapsed:.1f}s)")

    tally = Tally(args.top_n)
    for q in data.queries:
        print(f"\nquery {q.id}: {q.text}")
        t = time.perf_counter()
        inputs = {"retriever": {"query": q.text}, "ranker": {"query": q.text}}
        out = pipe.run(inputs, include_outputs_from={"retriever"})
        before, after = out["retriever"]["documents"], out["ranker"]["documents"]
        show(f"first stage (BM25, top {args.candidates})", [(d.id, d.score, d.content or "") for d in before],
             q.relevant, args.top_n)
        show(f"after reranking (pipeline {time.perf_counter() - t:.1f}s)",
             [(d.id, d.score, d.content or "") for d in after], q.relevant, args.top_n)
        if after and after[0].meta.get("rerank_reasoning"):
            print(f"  reasoning for the top document: {after[0].meta['rerank_reasoning'][:200]}")
        tally.add([d.id for d in before], [d.id for d in after], q.relevant)
    tally.report()
    print(f"total {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
