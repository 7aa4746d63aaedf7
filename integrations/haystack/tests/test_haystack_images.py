"""Page images through the Haystack adapter into the multimodal strategies (tiny random models, offline).

Haystack carries images as a ``ByteStream`` blob with an ``image/*`` mime type, or, as ``ImageFileToDocument``
and ``DocumentToImageContent`` do, as an image file path in ``meta["file_path"]`` (resolved under ``root_path``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from haystack import Document
from haystack.dataclasses import ByteStream
from haystack_integrations.components.rankers.rerank_plugins import RerankPluginsRanker

from rerank_plugins.errors import InvalidInputError
from rerank_plugins.testing.adapter_kinds import page_fixtures
from rerank_plugins.testing.pages import PageSet

rerankers, pages = page_fixtures("hs")


def _documents(pages: PageSet) -> list[Document]:
    docs = []
    for i, c in enumerate(pages.candidates):
        path = Path(str(c.image))
        if i % 2 == 0:
            docs.append(Document(id=c.id, blob=ByteStream(data=path.read_bytes(), mime_type="image/png")))
        else:  # ImageFileToDocument stores the file name; root_path says where it lives
            docs.append(Document(id=c.id, meta={"file_path": path.name, "gain": c.metadata["gain"]}))
    docs.append(Document(id="text-only", content="Shock waves on a flat plate.", meta={"file_path": "notes.txt"}))
    return docs


@pytest.mark.parametrize("kind", ["vision-yes-no", "vision-reasoning", "clip"])
def test_image_documents_flow_through_each_strategy(kind: str, rerankers: dict[str, Any], pages: PageSet) -> None:
    docs = _documents(pages)
    root = str(Path(str(pages.candidates[0].image)).parent)
    ranker = RerankPluginsRanker(model=rerankers[kind], root_path=root)
    out = ranker.run(query=pages.query, documents=docs)["documents"]
    assert sorted(d.id for d in out) == sorted(d.id for d in docs)
    assert all(type(d.score) is float for d in out)
    assert [d.meta["rerank_rank"] for d in out] == list(range(1, len(docs) + 1))
    by_id = {d.id: d for d in docs}
    for d in out:  # the same documents, only score and meta extended
        assert d.blob == by_id[d.id].blob and d.content == by_id[d.id].content
    if kind != "vision-reasoning":
        modality = {d.id: d.meta["rerank_details"]["modality"] for d in out}
        assert modality.pop("text-only") == "text"
        assert set(modality.values()) == {"image"}


def test_image_path_under_root_path_and_serialisation(rerankers: dict[str, Any], pages: PageSet) -> None:
    docs = _documents(pages)
    with pytest.raises(InvalidInputError, match="does not exist"):  # file names alone, no root_path
        RerankPluginsRanker(model=rerankers["vision-yes-no"]).run(query=pages.query, documents=docs)
    data = RerankPluginsRanker(model="some/model", kind="vision-yes-no", root_path="/pages").to_dict()
    assert data["init_parameters"]["root_path"] == "/pages"
    assert data["init_parameters"]["file_path_meta_field"] == "file_path"
    assert RerankPluginsRanker.from_dict(data).root_path == "/pages"
