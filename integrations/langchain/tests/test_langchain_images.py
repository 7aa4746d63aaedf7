"""Page images through the LangChain adapter into the multimodal strategies (tiny random models, offline).

LangChain documents carry images in metadata: ``"image"`` (a path, bytes or PIL image set by the application)
or ``"image_path"`` (the key of ``ImageCaptionLoader``); an empty ``page_content`` makes an image-only candidate.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from langchain_core.documents import Document
from langchain_rerank_plugins import RerankPluginsCompressor

from rerank_plugins.testing.adapter_kinds import page_fixtures
from rerank_plugins.testing.pages import PageSet

rerankers, pages = page_fixtures("lc")


def _documents(pages: PageSet) -> list[Document]:
    docs = []
    for i, c in enumerate(pages.candidates):
        if i % 2 == 0:  # ImageCaptionLoader style: a caption and the image path
            docs.append(Document(id=c.id, page_content=f"page {c.id}", metadata={"image_path": str(c.image)}))
        else:  # image bytes in metadata, no text
            docs.append(Document(id=c.id, page_content="", metadata={"image": Path(str(c.image)).read_bytes()}))
    docs.append(Document(id="text-only", page_content="Shock waves on a flat plate."))
    return docs


@pytest.mark.parametrize("kind", ["vision-yes-no", "vision-reasoning", "clip"])
@pytest.mark.parametrize("asynchronous", [False, True])
def test_image_documents_flow_through_each_strategy(
    kind: str, asynchronous: bool, rerankers: dict[str, Any], pages: PageSet
) -> None:
    import asyncio

    docs = _documents(pages)
    compressor = RerankPluginsCompressor(model=rerankers[kind])
    if asynchronous:
        out = asyncio.run(compressor.acompress_documents(docs, pages.query))
    else:
        out = compressor.compress_documents(docs, pages.query)
    assert sorted(d.id for d in out) == sorted(d.id for d in docs)
    assert all(type(d.metadata["relevance_score"]) is float for d in out)
    by_id = {d.id: d for d in docs}
    for d in out:
        assert d.page_content == by_id[d.id].page_content
        kept = {k: v for k, v in d.metadata.items() if not k.startswith(("rerank_", "relevance_"))}
        assert kept == by_id[d.id].metadata
    if kind != "vision-reasoning":
        modality = {d.id: d.metadata["rerank_details"]["modality"] for d in out}
        assert modality.pop("text-only") == "text"
        expected = {c.id: ("image+text" if i % 2 == 0 else "image") for i, c in enumerate(pages.candidates)}
        assert modality == expected
