"""Every core reranker kind through the LlamaIndex adapter: same order, scores, reasoning and traces as bare."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import NodeWithScore, TextNode
from llama_index.postprocessor.rerank_plugins import RerankPluginsRerank

from rerank_plugins.testing.conformance import sample_candidates
from rerank_plugins.testing.kinds import LLM_KINDS, scripted_reranker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUERY = "What causes shock waves around supersonic aircraft?"
WINDOWED = {"listwise", "first", "reasoning"}


@pytest.fixture(scope="module")
def tiny_dirs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder, build_tiny_sentence_transformer

    return {
        "cross-encoder": build_tiny_cross_encoder(tmp_path_factory.mktemp("llamaindex-ce")),
        "embedding": build_tiny_sentence_transformer(tmp_path_factory.mktemp("llamaindex-st")),
    }


def _scripted(kind: str) -> Any:
    # small windows, so a list of six needs several overlapping windows
    return scripted_reranker(kind, **({"window_size": 4, "stride": 2} if kind in WINDOWED else {}))


def _check(bare: Any, out: list[Any]) -> None:
    assert [n.node.node_id for n in out] == bare.ids
    assert [n.score for n in out] == pytest.approx(bare.scores, abs=1e-6)
    for item, r in zip(out, bare.results):
        meta = item.node.metadata
        assert meta["rerank_rank"] == r.rank
        assert meta.get("rerank_reasoning") == r.reasoning
        windows = [t for t in bare.traces if r.id in t.input_ids]
        assert [w["output_ids"] for w in meta.get("rerank_windows", [])] == [list(t.output_ids) for t in windows]


def _run(post: Any, asynchronous: bool) -> list[Any]:
    nodes = [NodeWithScore(node=TextNode(id_=c.id, text=c.content), score=c.score) for c in sample_candidates()]
    if asynchronous:
        return asyncio.run(post.apostprocess_nodes(nodes, query_str=QUERY))  # type: ignore[no-any-return]
    return post.postprocess_nodes(nodes, query_str=QUERY)  # type: ignore[no-any-return]


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("kind", LLM_KINDS)
def test_llm_kinds_match_the_bare_engine(kind: str, asynchronous: bool) -> None:
    reranker = _scripted(kind)
    bare = reranker.rerank(QUERY, sample_candidates(), top_k=5)
    out = _run(RerankPluginsRerank(model=reranker, top_n=5), asynchronous)
    _check(bare, out)
    if kind == "reasoning":
        assert out[0].node.metadata.get("rerank_reasoning")
    if kind in WINDOWED:
        assert len(bare.traces) > 1


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("kind", ["cross-encoder", "embedding"])
def test_model_kinds_by_name_match_the_bare_engine(kind: str, asynchronous: bool, tiny_dirs: dict[str, Path]) -> None:
    from rerank_plugins import load_reranker

    bare = load_reranker(str(tiny_dirs[kind]), kind=kind).rerank(QUERY, sample_candidates(), top_k=5)
    out = _run(RerankPluginsRerank(model=str(tiny_dirs[kind]), kind=kind, top_n=5), asynchronous)
    _check(bare, out)
