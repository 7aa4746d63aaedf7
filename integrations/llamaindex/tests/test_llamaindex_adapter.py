"""RerankPluginsRerank: conformance through LlamaIndex, parity with the bare engine, events, host-specific input."""

from __future__ import annotations

import asyncio
import base64
import copy
import os
from typing import Any

import pytest
from llama_index.core import Document, MockEmbedding, VectorStoreIndex
from llama_index.core.bridge.pydantic import Field
from llama_index.core.callbacks import CallbackManager, CBEventType, LlamaDebugHandler
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.event_handlers import BaseEventHandler
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.llms import MockLLM
from llama_index.core.response_synthesizers.no_text import NoText
from llama_index.core.schema import ImageDocument, ImageNode, MetadataMode, NodeWithScore, QueryBundle, TextNode
from llama_index.postprocessor.rerank_plugins import RETRIEVAL_SCORE_KEY, RerankPluginsRerank
from llamaindex_host import LlamaIndexHost, to_node

import rerank_plugins.models as models
from rerank_plugins import ConfigError
from rerank_plugins.models import StrategySpec
from rerank_plugins.testing.adapter_kinds import host_conformance
from rerank_plugins.testing.conformance import sample_candidates
from rerank_plugins.testing.rerankers import KeywordReranker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUERY = "What causes shock waves around supersonic aircraft?"


@pytest.fixture(autouse=True)
def keyword_strategy(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test-only strategy name for configuring adapters by name, registered only while a test runs."""
    spec = StrategySpec("keyword", "rerank_plugins.testing.rerankers:KeywordReranker", "test", needs_model=False)
    monkeypatch.setitem(models._STRATEGIES, "keyword", spec)


TestConformanceSync, TestConformanceAsync, TestConformanceListwise = host_conformance(LlamaIndexHost)


def _plain_nodes(n: int = 6) -> list[NodeWithScore]:
    """Nodes without metadata, so the default EMBED view is exactly the text the bare engine sees."""
    return [NodeWithScore(node=TextNode(id_=c.id, text=c.content), score=c.score) for c in sample_candidates(n)]


def _check_parity(bare: Any, nodes: list[NodeWithScore], out: list[NodeWithScore]) -> None:
    assert [n.node.node_id for n in out] == bare.ids
    assert [n.score for n in out] == pytest.approx(bare.scores, abs=1e-6)
    assert all(type(n.score) is float for n in out)
    assert [n.node.metadata["rerank_rank"] for n in out] == [r.rank for r in bare.results]


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize(("top_n", "threshold"), [(None, None), (3, None), (None, 0.3), (2, 0.0)])
def test_parity_with_bare_engine(asynchronous: bool, top_n: int | None, threshold: float | None) -> None:
    engine = KeywordReranker()
    nodes = _plain_nodes()
    bare = engine.rerank(QUERY, sample_candidates(), top_n, threshold)
    post = RerankPluginsRerank(model=engine, top_n=top_n, score_threshold=threshold)
    if asynchronous:
        out = asyncio.run(post.apostprocess_nodes(nodes, query_str=QUERY))
        assert engine.async_calls == 1
    else:
        out = post.postprocess_nodes(nodes, query_str=QUERY)
    _check_parity(bare, nodes, out)


def test_configured_by_name_with_options_built_once(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[tuple[Any, ...]] = []
    real = models.load_reranker  # the one loader behind integration.build_reranker

    def counting(*args: Any, **kwargs: Any) -> Any:
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(models, "load_reranker", counting)
    post = RerankPluginsRerank(model="keyword", options={"reasoning": False}, top_n=2)
    for _ in range(3):
        out = post.postprocess_nodes(_plain_nodes(), query_str=QUERY)
    assert len(calls) == 1
    assert isinstance(post.reranker, KeywordReranker) and post.reranker.reasoning is False
    assert len(out) == 2 and "rerank_reasoning" not in out[0].node.metadata


def test_kind_or_options_with_a_built_reranker_is_an_error() -> None:
    with pytest.raises(ConfigError, match="already-built"):
        RerankPluginsRerank(model=KeywordReranker(), options={"reasoning": False})


def test_new_nodes_inputs_untouched_and_metadata_hidden_from_llm() -> None:
    nodes = [to_node(c) for c in sample_candidates()]
    before = copy.deepcopy([n.model_dump() for n in nodes])
    out = RerankPluginsRerank(model=KeywordReranker(), top_n=4).postprocess_nodes(nodes, query_str=QUERY)
    assert [n.model_dump() for n in nodes] == before
    input_objects = {id(n) for n in nodes} | {id(n.node) for n in nodes}
    for n in out:
        assert id(n) not in input_objects and id(n.node) not in input_objects
        src = next(x for x in nodes if x.node.node_id == n.node.node_id)
        assert n.node.metadata[RETRIEVAL_SCORE_KEY] == src.score
        assert n.node.metadata["source"] == "conformance"
        assert "rerank_reasoning" not in n.node.get_content(metadata_mode=MetadataMode.LLM)
        assert "retrieval_score" not in n.node.get_content(metadata_mode=MetadataMode.EMBED)
        assert "source: conformance" in n.node.get_content(metadata_mode=MetadataMode.LLM)


def test_keep_retrieval_score_false() -> None:
    out = RerankPluginsRerank(model=KeywordReranker(), keep_retrieval_score=False).postprocess_nodes(
        _plain_nodes(), query_str=QUERY
    )
    assert all(RETRIEVAL_SCORE_KEY not in n.node.metadata for n in out)


def test_reasoning_and_window_traces_reach_node_metadata() -> None:
    engine = KeywordReranker()
    bare = engine.rerank(QUERY, sample_candidates())
    out = RerankPluginsRerank(model=engine).postprocess_nodes(_plain_nodes(), query_str=QUERY)
    for n, r in zip(out, bare.results):
        assert n.node.metadata["rerank_reasoning"] == r.reasoning
        assert n.node.metadata["rerank_details"] == dict(r.details)
        (window,) = n.node.metadata["rerank_windows"]
        assert window["input_ids"] == [c.id for c in sample_candidates()]
        assert window["output_ids"] == bare.ids


def test_missing_query_bundle_raises() -> None:
    post = RerankPluginsRerank(model=KeywordReranker())
    with pytest.raises(ValueError, match="query bundle"):
        post.postprocess_nodes(_plain_nodes())
    with pytest.raises(ValueError, match="query bundle"):
        asyncio.run(post.apostprocess_nodes(_plain_nodes()))


def test_empty_node_list_returns_empty_without_scoring() -> None:
    engine = KeywordReranker()
    post = RerankPluginsRerank(model=engine)
    assert post.postprocess_nodes([], query_str=QUERY) == []
    assert asyncio.run(post.apostprocess_nodes([], query_str=QUERY)) == []
    assert engine.sync_calls == engine.async_calls == 0


def test_node_without_content_is_ranked_once() -> None:
    nodes = [*_plain_nodes(3), NodeWithScore(node=TextNode(id_="empty", text=""), score=9.0)]
    out = RerankPluginsRerank(model=KeywordReranker()).postprocess_nodes(nodes, query_str=QUERY)
    assert sorted(n.node.node_id for n in out) == sorted(n.node.node_id for n in nodes)
    assert next(n for n in out if n.node.node_id == "empty").score == 0.0


def test_top_n_zero_none_and_negative() -> None:
    engine = KeywordReranker()
    assert RerankPluginsRerank(model=engine, top_n=0).postprocess_nodes(_plain_nodes(), query_str=QUERY) == []
    assert len(RerankPluginsRerank(model=engine).postprocess_nodes(_plain_nodes(), query_str=QUERY)) == 6
    with pytest.raises(ValueError):
        RerankPluginsRerank(model=engine, top_n=-1)


def test_threshold_zero_is_honoured() -> None:
    engine = KeywordReranker(offset=-0.5)
    bare = engine.rerank(QUERY, sample_candidates())
    assert any(s < 0 for s in bare.scores) and any(s >= 0 for s in bare.scores)
    out = RerankPluginsRerank(model=engine, score_threshold=0.0).postprocess_nodes(_plain_nodes(), query_str=QUERY)
    assert [n.node.node_id for n in out] == [r.id for r in bare.results if r.score >= 0.0]


def test_duplicate_node_ids_all_kept() -> None:
    nodes = [NodeWithScore(node=TextNode(id_="same", text=t)) for t in ("shock waves", "cooking pasta")]
    out = RerankPluginsRerank(model=KeywordReranker()).postprocess_nodes(nodes, query_str=QUERY)
    assert [n.node.text for n in out] == ["shock waves", "cooking pasta"]


def test_wrong_node_type_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="NodeWithScore"):
        RerankPluginsRerank(model=KeywordReranker()).postprocess_nodes([TextNode(text="x")], query_str=QUERY)


def test_images_are_carried_to_candidates() -> None:
    engine = KeywordReranker()
    nodes = [
        NodeWithScore(node=ImageNode(id_="b64", image=base64.b64encode(b"\x89PNG-bytes").decode())),
        NodeWithScore(node=ImageNode(id_="path", image_path="/data/plot.png", text="a plot of shock waves")),
        NodeWithScore(node=TextNode(id_="text", text="shock waves")),
        NodeWithScore(node=ImageDocument(id_="doc", image=base64.b64encode(b"GIF89a").decode(), text="caption")),
    ]
    bundle = QueryBundle(query_str=QUERY, image_path="/data/query.png")
    out = RerankPluginsRerank(model=engine).postprocess_nodes(nodes, query_bundle=bundle)
    seen = {c.id: c for c in engine.seen}
    assert seen["b64"].image == b"\x89PNG-bytes" and seen["b64"].text is None
    assert seen["path"].image == "/data/plot.png" and seen["path"].text == "a plot of shock waves"
    assert seen["text"].image is None
    assert seen["doc"].image == b"GIF89a" and seen["doc"].text == "caption"
    assert len(out) == 4


class _Collect(BaseEventHandler):
    events: list[Any] = Field(default_factory=list)

    @classmethod
    def class_name(cls) -> str:
        return "Collect"

    def handle(self, event: Any, **kwargs: Any) -> None:
        self.events.append(event)


@pytest.mark.parametrize("asynchronous", [False, True])
def test_emits_rerank_events_and_callback_span(asynchronous: bool) -> None:
    root = get_dispatcher()
    handler = _Collect()
    debug = LlamaDebugHandler()
    root.add_event_handler(handler)
    try:
        post = RerankPluginsRerank(model=KeywordReranker(), top_n=2, callback_manager=CallbackManager([debug]))
        run = post.apostprocess_nodes if asynchronous else post.postprocess_nodes
        out = run(_plain_nodes(), query_str=QUERY)
        out = asyncio.run(out) if asynchronous else out
    finally:
        root.event_handlers.remove(handler)
    starts = [e for e in handler.events if isinstance(e, ReRankStartEvent)]
    ends = [e for e in handler.events if isinstance(e, ReRankEndEvent)]
    assert len(starts) == 1 and starts[0].top_n == 2 and starts[0].model_name == "keyword"
    assert len(ends) == 1 and [n.node.node_id for n in ends[0].nodes] == [n.node.node_id for n in out]
    (pair,) = debug.get_event_pairs(CBEventType.RERANKING)
    assert pair[1].payload is not None


def test_in_a_query_engine_and_retriever() -> None:
    docs = [Document(text=c.content, id_=c.id) for c in sample_candidates()]
    index = VectorStoreIndex.from_documents(docs, embed_model=MockEmbedding(embed_dim=8))
    post = RerankPluginsRerank(model=KeywordReranker(), top_n=3)
    # No LLM offline: a NoText synthesizer returns the (reranked) source nodes without generating an answer.
    engine = index.as_query_engine(
        similarity_top_k=6, node_postprocessors=[post], response_synthesizer=NoText(llm=MockLLM()), llm=MockLLM()
    )
    response = engine.query(QUERY)
    sources = response.source_nodes
    assert len(sources) == 3
    assert [n.score for n in sources] == sorted((n.score for n in sources), reverse=True)
    assert all("rerank_reasoning" in n.node.metadata for n in sources)
    retrieved = index.as_retriever(similarity_top_k=6).retrieve(QUERY)
    assert [n.node.node_id for n in sources] == [
        n.node.node_id for n in post.postprocess_nodes(retrieved, query_str=QUERY)
    ]


@pytest.mark.slow
def test_parity_minilm_by_name() -> None:
    post = RerankPluginsRerank(model="minilm")  # the real bundled model, loaded once by name
    bare = post.reranker.rerank(QUERY, sample_candidates())
    assert type(post.reranker).__name__ == "EmbeddingReranker"
    _check_parity(bare, _plain_nodes(), post.postprocess_nodes(_plain_nodes(), query_str=QUERY))
    out_async = asyncio.run(post.apostprocess_nodes(_plain_nodes(), query_str=QUERY))
    _check_parity(bare, _plain_nodes(), out_async)


# ---------------------------------------------------------------------------------------------- issue 13
@pytest.mark.parametrize("asynchronous", [False, True])
def test_every_start_event_has_its_end_event(asynchronous: bool) -> None:
    """An empty node list and a reranker that raises still close the ReRankStartEvent; a missing query is refused
    before any event is sent."""

    class Broken(KeywordReranker):
        def _score(self, query: Any, candidates: Any) -> Any:
            raise RuntimeError("model failed")

        async def _ascore(self, query: Any, candidates: Any) -> Any:
            raise RuntimeError("model failed")

    def call(post: RerankPluginsRerank, nodes: list[NodeWithScore], **kwargs: Any) -> Any:
        if asynchronous:
            return asyncio.run(post.apostprocess_nodes(nodes, **kwargs))
        return post.postprocess_nodes(nodes, **kwargs)

    root = get_dispatcher()
    handler = _Collect()
    root.add_event_handler(handler)
    try:
        assert call(RerankPluginsRerank(model=KeywordReranker()), [], query_str=QUERY) == []
        with pytest.raises(ValueError, match="query bundle"):
            call(RerankPluginsRerank(model=KeywordReranker()), _plain_nodes())
        with pytest.raises(RuntimeError, match="model failed"):
            call(RerankPluginsRerank(model=Broken()), _plain_nodes(), query_str=QUERY)
    finally:
        root.event_handlers.remove(handler)
    kinds = [type(e).__name__ for e in handler.events if isinstance(e, (ReRankStartEvent, ReRankEndEvent))]
    assert kinds == ["ReRankStartEvent", "ReRankEndEvent"] * 2


def test_unknown_fields_are_refused_like_the_builtin_reranker() -> None:
    """``SentenceTransformerRerank(top_k=...)`` raises; so do we, naming the field and the one meant."""
    hint = r"no field\(s\) device, top_k \(device: use options=.*top_k: use top_n\)"
    with pytest.raises(ConfigError, match=hint):
        RerankPluginsRerank(model="keyword", top_k=2, device="cpu")
    with pytest.raises(ValueError, match="top_k"):  # model_validate too
        RerankPluginsRerank.model_validate({"model": "keyword", "top_k": 2})


def test_to_dict_of_a_built_reranker_is_refused_by_name_it_round_trips(tmp_path: Any) -> None:
    with pytest.raises(ConfigError, match="cannot be serialised"):
        RerankPluginsRerank(model=KeywordReranker()).to_dict()
    with pytest.raises(ConfigError, match="cannot be serialised"):
        RerankPluginsRerank(model=KeywordReranker()).to_json()
    post = RerankPluginsRerank(model="keyword", options={"offset": 1.0}, top_n=3, query_prefix="q: ",
                               instruction="judge")
    data = post.to_dict()
    assert data["model"] == "keyword" and data["query_prefix"] == "q: " and data["instruction"] == "judge"
    again = RerankPluginsRerank.from_dict(data)
    assert again.reranker.offset == 1.0 and again.reranker.instruction == "judge"
    nodes = _plain_nodes()
    assert [(n.node.node_id, n.score) for n in again.postprocess_nodes(nodes, query_str=QUERY)] == [
        (n.node.node_id, n.score) for n in post.postprocess_nodes(nodes, query_str=QUERY)
    ]


def test_path_model_serialises_as_str() -> None:
    from pathlib import Path

    from rerank_plugins.testing.tiny_models import minilm_folder

    pytest.importorskip("sentence_transformers")
    post = RerankPluginsRerank(model=Path(minilm_folder()), kind="embedding")
    assert post.to_dict()["model"] == str(minilm_folder())
    assert RerankPluginsRerank.from_json(post.to_json()).model == str(minilm_folder())


def test_pickle_keeps_a_built_reranker_as_configured() -> None:
    """LlamaIndex's BaseComponent.__setstate__ re-runs __init__(model=<name>): a built reranker must not be
    replaced by a default one of the same name."""
    import pickle

    post = RerankPluginsRerank(model=KeywordReranker(offset=1.0), top_n=3)
    again = pickle.loads(pickle.dumps(post))
    assert again.reranker.offset == 1.0 and again.top_n == 3
    with pytest.raises(ConfigError, match="cannot be serialised"):
        again.to_dict()
    nodes = _plain_nodes()
    assert [(n.node.node_id, n.score) for n in again.postprocess_nodes(nodes, query_str=QUERY)] == [
        (n.node.node_id, n.score) for n in post.postprocess_nodes(nodes, query_str=QUERY)
    ]
