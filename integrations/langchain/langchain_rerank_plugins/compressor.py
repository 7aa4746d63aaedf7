"""``RerankPluginsCompressor``: a LangChain ``BaseDocumentCompressor`` over a rerank-plugins reranker.

Only conversion lives here: ``Document`` -> :class:`rerank_plugins.Candidate` and the ranked list -> copied
documents. Ranking, ``top_n`` and ``score_threshold`` are done by the reranker itself. Depends on langchain-core
only; use it inside langchain-classic's ``ContextualCompressionRetriever`` or in any LCEL chain.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import Callbacks
from langchain_core.cross_encoders import BaseCrossEncoder
from langchain_core.documents import BaseDocumentCompressor, Document
from pydantic import ConfigDict, Field, PrivateAttr

from rerank_plugins import Candidate, Query, RankedList, Reranker
from rerank_plugins.integration import affixed, build_reranker, candidate_ids, model_name, result_metadata

from ._cross_encoder import CrossEncoderModelReranker

#: Metadata key of the rerank score (the key LangChain's rerank compressors use).
RELEVANCE_SCORE_KEY = "relevance_score"


class RerankPluginsCompressor(BaseDocumentCompressor):
    """Rerank documents with any rerank-plugins strategy, configured by name or given as a built reranker.

    ``RerankPluginsCompressor(model="minilm", top_n=5)`` loads the reranker once, here; so does
    ``RerankPluginsCompressor(model="path/or/hub-id", kind="cross-encoder", options={"max_length": 256})``.
    ``RerankPluginsCompressor(model=reranker)`` uses an already-built :class:`rerank_plugins.Reranker` as is;
    ``RerankPluginsCompressor(model=HuggingFaceCrossEncoder(...))`` takes any LangChain ``BaseCrossEncoder`` (the
    model of LangChain's ``CrossEncoderReranker``), scoring with its ``score`` method (the same order as there).

    Returns copies of the documents (same ``id``; the inputs are never modified), best first, whose metadata
    gains ``relevance_score`` (a float), ``rerank_rank`` and, when the strategy produces them,
    ``rerank_reasoning``, ``rerank_details`` and ``rerank_windows``; ``prefix_metadata`` is put before each of these
    keys, as in langchain-community's ``FlashrankRerank`` (whose keys are ``{prefix}id`` and
    ``{prefix}relevance_score``; ours keep ``Document.id`` instead of a position key, and on a clash the added key
    wins where Flashrank keeps the document's own value). Every document comes back exactly once unless ``top_n``
    (0 keeps none; ``None``, the default, keeps all where LangChain's rerankers keep 3) or ``score_threshold``
    (keep scores ``>=`` it) says otherwise.

    Images (for multimodal rerankers) come from document metadata, under the first of ``image_metadata_keys``
    present: ``"image"`` (a path, bytes or PIL image put there by the application) and ``"image_path"`` (the key
    of LangChain's ``ImageCaptionLoader``). A document with an image and an empty ``page_content`` is an
    image-only candidate; with both it is a mixed one (e.g. a caption and its image).

    LangChain documents carry no retriever score of their own. Strategies that use one (fusion of the first-stage
    score with the reranker's, PRF) read it from metadata when ``score_metadata_key`` names the key your retriever
    fills (for example ``"score"``, or ``"relevance_score"`` when an earlier compressor scored the documents); a
    document without the key has no first-stage score, and a non-numeric value is an error.

    ``model`` may be a ``pathlib.Path`` (stored as ``str``). ``query_prefix`` / ``document_prefix`` are put before
    the query / each ``page_content`` as the reranker reads them (e.g. ``"query: "`` for E5-style models);
    ``instruction`` is passed to a reranker built by name as its ``instruction=`` option (the task instruction of
    LLM rerankers and recipes). Copies (``copy.deepcopy``, ``model_copy(deep=True)``) share the loaded model;
    ``pickle`` stores how to load it.
    """

    model: str = Field(default="minilm", description="Model or strategy name, path or hub id, or a built reranker.")
    kind: str | None = Field(default=None, description="Strategy kind; None reads it from the model or registry.")
    options: dict[str, Any] = Field(default_factory=dict, description="Keyword arguments for load_reranker.")
    top_n: int | None = Field(default=None, ge=0, description="Keep the best n documents; None keeps all, 0 none.")
    score_threshold: float | None = Field(default=None, description="Keep documents scoring >= this; None keeps all.")
    score_metadata_key: str | None = Field(
        default=None, description="Metadata key holding the retriever's score, passed on as the first-stage score."
    )
    image_metadata_keys: list[str] = Field(
        default_factory=lambda: ["image", "image_path"], description="Metadata keys that may hold a document image."
    )
    query_prefix: str = Field(default="", description="Text put before the query the reranker reads.")
    document_prefix: str = Field(default="", description="Text put before each page_content the reranker reads.")
    instruction: str | None = Field(
        default=None, description="Task instruction passed to the reranker's instruction= option (LLM recipes)."
    )
    prefix_metadata: str = Field(default="", description="Put before every metadata key added (as FlashrankRerank).")

    model_config = ConfigDict(extra="forbid")

    _reranker: Reranker = PrivateAttr()

    def __init__(self, model: str | os.PathLike[str] | Reranker | BaseCrossEncoder = "minilm", **kwargs: Any) -> None:
        if isinstance(model, BaseCrossEncoder):
            model = CrossEncoderModelReranker(model)
        super().__init__(model=model_name(model), **kwargs)  # type: ignore[call-arg]
        self._reranker = build_reranker(model, self.kind, self.options, instruction=self.instruction)

    @property
    def reranker(self) -> Reranker:
        """The rerank-plugins reranker doing the work."""
        return self._reranker

    def _candidates(self, documents: Sequence[Document]) -> list[Candidate]:
        for i, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise TypeError(f"document at position {i} must be a langchain Document, got {type(doc).__name__}")
        ids = candidate_ids([d.id for d in documents])
        out = []
        for i, (cid, d) in enumerate(zip(ids, documents)):
            image = next((d.metadata[k] for k in self.image_metadata_keys if d.metadata.get(k) is not None), None)
            text = None if image is not None and not d.page_content else affixed(d.page_content, self.document_prefix)
            out.append(Candidate(id=cid, text=text, metadata=d.metadata, image=image, score=self._first_stage(d, i)))
        return out

    def _query(self, query: str) -> Query:
        if not isinstance(query, str) or not query.strip():
            return Query(text=query)  # the reranker refuses it with its usual message
        return Query(text=affixed(query, self.query_prefix))

    def _first_stage(self, doc: Document, position: int) -> float | None:
        if self.score_metadata_key is None or doc.metadata.get(self.score_metadata_key) is None:
            return None
        value = doc.metadata[self.score_metadata_key]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(
                f"document at position {position}: metadata[{self.score_metadata_key!r}] must be a number "
                f"(the retriever's score), got {type(value).__name__}"
            )
        return float(value)

    def _documents(self, documents: Sequence[Document], ranked: RankedList) -> list[Document]:
        out = []
        prefix = self.prefix_metadata
        for item, extra in zip(ranked.results, result_metadata(ranked)):
            doc = documents[item.original_position]
            added = {RELEVANCE_SCORE_KEY: item.score, **extra}
            meta = {**doc.metadata, **{prefix + key: value for key, value in added.items()}}
            out.append(doc.model_copy(update={"metadata": meta}))
        return out

    def compress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Rerank ``documents`` for ``query``, best first."""
        ranked = self._reranker.rerank(
            self._query(query), self._candidates(documents), top_k=self.top_n, score_threshold=self.score_threshold
        )
        return self._documents(documents, ranked)

    async def acompress_documents(
        self, documents: Sequence[Document], query: str, callbacks: Callbacks | None = None
    ) -> Sequence[Document]:
        """Async form of :meth:`compress_documents` (uses the reranker's native ``arerank``)."""
        ranked = await self._reranker.arerank(
            self._query(query), self._candidates(documents), top_k=self.top_n, score_threshold=self.score_threshold
        )
        return self._documents(documents, ranked)
