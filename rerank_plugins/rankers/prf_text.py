"""Text pseudo-relevance feedback for any reranker: one query variant per feedback passage, runs fused.

Li et al., "Pseudo Relevance Feedback with Deep Language Models and Dense Retrievers: Successes and Pitfalls"
(TOIS 2022) found the best text PRF for deep rerankers to be: concatenate the query with each of the top-k
feedback passages separately, rerank the list once per new query, and aggregate the runs, Borda count first.

:class:`TextPRFReranker` does exactly that around any reranker (cross-encoder, embedding, LLM):

* feedback passages: ``feedback="input"`` (default) takes the first ``feedback_docs`` candidates in input order
  (the first stage's top); ``feedback="self"`` first reranks with the original query and takes its top;
* query variants: ``template.format(query=..., passage=...)`` (default ``"{query} {passage}"``); a passage is cut
  to ``max_passage_chars`` characters when given (long concatenations are otherwise truncated by the reranker's
  own max length, silently for the query side of many cross-encoders);
* aggregation (:mod:`rerank_plugins.engine.fusion`): ``"borda"`` (default), ``"sum"`` (plain score sum, the
  paper's score aggregation; needs the runs on one scale), or ``"rrf"``.
  ``include_original=True`` adds the original query's run to the fusion, with weight ``original_weight`` (each
  feedback run weighs 1). The paper's vector-PRF finding, that the query should keep the majority of the weight,
  carries over: with 3 feedback runs, ``original_weight=5`` gives the original query 5/8 of the sum.

Cost: ``feedback_docs`` (plus one with ``include_original`` or ``feedback="self"``) reranker passes per query,
sent together through ``rerank_batch``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Literal

from ..base import BatchedReranker, Reranker, Scores
from ..engine.fusion import fuse
from ..errors import ConfigError
from ..types import Candidate, Query, RankedList
from ..validation import check_choice, check_int
from ._compose import as_reranker, ranking_pairs

__all__ = ["TextPRFReranker"]

_AGGREGATIONS = {"borda": ("borda", "none"), "sum": ("combsum", "none"), "rrf": ("rrf", "none")}


class TextPRFReranker(BatchedReranker):
    """Query-with-passage variants reranked by ``reranker`` and fused (see the module docstring)."""

    def __init__(
        self,
        reranker: Reranker | str,
        *,
        feedback_docs: int = 3,
        aggregation: Literal["borda", "sum", "rrf"] = "borda",
        feedback: Literal["input", "self"] = "input",
        include_original: bool = False,
        original_weight: float = 1.0,
        template: str = "{query} {passage}",
        max_passage_chars: int | None = None,
        k: float = 60,
        name: str | None = None,
    ) -> None:
        self.reranker = as_reranker(reranker, "TextPRFReranker reranker")
        self._owned = not isinstance(reranker, Reranker)
        check_int("feedback_docs", feedback_docs, 1)
        check_choice("aggregation", aggregation, sorted(_AGGREGATIONS))
        check_choice("feedback", feedback, ("input", "self"))
        if "{query}" not in template or "{passage}" not in template:
            raise ConfigError(f"template must contain {{query}} and {{passage}}, got {template!r}")
        check_int("max_passage_chars", max_passage_chars, 1, optional=True)
        if (
            isinstance(original_weight, bool)
            or not isinstance(original_weight, (int, float))
            or not math.isfinite(original_weight)
            or original_weight < 0
        ):
            raise ConfigError(f"original_weight must be a finite number >= 0, got {original_weight!r}")
        if original_weight != 1.0 and not include_original:
            raise ConfigError("original_weight applies only with include_original=True")
        self.original_weight = float(original_weight)
        self.feedback_docs = feedback_docs
        self.aggregation = aggregation
        self.feedback = feedback
        self.include_original = bool(include_original)
        self.template = template
        self.max_passage_chars = max_passage_chars
        self.k = k
        fuse([[("x", 1.0)]], "rrf", k=k)  # validates k now
        self.name = name if name is not None else f"prf-text({self.reranker.name},k={feedback_docs},{aggregation})"

    def _variant(self, query: Query, passage: Candidate) -> Query:
        text = passage.content
        if self.max_passage_chars is not None:
            text = text[: self.max_passage_chars]
        return Query(
            text=self.template.format(query=query.text, passage=text),
            id=query.id,
            image=query.image,
            metadata=query.metadata,
        )

    def _aggregate(
        self, runs: Sequence[RankedList], candidates: Sequence[Candidate], fb: list[int], with_original: bool
    ) -> Scores:
        method, norm = _AGGREGATIONS[self.aggregation]
        weights = [1.0] * len(runs)
        if with_original:
            weights[0] = self.original_weight
        fused = dict(
            fuse([ranking_pairs(r) for r in runs], method, k=self.k, normalization=norm, weights=weights)  # type: ignore[arg-type]
        )
        fb_ids = tuple(candidates[i].id for i in fb)
        fb_set = set(fb_ids)
        details = [{"prf": {"feedback": c.id in fb_set}} for c in candidates]
        traces = [t for r in runs for t in r.traces]
        return Scores([fused[c.id] for c in candidates], details=details, traces=traces,
                      extra={"feedback_ids": fb_ids, "runs": len(runs)})

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        originals: list[RankedList | None] = [None] * len(queries)
        if self.feedback == "self" or self.include_original:
            for i, r in enumerate(self.reranker.rerank_batch(list(queries), [list(c) for c in lists])):
                originals[i] = r
        feedback: list[list[int]] = []
        for i, cands in enumerate(lists):
            k = min(self.feedback_docs, len(cands))
            if self.feedback == "self":
                feedback.append([r.original_position for r in originals[i].results[:k]])  # type: ignore[union-attr]
            else:
                feedback.append(list(range(k)))
        flat_q, flat_c, owner = [], [], []
        for i, (q, cands) in enumerate(zip(queries, lists)):
            for j in feedback[i]:
                flat_q.append(self._variant(q, cands[j]))
                flat_c.append(list(cands))
                owner.append(i)
        results = self.reranker.rerank_batch(flat_q, flat_c)
        per_query: list[list[RankedList]] = [[] for _ in queries]
        for i, r in zip(owner, results):
            per_query[i].append(r)
        out = []
        for i, cands in enumerate(lists):
            runs = per_query[i]
            original = originals[i]
            with_original = self.include_original and original is not None
            if with_original:
                runs = [original, *runs]  # type: ignore[list-item]
            out.append(self._aggregate(runs, cands, feedback[i], with_original))
        return out

    def close(self) -> None:
        if self._owned:
            self.reranker.close()
