"""``RerankPluginsRanker``: a Haystack ranker component over a rerank-plugins reranker.

Only conversion lives here: ``Document`` -> :class:`rerank_plugins.Candidate` and the ranked list -> documents
rebuilt with ``dataclasses.replace``. Ranking, ``top_k`` and ``score_threshold`` are done by the reranker itself.
"""

from __future__ import annotations

import mimetypes
from dataclasses import replace
from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.errors import SerializationError

from rerank_plugins import Candidate, Query, RankedList, Reranker
from rerank_plugins.integration import build_reranker, candidate_ids, result_metadata


@component
class RerankPluginsRanker:
    """Rank documents with any rerank-plugins strategy (cross-encoder, embedding, listwise, FIRST, reasoning...).

    ```python
    ranker = RerankPluginsRanker(model="minilm", top_k=5)
    ranker.run(query="What is a shock wave?", documents=docs)["documents"]
    ```

    ``__init__`` only records its (JSON-serialisable) arguments; the model is loaded once, by :meth:`warm_up`,
    which a pipeline calls and :meth:`run` calls too when it was not (as Haystack's own components do).
    ``model`` may also be an already-built :class:`rerank_plugins.Reranker` (used as is; such a ranker cannot be
    serialised).

    Every input document comes back exactly once, best first, unless ``top_k`` (0 keeps none) or
    ``score_threshold`` (keep scores ``>=`` it; 0.0 is a threshold like any other) says otherwise. Documents are
    never modified: each result is ``dataclasses.replace(doc, score=..., meta=...)`` with the same id, its meta
    extended by ``rerank_rank`` and, when the strategy produces them, ``rerank_reasoning``, ``rerank_details`` and
    ``rerank_windows``. A document without ``content`` is ranked as an empty text (as Haystack's rankers do), or
    by its image when its ``blob`` has an ``image/*`` mime type or, as ``ImageFileToDocument`` and
    ``DocumentToImageContent`` do, its ``meta[file_path_meta_field]`` names an image file (under ``root_path``);
    a document with both content and an image is a mixed candidate. Duplicate ids are all kept and ranked.

    :param model: model or strategy name, local path or hub id (see ``rerank_plugins.load_reranker``), or a
        built reranker.
    :param kind: strategy kind (``"cross-encoder"``, ``"embedding"``, ``"listwise"``, ``"first"``...); ``None``
        reads it from the model or the registry.
    :param top_k: default number of documents to return; ``None`` returns all.
    :param score_threshold: default minimum score; ``None`` keeps all.
    :param options: keyword arguments for ``load_reranker`` (device, batch_size, window size...).
    :param meta_fields_to_embed: meta fields whose values are put before the content, as Haystack rankers do.
    :param embedding_separator: separator between those values and the content.
    :param file_path_meta_field: meta field holding an image file path (``None``: images only from ``blob``).
    :param root_path: folder that relative image paths are resolved against.
    """

    def __init__(
        self,
        model: str | Reranker = "minilm",
        kind: str | None = None,
        top_k: int | None = None,
        score_threshold: float | None = None,
        options: dict[str, Any] | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        file_path_meta_field: str | None = "file_path",
        root_path: str | None = None,
    ) -> None:
        self._reranker: Reranker | None = None
        if isinstance(model, Reranker):
            self._reranker = build_reranker(model, kind, options)
            model = model.name
        self.model = model
        self.kind = kind
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.options = options
        self.meta_fields_to_embed = meta_fields_to_embed
        self.embedding_separator = embedding_separator
        self.file_path_meta_field = file_path_meta_field
        self.root_path = root_path
        self._serialisable = self._reranker is None

    def warm_up(self) -> None:
        """Load the reranker (once; later calls do nothing)."""
        self._live()

    def _live(self) -> Reranker:
        if self._reranker is None:
            self._reranker = build_reranker(self.model, self.kind, self.options)
        return self._reranker

    def to_dict(self) -> dict[str, Any]:
        if not self._serialisable:
            raise SerializationError(
                f"RerankPluginsRanker was given a built {self.model!r} reranker object, which cannot be serialised; "
                "configure it by model=, kind= and options= to save it in a pipeline"
            )
        return default_to_dict(
            self,
            model=self.model,
            kind=self.kind,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            options=self.options,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            file_path_meta_field=self.file_path_meta_field,
            root_path=self.root_path,
        )

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RerankPluginsRanker:
        return default_from_dict(cls, data)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ conversion
    def _prepare(
        self, query: str, documents: list[Document], top_k: int | None, score_threshold: float | None
    ) -> tuple[Reranker, Query, list[Candidate], dict[str, Any]]:
        reranker = self._live()
        for i, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise TypeError(f"document at position {i} must be a haystack Document, got {type(doc).__name__}")
        fields = self.meta_fields_to_embed if self.meta_fields_to_embed is not None else []
        candidates = []
        for cid, doc in zip(candidate_ids([d.id for d in documents]), documents):
            is_image = doc.blob is not None and (doc.blob.mime_type or "").startswith("image/")
            image = doc.blob.data if is_image else self._image_path(doc)  # type: ignore[union-attr]
            text = doc.content
            if fields:
                values = [str(doc.meta[k]) for k in fields if doc.meta.get(k) is not None]
                text = self.embedding_separator.join([*values, doc.content if doc.content is not None else ""])
            if text is None and image is None:
                text = ""
            candidates.append(Candidate(id=cid, text=text, metadata=doc.meta, score=doc.score, image=image))
        limits = {
            "top_k": self.top_k if top_k is None else top_k,
            "score_threshold": self.score_threshold if score_threshold is None else score_threshold,
        }
        return reranker, Query(text=query), candidates, limits

    def _image_path(self, doc: Document) -> str | None:
        """The image file a document stands for (``ImageFileToDocument`` convention), or None."""
        value = doc.meta.get(self.file_path_meta_field) if self.file_path_meta_field else None
        if not isinstance(value, str):
            return None
        mime, _ = mimetypes.guess_type(value)
        if mime is None or not mime.startswith("image/"):
            return None
        return str(Path(self.root_path) / value) if self.root_path is not None else value

    @staticmethod
    def _documents(documents: list[Document], ranked: RankedList) -> dict[str, list[Document]]:
        out = []
        for item, extra in zip(ranked.results, result_metadata(ranked)):
            doc = documents[item.original_position]
            out.append(replace(doc, score=item.score, meta={**doc.meta, **extra}))
        return {"documents": out}

    # ------------------------------------------------------------------ component API
    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """Rank ``documents`` for ``query``; ``top_k`` / ``score_threshold`` override the defaults when given."""
        reranker, q, candidates, limits = self._prepare(query, documents, top_k, score_threshold)
        return self._documents(documents, reranker.rerank(q, candidates, **limits))

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
    ) -> dict[str, list[Document]]:
        """Async form of :meth:`run` (uses the reranker's native ``arerank``)."""
        reranker, q, candidates, limits = self._prepare(query, documents, top_k, score_threshold)
        return self._documents(documents, await reranker.arerank(q, candidates, **limits))
