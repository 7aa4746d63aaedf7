"""``RerankPluginsRerank``: a LlamaIndex ``BaseNodePostprocessor`` over a rerank-plugins reranker.

Only conversion lives here: nodes -> :class:`rerank_plugins.Candidate` and the ranked list -> new
``NodeWithScore`` objects. Ranking, ``top_n`` and ``score_threshold`` are done by the reranker itself.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from io import BytesIO
from typing import Any

from llama_index.core.bridge.pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from llama_index.core.callbacks import CBEventType, EventPayload
from llama_index.core.instrumentation import get_dispatcher
from llama_index.core.instrumentation.events.rerank import ReRankEndEvent, ReRankStartEvent
from llama_index.core.postprocessor.types import BaseNodePostprocessor
from llama_index.core.schema import BaseNode, ImageNode, MetadataMode, NodeWithScore, QueryBundle

from rerank_plugins import Candidate, ConfigError, Query, RankedList, Reranker
from rerank_plugins.integration import affixed, build_reranker, candidate_ids, model_name, result_metadata

dispatcher = get_dispatcher(__name__)

#: Metadata key holding the node's score from before reranking (the retriever's), when ``keep_retrieval_score``.
RETRIEVAL_SCORE_KEY = "retrieval_score"


def _image_of(node: BaseNode) -> Any:
    """The node's image (bytes or a path) for multimodal rerankers, resolved the way LlamaIndex does, or None."""
    # ImageNode, or a node with an image resource that LlamaIndex can resolve (ImageDocument); __dict__ is the
    # fast way to read a pydantic field that most node classes do not have
    if not (isinstance(node, ImageNode) or node.__dict__.get("image_resource") is not None):
        return None
    resolve = getattr(node, "resolve_image", None)
    if resolve is None:
        return None
    image = resolve()
    return image.getvalue() if isinstance(image, BytesIO) else image


class RerankPluginsRerank(BaseNodePostprocessor):
    """Rerank retrieved nodes with any rerank-plugins strategy, configured by name or given as a built reranker.

    ``RerankPluginsRerank(model="minilm", top_n=5)`` loads the reranker once, here; so does
    ``RerankPluginsRerank(model="path/or/hub-id", kind="cross-encoder", options={"max_length": 256})``.
    ``RerankPluginsRerank(model=reranker)`` uses an already-built :class:`rerank_plugins.Reranker` as is.

    Returns new ``NodeWithScore`` objects (the input nodes are never modified) scored by the reranker, best
    first; their nodes are copies whose metadata gains ``rerank_rank``, ``retrieval_score`` (the score the node
    came in with) and, when the strategy produces them, ``rerank_reasoning``, ``rerank_details`` and
    ``rerank_windows``. These keys are excluded from the LLM and embedding views of the node.

    ``model`` may be a ``pathlib.Path`` (stored as ``str``). ``query_prefix`` / ``document_prefix`` are put before
    the query / each node's text (``metadata_mode`` view) as the reranker reads them (e.g. ``"query: "`` for
    E5-style models); ``instruction`` is passed to a reranker built by name as its ``instruction=`` option (the
    task instruction of LLM rerankers and recipes). Unknown fields are refused, like LlamaIndex's own rerankers
    (``top_n``, not ``top_k``; ``options={"device": ...}``, not ``device=``). A postprocessor built from a
    :class:`rerank_plugins.Reranker` object cannot be serialised (``to_dict`` raises ``ConfigError``): configure it
    by ``model``, ``kind`` and ``options`` to save it.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    model: str = Field(default="minilm", description="Model or strategy name, path or hub id, or a built reranker.")
    kind: str | None = Field(default=None, description="Strategy kind; None reads it from the model or registry.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for load_reranker.")
    top_n: int | None = Field(default=None, ge=0, description="Keep the best n nodes; None keeps all, 0 none.")
    score_threshold: float | None = Field(default=None, description="Keep nodes scoring >= this; None keeps all.")
    keep_retrieval_score: bool = Field(default=True, description="Store the incoming score in metadata.")
    metadata_mode: MetadataMode = Field(default=MetadataMode.EMBED, description="Node text seen by the reranker.")
    query_prefix: str = Field(default="", description="Text put before the query the reranker reads.")
    document_prefix: str = Field(default="", description="Text put before each node's text the reranker reads.")
    instruction: str | None = Field(
        default=None, description="Task instruction passed to the reranker's instruction= option (LLM recipes)."
    )

    _reranker: Reranker = PrivateAttr()
    _built: bool = PrivateAttr(default=False)

    def __init__(self, model: str | os.PathLike[str] | Reranker = "minilm", **kwargs: Any) -> None:
        unknown = sorted(set(kwargs) - set(type(self).model_fields))
        if unknown:
            hints = {"top_k": "top_n", "device": "options={'device': ...}"}
            said = "; ".join(f"{k}: use {hints[k]}" for k in unknown if k in hints)
            raise ConfigError(
                f"{type(self).__name__} has no field(s) {', '.join(unknown)}"
                + (f" ({said})" if said else "")
                + f"; fields: {', '.join(sorted(type(self).model_fields))}"
            )
        super().__init__(model=model_name(model), **kwargs)  # type: ignore[call-arg]
        self._reranker = build_reranker(model, self.kind, self.options, instruction=self.instruction)
        self._built = isinstance(model, Reranker)

    def __setstate__(self, state: dict[str, Any]) -> None:
        """Unpickle with the pickled reranker itself. LlamaIndex's ``BaseComponent.__setstate__`` calls
        ``__init__(**fields)``, which would rebuild a reranker from ``model`` (for a built reranker only its
        name: a default one, or none)."""
        private = state.get("__pydantic_private__") or {}
        if private.get("_reranker") is not None:
            BaseModel.__setstate__(self, state)
        else:
            super().__setstate__(state)

    def to_dict(self, **kwargs: Any) -> dict[str, Any]:
        """LlamaIndex serialisation; refused for a postprocessor built from a reranker object (it would not load)."""
        if self._built:
            raise ConfigError(
                f"{type(self).__name__} was given a built {self.model!r} reranker object, which cannot be "
                "serialised; configure it by model=, kind= and options= to save it"
            )
        return super().to_dict(**kwargs)

    @classmethod
    def class_name(cls) -> str:
        return "RerankPluginsRerank"

    @property
    def reranker(self) -> Reranker:
        """The rerank-plugins reranker doing the work."""
        return self._reranker

    # ------------------------------------------------------------------ conversion
    def _start(
        self, nodes: Sequence[NodeWithScore], query_bundle: QueryBundle | None
    ) -> tuple[Query, list[Candidate]] | None:
        for i, n in enumerate(nodes):
            if not isinstance(n, NodeWithScore):
                raise TypeError(f"node at position {i} must be a NodeWithScore, got {type(n).__name__}")
        if query_bundle is None:  # refused before ReRankStartEvent, so every start event has its end event
            raise ValueError("Missing query bundle: call postprocess_nodes(nodes, query_bundle=...) or query_str=...")
        top_n = self.top_n if self.top_n is not None else len(nodes)
        dispatcher.event(ReRankStartEvent(query=query_bundle, nodes=list(nodes), top_n=top_n, model_name=self.model))
        if not nodes:
            dispatcher.event(ReRankEndEvent(nodes=[]))
            return None
        ids = candidate_ids([n.node.node_id for n in nodes])
        candidates = []
        for cid, n in zip(ids, nodes):
            image = _image_of(n.node)
            text: str | None = n.node.get_content(metadata_mode=self.metadata_mode)
            if text is not None and (text or image is None):
                text = affixed(text, self.document_prefix)
            candidates.append(
                Candidate(id=cid, text=None if image is not None and not text else text,
                          metadata=n.node.metadata, score=n.score, image=image)
            )
        query_text = query_bundle.query_str
        if query_text.strip():  # an empty query stays empty, so the reranker refuses it
            query_text = affixed(query_text, self.query_prefix)
        return Query(text=query_text, image=query_bundle.image_path), candidates

    def _finish(self, nodes: Sequence[NodeWithScore], ranked: RankedList) -> list[NodeWithScore]:
        out = []
        for item, extra in zip(ranked.results, result_metadata(ranked)):
            src = nodes[item.original_position]
            if self.keep_retrieval_score:
                extra[RETRIEVAL_SCORE_KEY] = src.score
            node = src.node
            hidden = [k for k in extra if k not in node.excluded_llm_metadata_keys]
            hidden_embed = [k for k in extra if k not in node.excluded_embed_metadata_keys]
            copy = node.model_copy(update={
                "metadata": {**node.metadata, **extra},
                "excluded_llm_metadata_keys": [*node.excluded_llm_metadata_keys, *hidden],
                "excluded_embed_metadata_keys": [*node.excluded_embed_metadata_keys, *hidden_embed],
            })
            out.append(NodeWithScore(node=copy, score=item.score))
        return out

    def _payload(self, nodes: Sequence[NodeWithScore], query: Query) -> dict[str, Any]:
        return {
            EventPayload.NODES: nodes,
            EventPayload.MODEL_NAME: self.model,
            EventPayload.QUERY_STR: query.text,
            EventPayload.TOP_K: self.top_n,
        }

    # ------------------------------------------------------------------ BaseNodePostprocessor
    def _postprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        started = self._start(nodes, query_bundle)
        if started is None:
            return []
        query, candidates = started
        new_nodes: list[NodeWithScore] = []
        try:
            with self.callback_manager.event(CBEventType.RERANKING, payload=self._payload(nodes, query)) as event:
                ranked = self._reranker.rerank(
                    query, candidates, top_k=self.top_n, score_threshold=self.score_threshold
                )
                new_nodes = self._finish(nodes, ranked)
                event.on_end(payload={EventPayload.NODES: new_nodes})
        finally:  # the end event follows its start event even when the reranker raises
            dispatcher.event(ReRankEndEvent(nodes=new_nodes))
        return new_nodes

    @dispatcher.span
    async def _apostprocess_nodes(
        self, nodes: list[NodeWithScore], query_bundle: QueryBundle | None = None
    ) -> list[NodeWithScore]:
        started = self._start(nodes, query_bundle)
        if started is None:
            return []
        query, candidates = started
        new_nodes: list[NodeWithScore] = []
        try:
            with self.callback_manager.event(CBEventType.RERANKING, payload=self._payload(nodes, query)) as event:
                ranked = await self._reranker.arerank(
                    query, candidates, top_k=self.top_n, score_threshold=self.score_threshold
                )
                new_nodes = self._finish(nodes, ranked)
                event.on_end(payload={EventPayload.NODES: new_nodes})
        finally:  # the end event follows its start event even when the reranker raises
            dispatcher.event(ReRankEndEvent(nodes=new_nodes))
        return new_nodes
