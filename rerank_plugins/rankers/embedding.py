"""Bi-encoder reranking: cosine similarity of sentence-transformers embeddings.

:class:`EmbeddingReranker` embeds the query and every candidate with one ``SentenceTransformer`` (loaded once,
in ``__init__``) and scores each candidate by the cosine of the two L2-normalised embeddings (a dot product
when ``normalize=False``). Across many queries (:meth:`~rerank_plugins.base.Reranker.rerank_batch`) every
distinct query and document text is embedded once, in large batches.

:meth:`EmbeddingReranker.embed_queries` and :meth:`EmbeddingReranker.embed_documents` are public: pseudo-relevance
feedback, E2Rank-style listwise embedding and faiss retrieval reuse them, with the same prompts and
normalisation as the scores.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, cast

from .._optional import require
from ..backends.device import resolve_device, resolve_dtype
from ..base import Reranker, Scores
from ..engine.cache import ScoreCache, make_cache
from ..errors import BackendError, ConfigError, InvalidInputError
from ..refs import ModelRef, resolve_model
from ..types import Candidate, LoadedModel, ModelLike, Query
from ..validation import check_int
from ._compose import candidate_texts

__all__ = ["EmbeddingReranker"]


class EmbeddingReranker(Reranker):
    """Rerank by cosine similarity of sentence-transformers embeddings.

    Args:
        model: a bundled name (``"minilm"``), a local folder, a hub id, a :class:`~rerank_plugins.models.ModelRef`,
            or an already-built ``SentenceTransformer`` (used as is, never copied).
        device: ``"cuda"``, ``"mps"``, ``"cpu"``; ``None`` picks the best available.
        dtype: ``"float32"``, ``"float16"``, ``"bfloat16"``; ``None`` is fp32 on CPU, half precision on GPU.
        batch_size: texts per forward pass.
        normalize: L2-normalise embeddings, so scores are cosines in [-1, 1]; ``False`` gives raw dot products.
        query_prompt / document_prompt: text prepended to queries / documents (e.g. ``"query: "`` for E5).
        cache: ``True``, a shared :class:`~rerank_plugins.engine.cache.ScoreCache`, or ``None`` (no cache).
        progress: show a progress bar while embedding, and transformers' "Loading weights" bar (both off by
            default).
        trust_remote_code: allow custom model code from the model folder / hub repository.
        model_kwargs / tokenizer_kwargs: extra arguments for the model / tokenizer loaded here (sentence-transformers'
            ``model_kwargs`` and ``processor_kwargs``, formerly ``tokenizer_kwargs``); a ``"token"`` in them is
            passed as its ``token=``.
    """

    name = "embedding"

    def __init__(
        self,
        model: ModelLike | LoadedModel,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 32,
        normalize: bool = True,
        query_prompt: str | None = None,
        document_prompt: str | None = None,
        cache: bool | ScoreCache | None = None,
        progress: bool = False,
        trust_remote_code: bool = False,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        for label, kwargs in (("model_kwargs", model_kwargs), ("tokenizer_kwargs", tokenizer_kwargs)):
            if kwargs is not None and not isinstance(kwargs, dict):
                raise ConfigError(f"{label} must be a dict or None, got {type(kwargs).__name__}")
        check_int("batch_size", batch_size, 1)
        for label, prompt in (("query_prompt", query_prompt), ("document_prompt", document_prompt)):
            if prompt is not None and not isinstance(prompt, str):
                raise ConfigError(f"{label} must be a str or None, got {type(prompt).__name__}")
        st = require("sentence_transformers", "hf", purpose="the embedding reranker")
        self.batch_size = batch_size
        self.normalize = bool(normalize)
        self.query_prompt = query_prompt
        self.document_prompt = document_prompt
        self.progress = bool(progress)
        self.cache = make_cache(cache)

        if isinstance(model, st.SentenceTransformer):
            self.model = model
            self.model_ref: ModelRef | None = None
            card = getattr(model, "model_card_data", None)
            base = getattr(card, "base_model", None) if card is not None else None
            self._model_id = f"{base or type(model).__name__}@{id(model):x}"
            if device is not None:
                self.model.to(resolve_device(device))
        else:
            ref = resolve_model(cast(ModelLike, model))  # a loaded model took the branch above
            self.model_ref = ref
            self._model_id = ref.bundled_name or ref.name_or_path
            from ..backends.encoders import load_sentence_transformer

            self.model = load_sentence_transformer(
                ref, device=resolve_device(device), trust_remote_code=trust_remote_code, progress=progress,
                model_kwargs=model_kwargs, tokenizer_kwargs=tokenizer_kwargs,
            )
        self.device = self.model.device
        current = next(self.model.parameters()).dtype
        # A model handed in keeps its dtype unless one is asked for; a model loaded here gets the device default.
        torch_dtype = current if dtype is None and self.model_ref is None else resolve_dtype(dtype, self.device)
        if current != torch_dtype:
            self.model.to(torch_dtype)
        self.model.eval()
        if self.model_ref is not None:
            short = self.model_ref.bundled_name or os.path.basename(self.model_ref.name_or_path.rstrip("/\\"))
            self.name = f"embedding:{short}"
        self._cache_key = (
            f"embedding|{self._model_id}|{torch_dtype}|norm={self.normalize}"
            f"|qp={self.query_prompt!r}|dp={self.document_prompt!r}"
        )

    # ------------------------------------------------------------------ copies
    def __deepcopy__(self, memo: dict[int, Any]) -> EmbeddingReranker:
        """A new reranker sharing this one's loaded model and cache (frameworks deep-copy components freely;
        copying the weights would double the memory for nothing, as inference does not change them)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        memo[id(self)] = clone
        return clone

    # ------------------------------------------------------------------ public embedding API
    def embed_queries(self, texts: Sequence[str]) -> Any:
        """Embed query texts with ``query_prompt``: a float32 numpy array of shape ``(len(texts), dim)``.

        Rows are L2-normalised when ``normalize`` is true (then ``a @ b.T`` is the cosine matrix).
        """
        return self._embed(texts, self.query_prompt)

    def embed_documents(self, texts: Sequence[str]) -> Any:
        """Embed document texts with ``document_prompt``: a float32 numpy array ``(len(texts), dim)``."""
        return self._embed(texts, self.document_prompt)

    @property
    def dimension(self) -> int:
        """Size of one embedding."""
        model = self._live_model()
        get_dim = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        dim = get_dim()
        if dim is None:
            dim = int(self.embed_documents(["dimension probe"]).shape[1])
        return int(dim)

    def _embed(self, texts: Sequence[str], prompt: str | None) -> Any:
        np = require("numpy", "hf")
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidInputError(f"texts must be a list of str, got {type(texts).__name__}")
        for i, t in enumerate(texts):
            if not isinstance(t, str):
                raise InvalidInputError(f"text at position {i} must be a str, got {type(t).__name__}")
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        kwargs: dict[str, Any] = {}
        if prompt is not None:
            kwargs["prompt"] = prompt
        out = self._live_model().encode(
            list(texts),
            batch_size=self.batch_size,
            show_progress_bar=self.progress,
            convert_to_numpy=True,
            normalize_embeddings=self.normalize,
            **kwargs,
        )
        return np.ascontiguousarray(out, dtype=np.float32)

    # ------------------------------------------------------------------ scoring
    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        return self._score_many([query], [candidates])[0]

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        np = require("numpy", "hf")
        pairs = [(q.text, t) for q, cands in zip(queries, lists) for t in candidate_texts(cands, self.name)]
        scores: list[float | None] = (
            self.cache.get_many(self._cache_key, pairs) if self.cache is not None else [None] * len(pairs)
        )
        todo = [i for i, s in enumerate(scores) if s is None]
        if todo:
            q_index: dict[str, int] = {}
            d_index: dict[str, int] = {}
            for i in todo:
                q_index.setdefault(pairs[i][0], len(q_index))
                d_index.setdefault(pairs[i][1], len(d_index))
            q_emb = self.embed_queries(list(q_index))
            d_emb = self.embed_documents(list(d_index))
            qi = np.fromiter((q_index[pairs[i][0]] for i in todo), dtype=np.int64, count=len(todo))
            di = np.fromiter((d_index[pairs[i][1]] for i in todo), dtype=np.int64, count=len(todo))
            # Row-wise dot products of the gathered pairs (no full query x document matrix).
            values = np.einsum("ij,ij->i", q_emb[qi], d_emb[di]).astype(np.float64)
            new = [float(v) for v in values]
            for i, v in zip(todo, new):
                scores[i] = v
            if self.cache is not None:
                self.cache.put_many(self._cache_key, [pairs[i] for i in todo], new)
        out: list[Scores] = []
        start = 0
        for cands in lists:
            chunk = scores[start : start + len(cands)]
            start += len(cands)
            out.append(Scores([float(s) for s in chunk if s is not None]))
        return out

    def _live_model(self) -> Any:
        if self.model is None:
            raise BackendError(f"{self.name} is closed")
        return self.model

    def close(self) -> None:
        """Drop the reference to the model (memory is freed once nothing else holds it). Idempotent."""
        self.model = None

    def __repr__(self) -> str:
        return f"EmbeddingReranker(model={self._model_id!r}, device={str(self.device)!r}, normalize={self.normalize})"
