"""Bi-encoder reranking: cosine similarity of sentence-transformers embeddings.

:class:`EmbeddingReranker` embeds the query and every candidate with one ``SentenceTransformer`` (loaded once,
in ``__init__``) and scores each candidate by the cosine of the two L2-normalised embeddings (a dot product
when ``normalize=False``). Across many queries (:meth:`~rerank_plugins.base.Reranker.rerank_batch`) every
distinct query and document text is embedded once, in large batches.

:meth:`EmbeddingReranker.embed_queries` and :meth:`EmbeddingReranker.embed_documents` are public: pseudo-relevance
feedback, E2Rank-style listwise embedding and faiss retrieval reuse them, with the same prompts and
normalisation as the scores.

Long documents follow the length policy (:mod:`rerank_plugins.engine.length_policy`). The budget is the model's
``max_seq_length`` (prompt and special tokens included), lowered by ``max_document_tokens`` /
``max_query_tokens`` (the text's own tokens). With ``long_documents="truncate"`` (the default) an overlong text is
cut exactly as sentence-transformers 6.2.0 cuts it (``Transformer.preprocess``: ``truncation="longest_first"`` at
``max_seq_length``, so scores equal ``SentenceTransformer.encode``'s), or, with ``truncation_side="left"`` or a
token cap, at a token boundary measured on the real input; one :class:`~rerank_plugins.engine.length_policy.
TruncationWarning` per call names how many documents were cut. ``long_documents="chunk"`` splits an overlong
document into token windows that each fit ``max_seq_length`` with the prompt (``chunk_overlap`` tokens shared, at
most ``max_chunks``), embeds the windows in the same batches as every other text (identical windows once), scores
each against the query and aggregates by ``chunk_aggregate`` (``"max"``, MaxP, by default; ``"first"``,
``"mean"``), with the best window's character span and score in ``details["best_chunk"]``. A document that fits is
scored exactly as in truncate mode.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from typing import Any, cast

from .._optional import require
from .._warnings import caller_stacklevel
from ..backends.device import resolve_device, resolve_dtype
from ..base import BatchedReranker, Scores
from ..engine.cache import ScoreCache, make_cache
from ..engine.length_policy import (
    DocumentPlan,
    LengthPolicy,
    TruncationWarning,
    call_stats,
    document_score,
    policy_from_options,
    warn_truncated,
)
from ..errors import BackendError, ConfigError, InvalidInputError
from ..refs import ModelLike, ModelRef, resolve_model
from ..types import Candidate, LoadedModel, Query
from ..validation import check_int
from ._compose import candidate_texts
from ._text_windows import distinct_windows, plan_texts, text_budget

__all__ = ["EmbeddingReranker"]


class EmbeddingReranker(BatchedReranker):
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
        long_documents / max_chunks / chunk_overlap / chunk_aggregate: the length policy (module docstring):
            ``"truncate"`` (default) or ``"chunk"``; at most ``max_chunks`` windows (10) sharing ``chunk_overlap``
            tokens (32), aggregated by ``"max"`` (default), ``"first"`` or ``"mean"``.
        max_document_tokens / max_query_tokens: most tokens of a document / query's own text (``None``: the
            model's ``max_seq_length`` for the whole input, as sentence-transformers cuts).
        truncation_side: ``"right"`` (keep the beginning; default) or ``"left"`` (keep the end).
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
        long_documents: str | None = None,
        max_chunks: int | None = None,
        chunk_overlap: int | None = None,
        chunk_aggregate: str | None = None,
        max_document_tokens: int | None = None,
        max_query_tokens: int | None = None,
        truncation_side: str | None = None,
    ) -> None:
        self.policy = policy_from_options(
            long_documents=long_documents, max_chunks=max_chunks, chunk_overlap=chunk_overlap,
            chunk_aggregate=chunk_aggregate, max_document_tokens=max_document_tokens,
            max_query_tokens=max_query_tokens, truncation_side=truncation_side,
        )
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
        self._check_tokenizer()
        if self.model_ref is not None:
            short = self.model_ref.bundled_name or os.path.basename(self.model_ref.name_or_path.rstrip("/\\"))
            self.name = f"embedding:{short}"
        self._cache_key = (
            f"embedding|{self._model_id}|{torch_dtype}|norm={self.normalize}"
            f"|qp={self.query_prompt!r}|dp={self.document_prompt!r}"
        )
        #: statistics of the last scoring call (pairs, texts embedded, truncations, chunks)
        self.last_stats: dict[str, Any] = {}

    # ------------------------------------------------------------------ copies
    def __deepcopy__(self, memo: dict[int, Any]) -> EmbeddingReranker:
        """A new reranker sharing this one's loaded model and cache (frameworks deep-copy components freely;
        copying the weights would double the memory for nothing, as inference does not change them)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        memo[id(self)] = clone
        return clone

    def with_length_policy(self, policy: LengthPolicy) -> EmbeddingReranker:
        """A copy sharing this reranker's model and score cache that follows ``policy`` (``long_documents``,
        ``max_chunks``, ``chunk_overlap``, ``chunk_aggregate``, ...): how the service honours a per-request
        ``long_document_strategy`` / ``max_chunks_per_doc`` without loading the model twice. This reranker itself
        when ``policy`` is its own."""
        if policy == self.policy:
            return self
        clone = copy.deepcopy(self)
        clone.policy = policy
        clone._check_tokenizer()
        return clone  # the score cache's keys do not depend on the policy (see _score_many)

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
    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        np = require("numpy", "hf")
        policy = self.policy
        docs_per_list = [candidate_texts(cands, self.name) for cands in lists]
        q_texts = list(dict.fromkeys(q.text for q in queries))
        d_texts = list(dict.fromkeys(t for row in docs_per_list for t in row))
        q_fed, q_cut = self._fit_queries(q_texts)
        d_plans = self._plan(d_texts, self.document_prompt, policy.max_document_tokens, policy)
        # The cache holds the score of each (query as embedded, text as embedded) pair, whatever the policy: a
        # window, a cut text, or a whole text (which sentence-transformers cuts at max_seq_length itself).
        if policy.chunking:
            units, unit_index = distinct_windows(d_texts, d_plans)
        else:
            units = [d[p.spans[0][0]:p.spans[0][1]] for d, p in zip(d_texts, d_plans)]
            unit_index = [[i] for i in range(len(d_texts))]
        key = self._cache_key
        q_pos = {q: i for i, q in enumerate(q_texts)}
        d_pos = {d: i for i, d in enumerate(d_texts)}
        needed = list(dict.fromkeys(
            (q_pos[q.text], u) for q, row in zip(queries, docs_per_list) for d in row for u in unit_index[d_pos[d]]
        ))
        pairs = [(q_fed[qi], units[u]) for qi, u in needed]
        cached: list[float | None] = (
            self.cache.get_many(key, pairs) if self.cache is not None else [None] * len(pairs)
        )
        todo = [k for k, v in enumerate(cached) if v is None]
        embedded_units: set[int] = set()
        if todo:
            q_need = list(dict.fromkeys(needed[k][0] for k in todo))
            u_need = list(dict.fromkeys(needed[k][1] for k in todo))
            embedded_units.update(u_need)
            q_emb = self.embed_queries([q_fed[i] for i in q_need])
            u_emb = self.embed_documents([units[u] for u in u_need])
            q_row = {qi: r for r, qi in enumerate(q_need)}
            u_row = {u: r for r, u in enumerate(u_need)}
            qi_arr = np.fromiter((q_row[needed[k][0]] for k in todo), dtype=np.int64, count=len(todo))
            ui_arr = np.fromiter((u_row[needed[k][1]] for k in todo), dtype=np.int64, count=len(todo))
            # Row-wise dot products of the gathered pairs (no full query x document matrix).
            values = np.einsum("ij,ij->i", q_emb[qi_arr], u_emb[ui_arr]).astype(np.float64)
            new = [float(v) for v in values]
            for k, v in zip(todo, new):
                cached[k] = v
            if self.cache is not None:
                self.cache.put_many(key, [pairs[k] for k in todo], new)
        score_of = {pair: cached[k] for k, pair in enumerate(needed)}
        per_list: list[tuple[list[float], list[dict[str, Any]]]] = []
        all_plans: list[DocumentPlan] = []
        for q, row in zip(queries, docs_per_list):
            values_out: list[float] = []
            details: list[dict[str, Any]] = []
            for d in row:
                plan = d_plans[d_pos[d]]
                all_plans.append(plan)
                window_scores = [score_of[(q_pos[q.text], u)] for u in unit_index[d_pos[d]]]
                value, info = document_score(policy, plan, [float(v) for v in window_scores if v is not None])
                values_out.append(value)
                details.append(info)
            per_list.append((values_out, details))
        stats: dict[str, Any] = {"pairs": len(all_plans), "cache_hits": len(pairs) - len(todo), "queries_cut": q_cut}
        stats.update(call_stats(all_plans, len(embedded_units)))
        self.last_stats = stats
        out = [Scores(v, details=d, extra=stats) for v, d in per_list]
        budget = self._budget(self.document_prompt, policy.max_document_tokens)
        warn_truncated(self.name, stats["truncated"], len(all_plans), budget, chunking=policy.chunking)
        if q_cut:
            warnings.warn(
                f"{self.name}: {q_cut} of {len(q_texts)} queries exceeded the model's budget of "
                f"{self._budget(self.query_prompt, policy.max_query_tokens)} tokens and were truncated",
                TruncationWarning,
                stacklevel=caller_stacklevel(),
            )
        return out

    # ------------------------------------------------------------------ length policy
    def _tokenizer(self) -> Any:
        return getattr(self._live_model(), "tokenizer", None)

    def _check_tokenizer(self) -> None:
        """Chunking, a token cap and left-side cuts need a fast (Rust) tokenizer's offsets."""
        policy = self.policy
        needs_offsets = (policy.chunking or policy.truncation_side == "left" or policy.max_document_tokens is not None
                         or policy.max_query_tokens is not None)
        tok = self._tokenizer()
        if needs_offsets and not getattr(tok, "is_fast", False):
            raise ConfigError(
                "long_documents='chunk', truncation_side='left', max_document_tokens and max_query_tokens need a "
                f"fast (Rust) tokenizer; {type(tok).__name__} is not one"
            )

    def _limit(self) -> int | None:
        limit = getattr(self._live_model(), "max_seq_length", None)
        return int(limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else None

    def _budget(self, prompt: str | None, own_tokens: int | None) -> int | None:
        """Tokens of one model input (prompt and special tokens included): ``max_seq_length`` lowered by a cap."""
        tok, limit = self._tokenizer(), self._limit()
        if tok is None:
            return limit
        head = prompt or ""
        return text_budget(tok, limit if limit is not None else 1 << 62, own_tokens, lambda t: head + t)

    def _plan(self, texts: Sequence[str], prompt: str | None, own_tokens: int | None,
              policy: LengthPolicy) -> list[DocumentPlan]:
        """Each text's plan under ``policy``; in plain right-side truncation at ``max_seq_length`` the texts stay
        whole and sentence-transformers cuts them (as the reference does), only counted here."""
        tok, budget = self._tokenizer(), self._budget(prompt, own_tokens)
        if tok is None or budget is None:
            return [DocumentPlan(((0, len(t)),), False) for t in texts]
        head = prompt or ""
        search = policy.truncation_side == "left" or own_tokens is not None
        return plan_texts(tok, texts, policy, budget, render=lambda t: head + t, who=self.name, search=search)

    def _fit_queries(self, texts: Sequence[str]) -> tuple[list[str], int]:
        """The query texts as embedded (cut as documents are cut in truncate mode) and how many were cut."""
        policy = LengthPolicy(truncation_side=self.policy.truncation_side,
                              max_query_tokens=self.policy.max_query_tokens)
        plans = self._plan(texts, self.query_prompt, policy.max_query_tokens, policy)
        fed = [t[p.spans[0][0]:p.spans[0][1]] for t, p in zip(texts, plans)]
        return fed, sum(p.truncated for p in plans)

    def _live_model(self) -> Any:
        if self.model is None:
            raise BackendError(f"{self.name} is closed")
        return self.model

    def close(self) -> None:
        """Drop the reference to the model (memory is freed once nothing else holds it). Idempotent."""
        self.model = None

    def __repr__(self) -> str:
        return f"EmbeddingReranker(model={self._model_id!r}, device={str(self.device)!r}, normalize={self.normalize})"
