"""Pairwise LLM judges as rerankers: PRP (pairwise ranking prompting) and judge models such as FARE.

:class:`PairwiseReranker` asks an LLM which of two passages answers the query better and reads the answer from the
log-probabilities of the two answer tokens (``A`` / ``B``, one :meth:`~rerank_plugins.backends.base.LLMBackend.
label_logprobs` forward pass per prompt, never ``generate``): ``P(A) = P(A) / (P(A) + P(B))`` summed over the
single-token spellings of each letter. Each pair is asked in both orders (``both_orders=True``) and the two
answers averaged to cancel position bias (:func:`~rerank_plugins.engine.pairwise.pair_preference`).

Methods (:mod:`rerank_plugins.engine.pairwise`)
    * ``"allpairs"``: every pair, aggregated by ``"borda"`` (mean win probability, in [0, 1]) or ``"copeland"``
      ((wins - losses) / (n - 1)); ``n (n - 1)`` prompts for ``n`` candidates with both orders, so use it on a
      short list (e.g. the last stage of a :class:`~rerank_plugins.rankers.cascade.CascadeReranker`);
    * ``"sliding"``: ``top_k_settle`` bubble passes from the bottom up (PRP-sliding-k);
    * ``"heap"``: heap selection of the best ``top_k_settle`` (PRP-sorting limited to the top).
    The sorting methods settle only the top ``top_k_settle``; scores then come from the final order
    (``1.0`` for the first down to ``1/n``).

Comparisons of all queries run in lockstep: at each step every query's pending pairs go to the backend together
(in chunks of ``batch_size`` prompts). A pair met twice in one query is asked once. ``extra`` reports the number
of comparisons and prompts.

Prompts: ``"prp"`` (the PRP paper's wording, answer forced to start with ``Passage``) or ``"pairwise-judge"``
(evaluator wording for judge models), or any template of kind ``pairwise``. For a judge's *rating* of one passage,
use :class:`~rerank_plugins.rankers.pointwise_llm.GradedLLMReranker` with ``prompt="judge-rating"``
(:class:`RatingJudgeReranker`).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any, cast

from ..backends.base import ChatPrompt, LLMBackend
from ..base import BatchedReranker, Scores, scores_from_order
from ..engine.logits import BinaryLabels, choose_yes_no_labels, yes_probability
from ..engine.pairwise import (
    AGGREGATIONS,
    Comparisons,
    allpairs,
    allpairs_scores,
    heap_top_k,
    pair_preference,
    sliding_top_k,
)
from ..errors import ConfigError, ModelOutputError
from ..prompts import PromptTemplate, get_prompt
from ..refs import ModelRef
from ..types import Candidate, Query
from ..validation import check_choice, check_int
from ._llm import (
    batched_label_logprobs,
    passage_texts,
    release_backend,
    resolve_backend,
    warn_truncated,
)
from .pointwise_llm import GradedLLMReranker

__all__ = ["DEFAULT_CHOICE_LABELS", "PairwiseReranker", "RatingJudgeReranker"]

_METHODS = ("allpairs", "sliding", "heap")
#: spellings of the two answers; only those that are single tokens for the model are used
DEFAULT_CHOICE_LABELS = BinaryLabels((" A", "A"), (" B", "B"))


class _QueryRun:
    """The comparisons of one query: its sorting generator (or the all-pairs list) and the preferences so far."""

    def __init__(self, n: int, method: str, k: int) -> None:
        self.n = n
        self.prefs: dict[tuple[int, int], float] = {}
        self.order: list[int] | None = None
        self.gen: Comparisons | None = None
        self.pending: list[tuple[int, int]] = []
        if method == "allpairs":
            self.pending = allpairs(n)
        else:
            self.gen = sliding_top_k(range(n), k) if method == "sliding" else heap_top_k(range(n), k)
            self._advance(None)

    def _advance(self, answers: list[float] | None) -> None:
        assert self.gen is not None
        try:
            self.pending = next(self.gen) if answers is None else self.gen.send(answers)
        except StopIteration as stop:
            self.order, self.pending = list(stop.value), []

    def known(self, x: int, y: int) -> float | None:
        if (x, y) in self.prefs:
            return self.prefs[(x, y)]
        if (y, x) in self.prefs:
            return 1.0 - self.prefs[(y, x)]
        return None

    def receive(self, answers: list[float]) -> None:
        for (x, y), p in zip(self.pending, answers):
            if self.known(x, y) is None:
                self.prefs[(x, y)] = p
        if self.gen is None:
            self.pending = []
        else:
            self._advance(answers)


class PairwiseReranker(BatchedReranker):
    """An LLM judge comparing passages two at a time (see the module docstring).

    Args:
        model: an :class:`~rerank_plugins.backends.base.LLMBackend`, or a name/path/ModelRef to load.
        method: ``"allpairs"``, ``"sliding"`` or ``"heap"``.
        aggregation: ``"borda"`` or ``"copeland"`` (``allpairs`` only).
        top_k_settle: how many top positions the sorting methods settle (default 10).
        both_orders: ask each pair in both orders (default) or once (``P(i > j) = P(A)``).
        prompt / prompt_version: a ``pairwise`` template (default ``"prp"``).
        labels: spellings of the answers ``{"yes": A-spellings, "no": B-spellings}``; default ``A``/``B``.
        max_passage_words: passages are cut to this many words (a warning says so).
        batch_size: prompts per backend call.
        backend / backend_options: how to load ``model``.
    """

    kind = "pairwise"

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef | LLMBackend,
        *,
        method: str = "allpairs",
        aggregation: str = "borda",
        top_k_settle: int = 10,
        both_orders: bool = True,
        prompt: str | PromptTemplate | None = None,
        prompt_version: str | int | None = None,
        labels: BinaryLabels | Mapping[str, Sequence[str]] | None = None,
        max_passage_words: int | None = 200,
        batch_size: int = 16,
        backend: str = "transformers",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self.method = check_choice("method", method, _METHODS)
        self.aggregation = check_choice("aggregation", aggregation, AGGREGATIONS)
        self.top_k_settle = cast(int, check_int("top_k_settle", top_k_settle, 1))
        self.both_orders = bool(both_orders)
        self.max_passage_words = check_int("max_passage_words", max_passage_words, 1, optional=True)
        self.batch_size = cast(int, check_int("batch_size", batch_size, 1))
        self.template = get_prompt(prompt if prompt is not None else "prp", prompt_version)
        if self.template.kind != "pairwise":
            raise ConfigError(
                f"prompt {self.template.key} is {self.template.kind}; PairwiseReranker needs a pairwise one"
            )
        self.backend, self._owns_backend = resolve_backend(model, backend, backend_options)
        wanted = labels if labels is not None else DEFAULT_CHOICE_LABELS
        try:
            self.labels = choose_yes_no_labels(self.backend.single_token, wanted)
        except ConfigError as exc:
            raise ConfigError(
                f"{self.backend.model_id}: the answers A and B need single-token spellings ({exc}); "
                "pass labels={'yes': [A spellings], 'no': [B spellings]}"
            ) from None
        suffix = f"{self.method}-{self.aggregation}" if self.method == "allpairs" else f"{self.method}@{top_k_settle}"
        self.name = f"pairwise-{suffix}:{self.backend.model_id}"

    # ------------------------------------------------------------------ Reranker
    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        texts: list[list[str]] = []
        cut = 0
        for cands in lists:
            t, c = passage_texts(cands, self.max_passage_words, type(self).__name__)
            texts.append(t)
            cut += c
        warn_truncated(cut, self.max_passage_words, type(self).__name__)
        runs = [_QueryRun(len(c), self.method, self.top_k_settle) for c in lists]
        asked = [0] * len(runs)
        while any(r.pending for r in runs):
            todo: list[tuple[int, int, int]] = []  # (query index, x, y) still unknown
            for qi, run in enumerate(runs):
                todo.extend((qi, x, y) for x, y in dict.fromkeys(run.pending) if run.known(x, y) is None)
            fresh = dict(zip(todo, self._compare([(queries[q], texts[q][x], texts[q][y]) for q, x, y in todo])))
            for qi, run in enumerate(runs):
                if not run.pending:
                    continue
                answers = []
                for x, y in run.pending:
                    p = fresh.pop((qi, x, y), None)
                    if p is not None:
                        asked[qi] += 1
                        run.prefs[(x, y)] = p
                    known = run.known(x, y)
                    assert known is not None
                    answers.append(known)
                run.receive(answers)
        return [self._result(run, n_asked) for run, n_asked in zip(runs, asked)]

    def close(self) -> None:
        release_backend(self.backend, self._owns_backend)

    # ------------------------------------------------------------------ helpers
    def _compare(self, items: list[tuple[Query, str, str]]) -> list[float]:
        """``P(x > y)`` for each (query, text x, text y), both orders when configured."""
        prompts: list[ChatPrompt] = []
        for query, x, y in items:
            prompts.append(self.template.render_pairwise(query.text, x, y))
            if self.both_orders:
                prompts.append(self.template.render_pairwise(query.text, y, x))
        labels = self.labels.labels
        rows = batched_label_logprobs(self.backend, prompts, labels, self.batch_size)
        probs = []
        for i, row in enumerate(rows):
            try:
                probs.append(yes_probability(row, self.labels)[0])
            except ModelOutputError as exc:
                raise ModelOutputError(f"{self.name}: comparison prompt {i}: {exc}", raw_text=str(row)) from None
        if not self.both_orders:
            return [pair_preference(p) for p in probs]
        return [pair_preference(probs[2 * i], probs[2 * i + 1]) for i in range(len(items))]

    def _result(self, run: _QueryRun, asked: int) -> Scores:
        n = run.n
        extra: dict[str, Any] = {
            "method": self.method,
            "prompt": self.template.key,
            "comparisons": asked,
            "prompts": asked * (2 if self.both_orders else 1),
        }
        if self.method == "allpairs":
            values = allpairs_scores(n, run.prefs, self.aggregation)
            extra["aggregation"] = self.aggregation
        else:
            assert run.order is not None
            values = scores_from_order(run.order, n)
            extra["settled"] = min(self.top_k_settle, n)
        wins = [[0.0, 0] for _ in range(n)]
        for (x, y), p in run.prefs.items():
            wins[x][0] += p
            wins[y][0] += 1.0 - p
            wins[x][1] += 1
            wins[y][1] += 1
        details = [{"pairwise": {"comparisons": int(c), "expected_wins": w}} for w, c in wins]
        return Scores(values, details=details, extra=extra)


class RatingJudgeReranker(GradedLLMReranker):
    """A judge's 0..10 rating of each passage (``prompt="judge-rating"``), scored like the graded pointwise reranker:
    the expected grade of the first answer token over the top grade (``load_reranker(model, kind="rating-judge")``)."""

    kind = "rating-judge"

    def __init__(self, model: str | os.PathLike[str] | ModelRef | LLMBackend, **options: Any) -> None:
        options.setdefault("prompt", "judge-rating")
        super().__init__(model, **options)
        self.name = f"rating-judge:{self.backend.model_id}"
