"""Pointwise LLM relevance: P(yes) or an expected grade, from one forward pass per (query, passage).

:class:`PointwiseLLMReranker` renders one prompt per candidate and reads the log-probabilities of the answer
labels as the first generated token (:meth:`~rerank_plugins.backends.base.LLMBackend.label_logprobs`; never
``generate``):

``mode="yes_no"``
    the score is ``P(yes) / (P(yes) + P(no))`` over the single-token spellings of yes and no
    (:func:`rerank_plugins.engine.logits.yes_probability`); details: ``p_yes``, ``logprob_yes``,
    ``logprob_no``, ``labels``.
``mode="graded"``
    the score is the expected grade over ``0..max_grade`` (ERank's 0-10 scale; 0-9 when the model splits
    ``"10"``, see :func:`~rerank_plugins.engine.logits.choose_grade_scale`) divided by the top grade, so it lies
    in [0, 1] whatever the scale; details: ``expected_grade``, ``max_grade``, ``distribution``.

Passages longer than ``max_passage_words`` are cut with a warning (``long_passages="truncate"``), or split into
chunks of that many words whose best score is kept (``long_passages="chunk"``; ``details["chunks"]``).
Prompts of all queries are scored together in batches of ``batch_size``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..backends.base import ChatPrompt, LLMBackend
from ..base import Reranker, Scores
from ..engine.logits import (
    KNOWN_YES_NO_LABELS,
    BinaryLabels,
    choose_grade_scale,
    choose_yes_no_labels,
    graded_expectation,
    yes_probability,
)
from ..errors import BackendError, ConfigError, InvalidInputError, ModelOutputError
from ..prompts import PromptTemplate, clean_passage, get_prompt
from ..refs import ModelRef
from ..types import Candidate, Query
from ._llm import check_choice, check_int, release_backend, resolve_backend, warn_truncated

__all__ = ["GradedLLMReranker", "PointwiseLLMReranker", "YesNoLLMReranker"]

_MODES = ("yes_no", "graded")
_LONG = ("truncate", "chunk")


class PointwiseLLMReranker(Reranker):
    """Pointwise yes/no or graded relevance from an LLM's first-token log-probabilities (see the module docstring).

    Args:
        model: an :class:`~rerank_plugins.backends.base.LLMBackend`, or a name/path/ModelRef to load.
        mode: ``"yes_no"`` or ``"graded"``.
        prompt / prompt_version: default ``"yes-no"`` or ``"graded"``; any pointwise template of that format.
        batch_size: prompts per backend call.
        labels: yes/no spellings ``{"yes": [...], "no": [...]}``; default: the model's entry in
            :data:`~rerank_plugins.engine.logits.KNOWN_YES_NO_LABELS` (exact model id), else the usual
            spellings; only single-token ones are used.
        max_grade: top of the graded scale (default 10, ERank).
        max_passage_words / long_passages: see the module docstring (``None`` keeps passages whole).
        backend / backend_options: how to load ``model``.
    """

    kind = "pointwise-llm"

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef | LLMBackend,
        *,
        mode: str = "yes_no",
        prompt: str | PromptTemplate | None = None,
        prompt_version: str | int | None = None,
        batch_size: int = 16,
        labels: BinaryLabels | Mapping[str, Sequence[str]] | None = None,
        max_grade: int = 10,
        max_passage_words: int | None = 300,
        long_passages: str = "truncate",
        backend: str = "transformers",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self.mode = check_choice("mode", mode, _MODES)
        check_int("batch_size", batch_size, 1)
        self.batch_size: int = batch_size
        self.max_passage_words = check_int("max_passage_words", max_passage_words, 1, optional=True)
        self.long_passages = check_choice("long_passages", long_passages, _LONG)
        if self.long_passages == "chunk" and max_passage_words is None:
            raise ConfigError("long_passages='chunk' needs max_passage_words (the chunk length)")
        check_int("max_grade", max_grade, 1)
        if labels is not None and self.mode != "yes_no":
            raise ConfigError("labels apply to mode='yes_no' only")
        self.template = get_prompt(prompt if prompt is not None else self._default_prompt(), prompt_version)
        wanted = "yes_no" if self.mode == "yes_no" else "grade"
        if self.template.kind != "pointwise" or self.template.output_format != wanted:
            raise ConfigError(f"prompt {self.template.key} does not produce {wanted!r} answers for mode={mode!r}")
        self.backend, self._owns_backend = resolve_backend(model, backend, backend_options)
        single = self.backend.single_token
        if self.mode == "yes_no":
            table = labels if labels is not None else KNOWN_YES_NO_LABELS.get(self.backend.model_id)
            self.labels: BinaryLabels | None = choose_yes_no_labels(single, table)
            self.max_grade: int | None = None
            self._label_list = self.labels.labels
        else:
            self.labels = None
            self.max_grade = choose_grade_scale(single, max_grade)
            self._label_list = [str(g) for g in range(self.max_grade + 1)]
        self.name = f"{'yes-no' if self.mode == 'yes_no' else 'graded'}:{self.backend.model_id}"

    def _default_prompt(self) -> str:
        return "yes-no" if self.mode == "yes_no" else "graded"

    # ------------------------------------------------------------------ Reranker
    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        return self._score_many([query], [candidates])[0]

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        prompts: list[ChatPrompt] = []
        owners: list[tuple[int, int]] = []  # (query index, candidate index) of each prompt
        truncated = 0
        cut_flags: list[list[bool]] = []
        for qi, (query, cands) in enumerate(zip(queries, lists)):
            flags = []
            for ci, cand in enumerate(cands):
                chunks, was_cut = self._chunks(cand)
                truncated += was_cut
                flags.append(was_cut)
                for chunk in chunks:
                    prompts.append(self.template.render_pointwise(query.text, chunk, max_grade=self.max_grade))
                    owners.append((qi, ci))
            cut_flags.append(flags)
        warn_truncated(truncated, self.max_passage_words, type(self).__name__)

        rows: list[list[float]] = []
        for start in range(0, len(prompts), self.batch_size):
            batch = prompts[start : start + self.batch_size]
            out = self.backend.label_logprobs(batch, self._label_list)
            if len(out) != len(batch) or any(len(r) != len(self._label_list) for r in out):
                raise BackendError(f"{self.backend.model_id}: label_logprobs returned a malformed result")
            rows.extend(out)

        best: list[list[tuple[float, dict[str, Any]] | None]] = [[None] * len(c) for c in lists]
        chunks_seen: list[list[int]] = [[0] * len(c) for c in lists]
        for (qi, ci), row in zip(owners, rows):
            try:
                score, details = self._read(row)
            except ModelOutputError as exc:
                cid = lists[qi][ci].id
                raise ModelOutputError(f"{self.name}: candidate {cid!r}: {exc}", raw_text=str(row)) from None
            chunks_seen[qi][ci] += 1
            current = best[qi][ci]
            if current is None or score > current[0]:
                best[qi][ci] = (score, details)

        results: list[Scores] = []
        for qi, cands in enumerate(lists):
            values: list[float] = []
            per_candidate: list[dict[str, Any]] = []
            for ci in range(len(cands)):
                entry = best[qi][ci]
                assert entry is not None
                values.append(entry[0])
                d = dict(entry[1])
                if chunks_seen[qi][ci] > 1:
                    d["chunks"] = chunks_seen[qi][ci]
                if cut_flags[qi][ci]:
                    d["truncated"] = True
                per_candidate.append(d)
            results.append(
                Scores(values=values, details=per_candidate, extra={"mode": self.mode, "prompt": self.template.key})
            )
        return results

    def close(self) -> None:
        release_backend(self.backend, self._owns_backend)

    # ------------------------------------------------------------------ helpers
    def _chunks(self, cand: Candidate) -> tuple[list[str], bool]:
        if cand.text is None:
            raise InvalidInputError(f"{type(self).__name__} ranks text; candidate {cand.id!r} has no text")
        if self.long_passages == "chunk":
            assert self.max_passage_words is not None
            words = cand.text.split()
            size = self.max_passage_words
            pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)] or [""]
            return [clean_passage(p)[0] for p in pieces], False
        text, cut = clean_passage(cand.text, self.max_passage_words)
        return [text], cut

    def _read(self, row: list[float]) -> tuple[float, dict[str, Any]]:
        if self.labels is not None:
            p, lp_yes, lp_no = yes_probability(row, self.labels)
            return p, {"p_yes": p, "logprob_yes": lp_yes, "logprob_no": lp_no, "labels": self._label_list}
        assert self.max_grade is not None
        expected, dist = graded_expectation(row)
        return expected / self.max_grade, {
            "expected_grade": expected,
            "max_grade": self.max_grade,
            "distribution": tuple(dist),
        }


class YesNoLLMReranker(PointwiseLLMReranker):
    """:class:`PointwiseLLMReranker` with ``mode="yes_no"`` (``load_reranker(model, kind="yes-no")``)."""

    kind = "yes-no"

    def __init__(self, model: str | os.PathLike[str] | ModelRef | LLMBackend, **options: Any) -> None:
        if options.pop("mode", "yes_no") != "yes_no":
            raise ConfigError("YesNoLLMReranker always uses mode='yes_no'")
        super().__init__(model, mode="yes_no", **options)


class GradedLLMReranker(PointwiseLLMReranker):
    """:class:`PointwiseLLMReranker` with ``mode="graded"`` (``load_reranker(model, kind="graded")``)."""

    kind = "graded"

    def __init__(self, model: str | os.PathLike[str] | ModelRef | LLMBackend, **options: Any) -> None:
        if options.pop("mode", "graded") != "graded":
            raise ConfigError("GradedLLMReranker always uses mode='graded'")
        super().__init__(model, mode="graded", **options)
