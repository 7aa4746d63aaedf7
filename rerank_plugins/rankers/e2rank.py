"""E2Rank-style reranking with an embedding model: a listwise prompt as the query, cosine to each candidate.

E2Rank (Liu et al., Alibaba, 2025, "E2Rank: Your Text Embedding can Also be an Effective and Efficient Listwise
Reranker") embeds a *pseudo query* built like a listwise reranking prompt - an instruction, the top-k candidate
documents numbered ``[1] ... [k]``, then the search query - and ranks every candidate by the cosine between that
embedding and the candidate's own embedding. The pseudo query works like pseudo-relevance feedback: it carries
signal from the top documents. The paper fine-tunes its (Qwen3-based) embedding model for this; here the same
construction runs zero-shot on any sentence-transformers model, by default the bundled MiniLM.

The paper's prompt (its public reference code) is::

    {instruction}\\nDocuments:\\n[1] {doc 1}\\n[2] {doc 2}...Search Query:{query}

with ``instruction = "Given a web search query and some relevant documents, rerank the documents that answer the
query:"`` and the first 20 candidates (input order). The paper's documents end with an end-of-text token, which
is what separates the last document from ``Search Query:``; here a newline does.

``layout="paper"`` (default) uses that order. Short-context models truncate from the end, so with MiniLM (256
word pieces) a long pseudo query loses the search query itself; ``layout="query_first"`` puts the query first
(``Search Query:{query}\\n{instruction}\\nDocuments:\\n...``), and ``max_doc_chars`` cuts each document. A pseudo
query longer than the model's ``max_seq_length`` triggers one warning per reranker.

``original_weight`` (default 0, the paper) mixes in the plain query cosine:
``score = (1 - w) * cos(pseudo, d) + w * cos(query, d)``. ``feedback="self"`` picks the documents of the prompt by
the plain query cosine instead of the input order.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

from .._optional import require
from .._warnings import caller_stacklevel
from ..base import BatchedReranker, Scores
from ..errors import ConfigError
from ..refs import ModelLike
from ..types import Candidate, Embedder, LoadedModel, Query
from ..validation import check_choice, check_int, check_number
from ._compose import as_embedder, candidate_texts, embed_texts_once

__all__ = ["PAPER_INSTRUCTION", "E2RankReranker", "build_pseudo_query"]

PAPER_INSTRUCTION = "Given a web search query and some relevant documents, rerank the documents that answer the query:"
_LAYOUTS = {
    "paper": "{instruction}\nDocuments:\n{documents}\nSearch Query:{query}",
    "query_first": "Search Query:{query}\n{instruction}\nDocuments:\n{documents}",
}


def build_pseudo_query(
    query: str,
    documents: Sequence[str],
    *,
    instruction: str = PAPER_INSTRUCTION,
    layout: Literal["paper", "query_first"] = "paper",
    max_doc_chars: int | None = None,
) -> str:
    """The E2Rank listwise prompt for ``query`` and its feedback ``documents`` (numbered from 1)."""
    check_choice("layout", layout, sorted(_LAYOUTS))
    docs = [d if max_doc_chars is None else d[:max_doc_chars] for d in documents]
    listed = "\n".join(f"[{i}] {d}" for i, d in enumerate(docs, start=1))
    return _LAYOUTS[layout].format(instruction=instruction, documents=listed, query=query)


class E2RankReranker(BatchedReranker):
    """Zero-shot E2Rank-style reranking on a bi-encoder (see the module docstring).

    Args:
        model: an :class:`~rerank_plugins.rankers.embedding.EmbeddingReranker` (or any object with
            ``embed_queries`` / ``embed_documents``), or a model name / path / ModelRef built with
            ``embedding_options``.
        num_input_docs: documents put in the pseudo query (the paper uses 20).
        instruction / layout / max_doc_chars: the prompt (see :func:`build_pseudo_query`).
        feedback: ``"input"`` (first candidates, the paper) or ``"self"`` (top by plain query cosine).
        original_weight: weight of the plain query cosine in the score, in [0, 1].
    """

    def __init__(
        self,
        model: ModelLike | Embedder | LoadedModel = "minilm",
        *,
        num_input_docs: int = 20,
        instruction: str = PAPER_INSTRUCTION,
        layout: Literal["paper", "query_first"] = "paper",
        max_doc_chars: int | None = None,
        feedback: Literal["input", "self"] = "input",
        original_weight: float = 0.0,
        embedding_options: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        check_int("num_input_docs", num_input_docs, 1)
        check_choice("layout", layout, sorted(_LAYOUTS))
        check_int("max_doc_chars", max_doc_chars, 1, optional=True)
        check_choice("feedback", feedback, ("input", "self"))
        check_number("original_weight", original_weight, 0, 1)
        if not isinstance(instruction, str):
            raise ConfigError(f"instruction must be a str, got {type(instruction).__name__}")
        self.embedder, self._owned = as_embedder(model, embedding_options)
        self.num_input_docs = num_input_docs
        self.instruction = instruction
        self.layout = layout
        self.max_doc_chars = max_doc_chars
        self.feedback = feedback
        self.original_weight = float(original_weight)
        self._warned = False
        base = getattr(self.embedder, "name", "embedding")
        self.name = name if name is not None else f"e2rank({base},k={num_input_docs},{layout})"

    def _check_length(self, pseudo: Sequence[str]) -> None:
        if self._warned:
            return
        model = getattr(self.embedder, "model", None)
        tokenizer = getattr(model, "tokenizer", None)
        limit = getattr(model, "max_seq_length", None)
        if tokenizer is None or not isinstance(limit, int):
            return
        longest = max(len(tokenizer(p, add_special_tokens=True, verbose=False)["input_ids"]) for p in pseudo)
        if longest > limit:
            self._warned = True
            where = "the search query at its end is cut off" if self.layout == "paper" else "documents are cut off"
            warnings.warn(
                f"{self.name}: pseudo queries of up to {longest} tokens exceed the model's max_seq_length {limit}; "
                f"{where}. Lower num_input_docs or max_doc_chars, or use layout='query_first'.",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        np = require("numpy", "hf")
        texts = [candidate_texts(c, self.name) for c in lists]
        embedded = embed_texts_once(self.embedder, texts)
        need_plain = self.feedback == "self" or self.original_weight > 0
        q_emb = (
            np.asarray(self.embedder.embed_queries([q.text for q in queries]), dtype=np.float64)
            if need_plain else None
        )
        chosen: list[list[int]] = []
        for qi, ts in enumerate(texts):
            k = min(self.num_input_docs, len(ts))
            if self.feedback == "self":
                plain = embedded[qi] @ q_emb[qi]  # type: ignore[index]
                chosen.append([int(i) for i in np.argsort(-plain, kind="stable")[:k]])
            else:
                chosen.append(list(range(k)))
        pseudo = [
            build_pseudo_query(q.text, [ts[i] for i in fb], instruction=self.instruction, layout=self.layout,
                               max_doc_chars=self.max_doc_chars)
            for q, ts, fb in zip(queries, texts, chosen)
        ]
        self._check_length(pseudo)
        p_emb = np.asarray(self.embedder.embed_queries(pseudo), dtype=np.float64)
        out = []
        for qi, docs in enumerate(embedded):
            scores = docs @ p_emb[qi]
            if self.original_weight > 0:
                scores = (1 - self.original_weight) * scores + self.original_weight * (docs @ q_emb[qi])  # type: ignore[index]
            fb_ids = tuple(lists[qi][i].id for i in chosen[qi])
            out.append(Scores([float(s) for s in scores], extra={"feedback_ids": fb_ids, "pseudo_query": pseudo[qi]}))
        return out

    def close(self) -> None:
        if self._owned:
            self.embedder.close()
