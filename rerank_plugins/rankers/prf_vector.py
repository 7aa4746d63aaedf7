"""Vector pseudo-relevance feedback (Rocchio on embeddings) over a bi-encoder.

Li et al., "Pseudo Relevance Feedback with Deep Language Models and Dense Retrievers: Successes and Pitfalls"
(TOIS 2022) move the query embedding toward the embeddings of the top-ranked passages:

    q' = alpha * q + beta * mean(d_1 .. d_k)

and find it works best when the query keeps the majority (or an equal) weight and the feedback is shallow (a few
passages). The defaults follow that: ``alpha=0.7``, ``beta=0.3``, ``feedback_docs=3``.

:class:`VectorPRFReranker` embeds the query and the candidates once with an
:class:`~rerank_plugins.rankers.embedding.EmbeddingReranker` (``embed_queries`` / ``embed_documents``: same prompts
and normalisation), picks the feedback passages, forms ``q'`` and scores every candidate against it (cosine when
the embedder normalises, so ``q'`` is renormalised; a dot product otherwise). The feedback passages are

* ``feedback="self"`` (default): the top ``feedback_docs`` by the embedder's own cosine with the original query
  (dense PRF as in the paper);
* ``feedback="input"``: the first ``feedback_docs`` candidates in input order (the first stage's top, e.g. BM25).

No extra model call is needed beyond plain cosine reranking. Each candidate's details hold its first-pass score
(``details["prf"]["initial_score"]``) and whether it was a feedback passage.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

from .._optional import require
from ..base import BatchedReranker, Scores
from ..errors import ConfigError
from ..refs import ModelLike
from ..types import Candidate, Embedder, LoadedModel, Query
from ..validation import check_choice, check_int, check_number
from ._compose import as_embedder, candidate_texts, embed_texts_once

__all__ = ["VectorPRFReranker", "rocchio"]


def rocchio(query: Any, feedback: Any, alpha: float, beta: float, normalize: bool) -> Any:
    """``alpha * query + beta * mean(feedback rows)`` (numpy), L2-normalised when ``normalize``."""
    np = require("numpy", "hf")
    q = np.asarray(query, dtype=np.float64)
    fb = np.asarray(feedback, dtype=np.float64)
    new = alpha * q + (beta * fb.mean(axis=0) if len(fb) else 0.0)
    if normalize:
        norm = float(np.linalg.norm(new))
        if norm > 0:
            new = new / norm
    return new


class VectorPRFReranker(BatchedReranker):
    """Rocchio vector PRF on a bi-encoder (see the module docstring).

    Args:
        model: an :class:`~rerank_plugins.rankers.embedding.EmbeddingReranker` (or any object with
            ``embed_queries`` / ``embed_documents`` returning row vectors), or a model name / path / ModelRef from
            which one is built with ``embedding_options``.
        alpha / beta: weights of the query and of the feedback centroid (both >= 0, alpha > 0).
        feedback_docs: number of feedback passages (>= 1).
        feedback: ``"self"`` (top by the embedder's cosine) or ``"input"`` (top of the input order).
    """

    def __init__(
        self,
        model: ModelLike | Embedder | LoadedModel = "minilm",
        *,
        alpha: float = 0.7,
        beta: float = 0.3,
        feedback_docs: int = 3,
        feedback: Literal["self", "input"] = "self",
        embedding_options: dict[str, Any] | None = None,
        name: str | None = None,
    ) -> None:
        for label, value in (("alpha", alpha), ("beta", beta)):
            check_number(label, value, 0, finite=True)
        if alpha == 0:
            raise ConfigError("alpha must be > 0: the query must keep some weight")
        check_int("feedback_docs", feedback_docs, 1)
        check_choice("feedback", feedback, ("self", "input"))
        self.embedder, self._owned = as_embedder(model, embedding_options)
        self.alpha, self.beta = float(alpha), float(beta)
        self.feedback_docs = feedback_docs
        self.feedback = feedback
        self.normalize = bool(getattr(self.embedder, "normalize", True))
        base = getattr(self.embedder, "name", "embedding")
        self.name = name if name is not None else f"prf-vector({base},k={feedback_docs},a={alpha:g},b={beta:g})"

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        np = require("numpy", "hf")
        texts = [candidate_texts(c, self.name) for c in lists]
        q_emb = np.asarray(self.embedder.embed_queries([q.text for q in queries]), dtype=np.float64)
        embedded = embed_texts_once(self.embedder, texts)
        out = []
        for qi, (ts, docs) in enumerate(zip(texts, embedded)):
            initial = docs @ q_emb[qi]
            k = min(self.feedback_docs, len(ts))
            if self.feedback == "self":
                fb = [int(i) for i in np.argsort(-initial, kind="stable")[:k]]
            else:
                fb = list(range(k))
            new_q = rocchio(q_emb[qi], docs[fb], self.alpha, self.beta, self.normalize)
            values = [float(v) for v in docs @ new_q]
            fb_set = set(fb)
            details = [
                {"prf": {"initial_score": float(initial[i]), "feedback": i in fb_set}} for i in range(len(ts))
            ]
            feedback_ids = tuple(lists[qi][i].id for i in fb)
            out.append(Scores(values, details=details, extra={"feedback_ids": feedback_ids}))
        return out

    def close(self) -> None:
        if self._owned:
            self.embedder.close()
