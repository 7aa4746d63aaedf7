"""InsertRank: listwise LLM reranking with each passage's first-stage score written in the prompt.

Seetharaman, Dhole and Bansal (2025), "InsertRank: LLMs can reason over BM25 scores to Improve Listwise
Reranking", give a listwise LLM reranker the BM25 score of every document next to its text, ``(q, D1, b1, ...,
Dn, bn)``, and tell it what the score means; zero-shot, it improves reranking across LLM families. They also vary
the scale of the scores (raw vs normalised).

:class:`InsertRankReranker` is a :class:`~rerank_plugins.rankers.listwise.ListwiseReranker` (same windows,
``mode="generate"`` or ``mode="first"``, traces, fallbacks) whose passages carry ``Candidate.score`` (BM25 or
any first-stage score) after the text, as ``"{text} ({score_label}: {score})"``. The score is shown as

* ``score_scale="raw"`` (default): the first-stage score as given, rounded to ``decimals``;
* ``score_scale="minmax"``: min-max normalised over the query's candidate list to [0, 1] (``decimals``);
* ``score_scale="percent"``: the same on 0..100, as integers.

Normalisation runs over the whole candidate list of the query (not per window), so a passage shows the same
number in every window. Candidates without a score are shown without one (``missing="omit"``, the default;
``extra["unscored_passages"]`` counts them) or raise (``missing="raise"``). The default prompts are
``insertrank`` (generate) and ``insertrank-first`` (FIRST): the RankZephyr / FIRST wording plus one sentence on
the BM25 score; pass ``prompt=`` for another (e.g. when the scores are not BM25).
"""

from __future__ import annotations

import dataclasses
import math
import os
from collections.abc import Mapping, Sequence
from types import MappingProxyType
from typing import Any, ClassVar

from ..backends.base import LLMBackend
from ..base import Scores
from ..engine.fusion import normalize_scores
from ..errors import ConfigError, InvalidInputError
from ..refs import ModelRef
from ..types import Candidate, Query
from ..validation import check_choice, check_int
from .listwise import FirstLogitsAnswer, GeneratedPermutationAnswer, ListwiseReranker, WindowAnswer

__all__ = ["InsertRankFirstAnswer", "InsertRankGeneratedAnswer", "InsertRankReranker", "format_scores"]

_SCALES = ("raw", "minmax", "percent")


def format_scores(scores: Sequence[float | None], scale: str = "raw", decimals: int = 2) -> list[str | None]:
    """The score strings shown in the prompt (``None`` for a missing score), normalised over the list."""
    check_choice("score_scale", scale, _SCALES)
    present = [s for s in scores if s is not None]
    if any(not math.isfinite(s) for s in present):
        raise InvalidInputError(f"first-stage scores must be finite to be shown to the model, got {present}")
    if scale == "raw":
        shown = list(present)
    else:
        shown = normalize_scores(present, "minmax")
        if scale == "percent":
            shown = [100.0 * s for s in shown]
    it = iter(shown)
    out: list[str | None] = []
    for s in scores:
        if s is None:
            out.append(None)
            continue
        value = next(it)
        out.append(str(round(value)) if scale == "percent" else f"{value:.{decimals}f}")
    return out


class InsertRankFirstAnswer(FirstLogitsAnswer):
    """FIRST logits over windows whose passages carry their first-stage scores."""

    default_prompt = "insertrank-first"


class InsertRankGeneratedAnswer(GeneratedPermutationAnswer):
    """A generated permutation over windows whose passages carry their first-stage scores."""

    default_prompt = "insertrank"


class InsertRankReranker(ListwiseReranker):
    """:class:`ListwiseReranker` with first-stage scores in the prompt (see the module docstring).

    Args (besides those of :class:`ListwiseReranker`):
        score_scale: ``"raw"``, ``"minmax"`` or ``"percent"``.
        score_label: how the score is named after each passage (default ``"BM25 score"``).
        decimals: decimals shown for ``raw`` and ``minmax``.
        missing: ``"omit"`` (a candidate without a score is shown without one) or ``"raise"``.
    """

    kind = "insertrank"
    answers: ClassVar[Mapping[str, WindowAnswer]] = MappingProxyType(
        {"first": InsertRankFirstAnswer(), "generate": InsertRankGeneratedAnswer()}
    )

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef | LLMBackend,
        *,
        score_scale: str = "raw",
        score_label: str = "BM25 score",
        decimals: int = 2,
        missing: str = "omit",
        **options: Any,
    ) -> None:
        self.score_scale = check_choice("score_scale", score_scale, _SCALES)
        self.missing = check_choice("missing", missing, ("omit", "raise"))
        check_int("decimals", decimals, 0)
        if not isinstance(score_label, str) or not score_label.strip():
            raise ConfigError(f"score_label must be a non-empty str, got {score_label!r}")
        self.score_label = score_label
        self.decimals = decimals
        super().__init__(model, **options)
        self.name = f"{self.kind}-{self.mode}:{self.backend.model_id}"

    def _passage_texts(self, query: Query, candidates: Sequence[Candidate]) -> tuple[list[str], int]:
        texts, cut = super()._passage_texts(query, candidates)
        scores = [c.score for c in candidates]
        missing = [c.id for c in candidates if c.score is None]
        if missing and self.missing == "raise":
            raise InvalidInputError(
                f"{self.name}: candidates without a first-stage score: {missing[:5]} "
                f"({len(missing)} in all); set Candidate.score or use missing='omit'"
            )
        shown = format_scores(scores, self.score_scale, self.decimals)
        return [t if s is None else f"{t} ({self.score_label}: {s})" for t, s in zip(texts, shown)], cut

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        out = super()._score_many(queries, lists)
        return [
            dataclasses.replace(
                scores,
                extra={
                    **scores.extra,
                    "unscored_passages": sum(c.score is None for c in cands),
                    "score_scale": self.score_scale,
                },
            )
            for cands, scores in zip(lists, out)
        ]
