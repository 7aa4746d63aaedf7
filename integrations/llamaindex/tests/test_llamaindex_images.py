"""Page images through the LlamaIndex adapter into the multimodal strategies (tiny random models, offline).

``ImageNode`` is LlamaIndex's image carrier: a page given by ``image_path`` or as base64 ``image`` reaches the
reranker as an image candidate, a ``TextNode`` as a text one; every node comes back exactly once.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import pytest
from llama_index.core.schema import ImageNode, NodeWithScore, TextNode
from llama_index.postprocessor.rerank_plugins import RerankPluginsRerank

from rerank_plugins.testing.adapter_kinds import page_fixtures
from rerank_plugins.testing.pages import PageSet

rerankers, pages = page_fixtures("li")


def _nodes(pages: PageSet) -> list[NodeWithScore]:
    nodes = []
    for i, c in enumerate(pages.candidates):
        if i % 2 == 0:  # a page file
            node: Any = ImageNode(id_=c.id, image_path=str(c.image), metadata={"gain": c.metadata["gain"]})
        else:  # the same page inline, base64-encoded, as LlamaIndex image readers store it
            data = base64.b64encode(Path(str(c.image)).read_bytes()).decode()
            node = ImageNode(id_=c.id, image=data, image_mimetype="image/png")
        nodes.append(NodeWithScore(node=node, score=float(len(pages.candidates) - i)))
    nodes.append(NodeWithScore(node=TextNode(id_="text-only", text="Shock waves on a flat plate."), score=0.0))
    return nodes


@pytest.mark.parametrize("kind", ["vision-yes-no", "vision-reasoning", "clip"])
def test_image_nodes_flow_through_each_strategy(kind: str, rerankers: dict[str, Any], pages: PageSet) -> None:
    nodes = _nodes(pages)
    post = RerankPluginsRerank(model=rerankers[kind])
    out = post.postprocess_nodes(nodes, query_str=pages.query)
    assert sorted(n.node.node_id for n in out) == sorted(n.node.node_id for n in nodes)
    assert all(type(n.score) is float for n in out)
    assert [n.node.metadata["rerank_rank"] for n in out] == list(range(1, len(nodes) + 1))
    assert all(isinstance(n.node, ImageNode) for n in out if n.node.node_id != "text-only")
    if kind != "vision-reasoning":
        modality = {n.node.node_id: n.node.metadata["rerank_details"]["modality"] for n in out}
        assert modality.pop("text-only") == "text"
        # metadata_mode=EMBED: a node's metadata ("gain: 3") is part of its content, so the page files that carry
        # metadata are image+text candidates and the bare base64 pages image-only ones
        expected = {c.id: ("image+text" if i % 2 == 0 else "image") for i, c in enumerate(pages.candidates)}
        assert modality == expected
    bare = rerankers[kind].rerank(pages.query, post._start(nodes, _bundle(pages.query))[1])
    assert [n.node.node_id for n in out] == bare.ids


def _bundle(query: str) -> Any:
    from llama_index.core.schema import QueryBundle

    return QueryBundle(query_str=query)
