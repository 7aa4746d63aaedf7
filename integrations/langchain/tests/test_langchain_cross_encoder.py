"""Issue 21 item 19: a LangChain ``BaseCrossEncoder`` as the model, and ``prefix_metadata`` as Flashrank has it.

References: LangChain's ``CrossEncoderReranker`` (langchain-classic 1.0.8) on the same ``BaseCrossEncoder``, and
langchain-community 0.4.2's ``FlashrankRerank`` field (``prefix_metadata: str = ""``, put before the metadata keys
it adds).
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import pytest
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import Document
from langchain_rerank_plugins import RerankPluginsCompressor

from rerank_plugins import InvalidInputError
from rerank_plugins.testing.rerankers import KeywordReranker

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

QUERY = "what causes shock waves around supersonic aircraft"
TEXTS = [
    "Cooking pasta requires boiling salted water.",
    "Shock waves form when an aircraft exceeds the speed of sound.",
    "Wing flutter couples bending and torsion.",
    "Supersonic aircraft make shock waves.",
    "The stock market fell.",
]


def _docs() -> list[Document]:
    return [Document(id=f"d{i}", page_content=t, metadata={"n": i}) for i, t in enumerate(TEXTS)]


class OverlapCrossEncoder(BaseCrossEncoder):
    """A pure-Python cross-encoder: shared words, with ties (two documents share no word with the query)."""

    def __init__(self) -> None:
        self.calls = 0

    def score(self, text_pairs: list[tuple[str, str]]) -> list[float]:
        self.calls += 1
        return [float(len(set(q.lower().split()) & set(d.lower().strip(".").split()))) for q, d in text_pairs]


def _reference_order(model: BaseCrossEncoder, top_n: int) -> list[str | None]:
    from langchain_classic.retrievers.document_compressors import CrossEncoderReranker

    return [d.id for d in CrossEncoderReranker(model=model, top_n=top_n).compress_documents(_docs(), QUERY)]


@pytest.mark.parametrize("asynchronous", [False, True])
def test_a_base_cross_encoder_object_is_a_model(asynchronous: bool) -> None:
    model = OverlapCrossEncoder()
    compressor = RerankPluginsCompressor(model=model)
    call = compressor.acompress_documents(_docs(), QUERY) if asynchronous else None
    out = list(asyncio.run(call) if call is not None else compressor.compress_documents(_docs(), QUERY))
    expected_scores = model.score([(QUERY, t) for t in TEXTS])
    assert [d.id for d in out] == _reference_order(model, top_n=len(TEXTS))  # same order, ties included
    assert {d.id: d.metadata["relevance_score"] for d in out} == {f"d{i}": s for i, s in enumerate(expected_scores)}
    assert compressor.model == "langchain-cross-encoder:OverlapCrossEncoder"
    top3 = RerankPluginsCompressor(model=model, top_n=3).compress_documents(_docs(), QUERY)
    assert [d.id for d in top3] == _reference_order(model, top_n=3)


def test_huggingface_cross_encoder_gives_langchain_s_scores_and_order(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    community = pytest.importorskip("langchain_community.cross_encoders")
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    model = community.HuggingFaceCrossEncoder(
        model_name=str(build_tiny_cross_encoder(tmp_path)), model_kwargs={"device": "cpu"}
    )
    out = RerankPluginsCompressor(model=model, top_n=3).compress_documents(_docs(), QUERY)
    assert [d.id for d in out] == _reference_order(model, top_n=3)
    scores = dict(zip([f"d{i}" for i in range(len(TEXTS))], model.score([(QUERY, t) for t in TEXTS])))
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx([float(scores[d.id]) for d in out])
    assert all(type(d.metadata["relevance_score"]) is float for d in out)


def test_an_image_only_document_is_refused_by_a_text_cross_encoder() -> None:
    docs = [Document(page_content="", metadata={"image": b"\x89PNG"}), *_docs()]
    with pytest.raises(InvalidInputError, match="has no text"):
        RerankPluginsCompressor(model=OverlapCrossEncoder()).compress_documents(docs, QUERY)


def test_prefix_metadata_is_put_before_every_added_key() -> None:
    community = pytest.importorskip("langchain_community.document_compressors.flashrank_rerank")
    field = community.FlashrankRerank.model_fields["prefix_metadata"]
    ours = RerankPluginsCompressor.model_fields["prefix_metadata"]
    assert (field.annotation, field.default) == (ours.annotation, ours.default) == (str, "")

    out = RerankPluginsCompressor(model=KeywordReranker(), prefix_metadata="rp_").compress_documents(_docs(), QUERY)
    plain = RerankPluginsCompressor(model=KeywordReranker()).compress_documents(_docs(), QUERY)
    for got, base in zip(out, plain):
        added = {k: v for k, v in base.metadata.items() if k != "n"}
        assert {"relevance_score", "rerank_rank"} <= set(added)
        assert got.metadata == {"n": base.metadata["n"], **{f"rp_{k}": v for k, v in added.items()}}
        assert got.id == base.id
