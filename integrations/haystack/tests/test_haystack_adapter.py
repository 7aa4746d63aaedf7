"""RerankPluginsRanker: conformance through Haystack, parity with the bare engine, serialisation, pipelines."""

from __future__ import annotations

import asyncio
import copy
import json
import os
from typing import Any

import pytest
from haystack import Document, Pipeline
from haystack.components.retrievers.in_memory import InMemoryBM25Retriever
from haystack.core.errors import SerializationError
from haystack.dataclasses import ByteStream
from haystack.document_stores.in_memory import InMemoryDocumentStore
from haystack.document_stores.types import DuplicatePolicy
from haystack_host import HaystackHost, to_document
from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

import rerank_plugins.models as models
from rerank_plugins import InvalidInputError
from rerank_plugins.models import StrategySpec
from rerank_plugins.testing import RerankerConformance
from rerank_plugins.testing.adapter_kinds import host_conformance
from rerank_plugins.testing.conformance import sample_candidates
from rerank_plugins.testing.rerankers import KeywordReranker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUERY = "What causes shock waves around supersonic aircraft?"
BROAD = "shock waves, boundary layer heat, wing flutter, pasta or the stock market"  # BM25 finds all six


@pytest.fixture(autouse=True)
def keyword_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test-only strategy name for configuring adapters by name, registered only while a test runs."""
    spec = StrategySpec("keyword", "rerank_plugins.testing.rerankers:KeywordReranker", "test", needs_model=False)
    monkeypatch.setitem(models._STRATEGIES, "keyword", spec)


class HaystackConformance(RerankerConformance):
    """The shared suite, with Haystack's own rules: ``top_k=0`` is a ``ValueError`` (sentence-transformers-haystack
    2.0.0 ``SentenceTransformersSimilarityRanker.run``: "top_k must be > 0") and duplicate ids are merged
    (test_duplicate_ids_deduplicated_as_haystack_does)."""

    checks_duplicates = False

    def test_top_k_zero(self, reranker: Any) -> None:
        with pytest.raises(ValueError, match="top_k"):
            reranker.rerank(QUERY, sample_candidates(), top_k=0)


TestConformanceRun, TestConformanceRunAsync, TestConformanceListwise = host_conformance(
    HaystackHost, HaystackConformance
)


def _docs(n: int = 6) -> list[Document]:
    return [to_document(c) for c in sample_candidates(n)]


def _check_parity(bare: Any, out: list[Document]) -> None:
    assert [d.id for d in out] == bare.ids
    assert [d.score for d in out] == pytest.approx(bare.scores, abs=1e-6)
    assert all(type(d.score) is float for d in out)


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[Any]:
    calls: list[Any] = []
    real = models.load_reranker  # the one loader behind integration.build_reranker

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load_reranker", counting)
    return calls


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize(("top_k", "threshold"), [(None, None), (3, None), (None, 0.3), (2, 0.0)])
def test_parity_with_bare_engine(asynchronous: bool, top_k: int | None, threshold: float | None) -> None:
    engine = KeywordReranker()
    bare = engine.rerank(QUERY, sample_candidates(), top_k, threshold)
    ranker = RerankPluginsRanker(model=engine)
    if asynchronous:
        out = asyncio.run(ranker.run_async(query=QUERY, documents=_docs(), top_k=top_k, score_threshold=threshold))
        assert engine.async_calls == 1 and engine.sync_calls == 1  # the bare call above
    else:
        out = ranker.run(query=QUERY, documents=_docs(), top_k=top_k, score_threshold=threshold)
    _check_parity(bare, out["documents"])


def test_init_is_cheap_and_run_warms_up_once(counted: list[Any]) -> None:
    ranker = RerankPluginsRanker(model="keyword", options={"reasoning": False})
    assert counted == []
    ranker.run(query=QUERY, documents=_docs())
    asyncio.run(ranker.run_async(query=QUERY, documents=_docs()))
    ranker.warm_up()
    assert len(counted) == 1


def test_to_dict_from_dict_round_trip() -> None:
    ranker = RerankPluginsRanker(
        model="keyword", top_k=3, score_threshold=0.0, options={"reasoning": False}, meta_fields_to_embed=["title"]
    )
    data = ranker.to_dict()
    assert json.loads(json.dumps(data)) == data
    assert data["init_parameters"]["score_threshold"] == 0.0
    again = RerankPluginsRanker.from_dict(data)
    assert again.to_dict() == data
    a = ranker.run(query=QUERY, documents=_docs())["documents"]
    b = again.run(query=QUERY, documents=_docs())["documents"]
    assert [(d.id, d.score) for d in a] == [(d.id, d.score) for d in b]


def test_built_reranker_cannot_be_serialised() -> None:
    with pytest.raises(SerializationError, match="model="):
        RerankPluginsRanker(model=KeywordReranker()).to_dict()


def _bm25_pipeline(ranker: RerankPluginsRanker) -> Pipeline:
    store = InMemoryDocumentStore()
    store.write_documents(_docs())
    pipe = Pipeline()
    pipe.add_component("retriever", InMemoryBM25Retriever(document_store=store, top_k=6))
    pipe.add_component("ranker", ranker)
    pipe.connect("retriever.documents", "ranker.documents")
    return pipe


def test_pipeline_saved_to_yaml_loads_and_runs_again() -> None:
    pipe = _bm25_pipeline(RerankPluginsRanker(model="keyword", top_k=3, score_threshold=0.0))
    inputs = {"retriever": {"query": BROAD}, "ranker": {"query": QUERY}}
    first = pipe.run(inputs)["ranker"]["documents"]
    loaded = Pipeline.loads(pipe.dumps())
    # the YAML holds no documents; (re)write them into the loaded store
    loaded.get_component("retriever").document_store.write_documents(_docs(), policy=DuplicatePolicy.OVERWRITE)
    second = loaded.run(inputs)["ranker"]["documents"]
    assert len(first) == 3
    assert [(d.id, d.score) for d in first] == [(d.id, d.score) for d in second]
    assert isinstance(loaded.get_component("ranker"), RerankPluginsRanker)
    assert all("rerank_reasoning" in d.meta for d in second)


def test_pipeline_run_async() -> None:
    pipe = _bm25_pipeline(RerankPluginsRanker(model="keyword"))
    loaded = Pipeline.loads(pipe.dumps())
    loaded.get_component("retriever").document_store.write_documents(_docs(), policy=DuplicatePolicy.OVERWRITE)
    out = asyncio.run(loaded.run_async({"retriever": {"query": BROAD}, "ranker": {"query": QUERY}}))
    assert len(out["ranker"]["documents"]) == 6


def test_documents_replaced_never_mutated() -> None:
    docs = _docs()
    before = copy.deepcopy([d.to_dict() for d in docs])
    out = RerankPluginsRanker(model=KeywordReranker()).run(query=QUERY, documents=docs)["documents"]
    assert [d.to_dict() for d in docs] == before
    assert {id(d) for d in out}.isdisjoint(id(d) for d in docs)
    by_id = {d.id: d for d in docs}
    for d in out:
        assert d.content == by_id[d.id].content
        assert d.meta["source"] == "conformance" and d.meta["i"] == by_id[d.id].meta["i"]


def test_reasoning_and_window_traces_reach_document_meta() -> None:
    engine = KeywordReranker()
    bare = engine.rerank(QUERY, sample_candidates())
    out = RerankPluginsRanker(model=engine).run(query=QUERY, documents=_docs())["documents"]
    for d, r in zip(out, bare.results):
        assert d.meta["rerank_reasoning"] == r.reasoning
        assert d.meta["rerank_details"] == dict(r.details)
        assert d.meta["rerank_rank"] == r.rank
        assert d.meta["rerank_windows"][0]["output_ids"] == bare.ids
    json.dumps([d.to_dict() for d in out])  # meta stays JSON-serialisable


def test_document_without_content_is_ranked_once_and_images_are_carried() -> None:
    engine = KeywordReranker()
    docs = [
        *_docs(2),
        Document(id="empty"),
        Document(id="img", blob=ByteStream(data=b"\x89PNG", mime_type="image/png")),
    ]
    out = RerankPluginsRanker(model=engine).run(query=QUERY, documents=docs)["documents"]
    assert sorted(d.id for d in out) == sorted(d.id for d in docs)
    seen = {c.id: c for c in engine.seen}
    assert seen["empty"].text == "" and seen["empty"].image is None
    assert seen["img"].text is None and seen["img"].image == b"\x89PNG"


def test_top_k_zero_is_a_value_error_as_in_haystack_s_rankers() -> None:
    """Issue 21 item 18: Haystack's rankers raise ``ValueError("top_k must be > 0 ...")`` for 0, at init and per call
    (sentence-transformers-haystack 2.0.0); ours returned ``[]``."""
    ranker = RerankPluginsRanker(model=KeywordReranker(), top_k=2)
    for bad in (0, -1):
        with pytest.raises(ValueError, match="top_k must be an int >= 1"):
            ranker.run(query=QUERY, documents=_docs(), top_k=bad)
        with pytest.raises(ValueError, match="top_k must be an int >= 1"):
            asyncio.run(ranker.run_async(query=QUERY, documents=_docs(), top_k=bad))
        with pytest.raises(ValueError, match="top_k must be an int >= 1"):
            RerankPluginsRanker(model=KeywordReranker(), top_k=bad)
    assert len(ranker.run(query=QUERY, documents=_docs())["documents"]) == 2
    assert len(ranker.run(query=QUERY, documents=_docs(), top_k=5)["documents"]) == 5
    assert len(RerankPluginsRanker(model=KeywordReranker()).run(query=QUERY, documents=_docs())["documents"]) == 6


def test_threshold_zero_is_honoured_at_init_and_at_run() -> None:
    engine = KeywordReranker(offset=-0.5)
    bare = engine.rerank(QUERY, sample_candidates())
    expected = [r.id for r in bare.results if r.score >= 0.0]
    assert 0 < len(expected) < 6
    at_init = RerankPluginsRanker(model=engine, score_threshold=0.0).run(query=QUERY, documents=_docs())
    assert [d.id for d in at_init["documents"]] == expected
    at_run = RerankPluginsRanker(model=engine, score_threshold=5.0).run(
        query=QUERY, documents=_docs(), score_threshold=0.0
    )
    assert [d.id for d in at_run["documents"]] == expected


def test_meta_fields_to_embed() -> None:
    engine = KeywordReranker()
    docs = [Document(id="a", content="body text", meta={"title": "Shock waves", "n": None})]
    RerankPluginsRanker(model=engine, meta_fields_to_embed=["title", "n", "missing"]).run(query=QUERY, documents=docs)
    assert engine.seen[0].text == "Shock waves\nbody text"


def test_empty_documents_and_empty_query() -> None:
    ranker = RerankPluginsRanker(model=KeywordReranker())
    assert ranker.run(query=QUERY, documents=[]) == {"documents": []}
    with pytest.raises(InvalidInputError, match="empty"):
        ranker.run(query="  ", documents=_docs())


def test_duplicate_ids_deduplicated_as_haystack_does() -> None:
    """Issue 21 item 18: 6 documents with 3 ids give 3, keeping of each id the highest-scored one (the first among
    equals or unscored), exactly as haystack's ``_deduplicate_documents`` that its rankers call; ours gave 6."""
    from haystack.utils.misc import _deduplicate_documents

    docs = [
        Document(id="a", content="shock waves one", score=0.2),
        Document(id="b", content="pasta one"),
        Document(id="a", content="shock waves two", score=0.9),
        Document(id="c", content="flutter one", score=0.5),
        Document(id="b", content="pasta two"),
        Document(id="c", content="flutter two", score=0.5),
    ]
    engine = KeywordReranker()
    out = RerankPluginsRanker(model=engine).run(query=QUERY, documents=docs)["documents"]
    assert len(out) == 3 and sorted(d.id for d in out) == ["a", "b", "c"]
    kept = _deduplicate_documents(docs)
    assert [c.text for c in engine.seen] == [d.content for d in kept]
    assert {d.id: d.content for d in out} == {"a": "shock waves two", "b": "pasta one", "c": "flutter one"}
    again = asyncio.run(RerankPluginsRanker(model=KeywordReranker()).run_async(query=QUERY, documents=docs))
    assert [(d.id, d.content, d.score) for d in again["documents"]] == [(d.id, d.content, d.score) for d in out]


def test_wrong_document_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="haystack Document"):
        RerankPluginsRanker(model=KeywordReranker()).run(query=QUERY, documents=["text"])  # type: ignore[list-item]


@pytest.mark.slow
def test_parity_minilm_by_name() -> None:
    ranker = RerankPluginsRanker(model="minilm")  # the real bundled model, loaded once by name in run()
    out = ranker.run(query=QUERY, documents=_docs())["documents"]
    bare = ranker._live().rerank(QUERY, sample_candidates())
    assert type(ranker._live()).__name__ == "EmbeddingReranker"
    _check_parity(bare, out)
    _check_parity(bare, asyncio.run(ranker.run_async(query=QUERY, documents=_docs()))["documents"])
