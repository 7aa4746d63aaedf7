"""LlamaIndex end to end: a VectorStoreIndex on a faiss vector store with the bundled MiniLM embedding, and a
rerank-plugins postprocessor in ``as_query_engine``.

    python examples/llamaindex_faiss.py                      # FAQ data, FIRST reranking with SmolLM2-135M
    python examples/llamaindex_faiss.py --dataset cranfield --queries 5
    python examples/llamaindex_faiss.py --model minilm --kind prf-vector --options '{}'

The first stage already ranks by MiniLM cosine, so reranking with MiniLM itself would change nothing; the default
reranker is therefore the bundled SmolLM2-135M LLM with the FIRST strategy (one forward pass per window).

No LLM answers here (nothing may be downloaded and no API is available offline), so the query engine uses the
``no_text`` response mode: it retrieves, runs the postprocessors, and returns the reranked source nodes without
writing an answer. ``Settings.llm = None`` tells LlamaIndex to use its MockLLM instead of looking for OpenAI.
"""

from __future__ import annotations

import time

from _example_data import Tally, load_data, parser, reranker_options, show


def main() -> None:
    p = parser(__doc__.splitlines()[0], model="smollm2-135m", kind="first", options='{"window_size": 20}')
    args = p.parse_args()
    started = time.perf_counter()

    import faiss
    from llama_index.core import Settings, StorageContext, VectorStoreIndex
    from llama_index.core.schema import TextNode
    from llama_index.embeddings.huggingface import HuggingFaceEmbedding
    from llama_index.postprocessor.rerank_plugins import RerankPluginsRerank
    from llama_index.vector_stores.faiss import FaissVectorStore

    from rerank_plugins.models import resolve_model

    data = load_data(args.dataset, args.queries)
    Settings.llm = None  # offline: MockLLM; the no_text response mode never asks it anything
    minilm_path = resolve_model("minilm").name_or_path  # the bundled model's local folder
    embed = HuggingFaceEmbedding(model_name=minilm_path, device="cpu", embed_batch_size=64)
    dim = len(embed.get_text_embedding("dimension probe"))
    store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(dim))  # normalised embeddings: inner product = cosine
    nodes = [TextNode(id_=doc_id, text=text) for doc_id, text in data.documents]
    index = VectorStoreIndex(nodes, storage_context=StorageContext.from_defaults(vector_store=store), embed_model=embed)
    print(f"indexed {len(nodes)} documents in faiss ({time.perf_counter() - started:.1f}s)")

    rerank = RerankPluginsRerank(model=args.model, kind=args.kind, options=reranker_options(args), top_n=args.top_n)
    retriever = index.as_retriever(similarity_top_k=args.candidates)
    engine = index.as_query_engine(
        similarity_top_k=args.candidates, node_postprocessors=[rerank], response_mode="no_text"
    )
    print(f"reranker: {rerank.reranker!r}\n")

    tally = Tally(args.top_n)
    for q in data.queries:
        print(f"query {q.id}: {q.text}")
        before = retriever.retrieve(q.text)
        show(f"first stage (faiss, top {args.candidates})",
             [(n.node.node_id, n.score, n.node.get_content()) for n in before], q.relevant, args.top_n)
        t = time.perf_counter()
        after = engine.query(q.text).source_nodes
        show(f"after reranking ({time.perf_counter() - t:.1f}s)",
             [(n.node.node_id, n.score, n.node.get_content()) for n in after], q.relevant, args.top_n)
        reasoning = after[0].node.metadata.get("rerank_reasoning") if after else None
        if reasoning:
            print(f"  reasoning for the top document: {reasoning[:200]}")
        tally.add([n.node.node_id for n in before], [n.node.node_id for n in after], q.relevant)
        print()
    tally.report()
    print(f"total {time.perf_counter() - started:.1f}s")


if __name__ == "__main__":
    main()
