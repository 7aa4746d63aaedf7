"""Helpers shared by the rerankers that compose other rerankers (fusion, cascade, PRF, label ranking)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._optional import require
from ..base import Reranker
from ..errors import ConfigError, InvalidInputError
from ..types import Candidate, RankedList

__all__ = [
    "as_embedder", "as_reranker", "candidate_texts", "embed_texts_once", "ranking_pairs", "set_reranker_builder",
]

#: How a name, path, ModelRef or spec becomes a :class:`Reranker`: :func:`rerank_plugins.models.build_reranker`,
#: handed down by the registry when it is imported (which ``import rerank_plugins`` does), so that this layer
#: never imports the registry above it.
_build_reranker: Callable[..., Reranker] | None = None


def set_reranker_builder(build: Callable[..., Reranker]) -> None:
    """Install the registry's ``build_reranker(value, what=...)`` (called once, by :mod:`rerank_plugins.models`)."""
    global _build_reranker
    _build_reranker = build


def as_reranker(value: Any, what: str) -> Reranker:
    """A :class:`Reranker` from what a composite reranker was given (:func:`rerank_plugins.models.build_reranker`).

    * a :class:`Reranker`: used as is;
    * a name, path or :class:`~rerank_plugins.refs.ModelRef`: loaded with :func:`~rerank_plugins.load_reranker`;
    * a mapping ``{"name": ..., "kind": ..., "options": {...}}`` (``kind`` and ``options`` optional): loaded with
      ``load_reranker(name, kind=kind, **options)``, so nested pipelines can be written as JSON (CLI ``-o``).
    """
    if isinstance(value, Reranker):
        return value
    if _build_reranker is None:  # only when rerank_plugins.models was never imported
        raise ConfigError(f"{what}: a name or spec needs the strategy registry; import rerank_plugins first")
    return _build_reranker(value, what=what)


def as_embedder(model: Any, embedding_options: Mapping[str, Any] | None) -> tuple[Any, bool]:
    """The embedding model a vector method uses and whether it was built here: an object with ``embed_queries``
    and ``embed_documents`` (an :class:`~rerank_plugins.rankers.embedding.EmbeddingReranker`) as is, anything
    else through ``EmbeddingReranker(model, **embedding_options)``."""
    if hasattr(model, "embed_queries") and hasattr(model, "embed_documents"):
        if embedding_options:
            raise ConfigError("embedding_options apply only when the embedding model is built here")
        return model, False
    from .embedding import EmbeddingReranker

    return EmbeddingReranker(model, **(embedding_options or {})), True


def ranking_pairs(result: RankedList) -> list[tuple[str, float]]:
    """A ranked list as ``(id, score)`` pairs, best first: the reranker's own order (and tie-breaking)."""
    return [(r.id, r.score) for r in result.results]


def candidate_texts(candidates: Sequence[Candidate], who: str) -> list[str]:
    """The texts of ``candidates``; an image-only candidate raises :class:`InvalidInputError` naming it."""
    out = []
    for c in candidates:
        if c.text is None:
            raise InvalidInputError(f"{who} scores text; candidate {c.id!r} has an image but no text")
        out.append(c.text)
    return out


def embed_texts_once(embedder: Any, texts: Sequence[Sequence[str]]) -> list[Any]:
    """The document embeddings of each list of ``texts`` (a float64 array, one row per text): every distinct text
    is embedded once, in one ``embed_documents`` call, however often it recurs in the lists."""
    np = require("numpy", "hf")
    index: dict[str, int] = {}
    for ts in texts:
        for t in ts:
            index.setdefault(t, len(index))
    embedded = np.asarray(embedder.embed_documents(list(index)), dtype=np.float64)
    return [embedded[[index[t] for t in ts]] for ts in texts]
