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

Long passages follow the length policy (:mod:`rerank_plugins.engine.length_policy`). A template prompt reads at
most ``max_document_tokens`` of the passage (default 400 of the model's tokens, about the 300 words this ranker
cut before; whitespace-separated words stand in for tokens when the backend has no tokenizer); a token-level
prompt format (a model recipe) is cut at ``max_length`` on the whole prompt exactly as its reference cuts it
(``max_document_tokens`` then also caps the passage first). ``long_documents="truncate"`` (the default) cuts, with
one :class:`~rerank_plugins.engine.length_policy.TruncationWarning` per call naming how many passages were cut;
``"chunk"`` splits a long passage into windows that each fit (``chunk_overlap`` tokens shared, at most
``max_chunks``; a recipe's windows are measured on the whole assembled prompt), scores every window in the same
batches (identical prompts once) and aggregates by ``chunk_aggregate`` (``"max"``, MaxP, by default; ``"first"``,
``"mean"``); the best window's span in the original text is ``details["best_chunk"]`` and its answer details (e.g.
``p_yes``) are the candidate's. ``max_passage_words`` (words) and ``long_passages`` (``long_documents``) are
deprecated aliases: they still work, with a ``FutureWarning``.
Prompts of all queries are scored together in batches of ``batch_size``.

Model recipes (token-level prompts)
    A public reranker (Qwen3-Reranker, bge-reranker-v2-gemma, mxbai-rerank v2; see
    :mod:`rerank_plugins.recipes.pointwise`) is reproduced exactly with ``prompt_format=`` a
    :class:`~rerank_plugins.engine.token_prompt.TokenPromptFormat`: the prompt ids are assembled piece by piece
    the way the reference code assembles them (no chat template, no whitespace cleaning of the passage, cuts at
    the token level to ``max_length``, BOS as the format says) and sent pre-tokenised
    (:attr:`~rerank_plugins.backends.base.ChatPrompt.token_ids`, with the same prompt as text in ``raw`` for
    servers that take text). ``instruction=`` fills ``{instruction}`` (default: the format's). ``labels`` are
    then one yes and one no spelling, each of which must tokenise alone to a single token of the loaded
    tokenizer (else :class:`~rerank_plugins.errors.ConfigError` naming them), and all prompts of a call go to
    the backend at once (it sorts them by length and batches them under its token budget).

Score formulas (``score=``, yes/no mode; ``lp`` a label's log-probability, ``z`` its raw logit)
    ``"p_yes"`` (default) ``exp(lp_yes) / (exp(lp_yes) + exp(lp_no))``, the log-softmax over [no, yes] of
    Qwen3-Reranker; ``"logit"`` ``z_yes`` (FlagEmbedding ``normalize=False``); ``"sigmoid"`` ``sigmoid(z_yes -
    score_shift)`` (FlagEmbedding ``normalize=True``); ``"logit_diff"`` ``z_yes - z_no`` (mxbai-rerank v2, equal to
    ``lp_yes - lp_no``); ``"sigmoid_diff"`` ``sigmoid(z_yes - z_no - score_shift)`` (mxbai-rerank ``normalize=True``
    with ``score_shift = estimated_max / 2``). ``logit`` and ``sigmoid`` need raw logits
    (:meth:`~rerank_plugins.backends.base.LLMBackend.label_logits`: the transformers backend); the others work
    from log-probabilities on every backend. The logit formulas need exactly one yes and one no spelling.
"""

from __future__ import annotations

import math
import os
import re
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, cast

from .._warnings import caller_stacklevel
from ..backends.base import ChatPrompt, LLMBackend
from ..base import BatchedReranker, Scores
from ..engine.length_policy import (
    DocumentPlan,
    LengthPolicy,
    TruncationWarning,
    call_stats,
    deprecated_option,
    document_score,
    plan_document,
    policy_from_options,
    token_offsets,
    warn_truncated,
)
from ..engine.logits import (
    KNOWN_YES_NO_LABELS,
    BinaryLabels,
    choose_grade_scale,
    choose_yes_no_labels,
    graded_expectation,
    yes_probability,
)
from ..engine.token_prompt import TokenPromptFormat, build_token_prompt
from ..errors import ConfigError, InvalidInputError, ModelOutputError
from ..prompts import PromptTemplate, clean_passage, get_prompt
from ..refs import ModelRef
from ..types import Candidate, Query
from ..validation import check_choice, check_int, check_number
from ._llm import batched_label_logprobs, release_backend, resolve_backend

__all__ = ["GradedLLMReranker", "PointwiseLLMReranker", "YesNoLLMReranker"]

_MODES = ("yes_no", "graded")
#: the passage budget of a template prompt when none is given: about the 300 words this ranker used to keep
DEFAULT_DOCUMENT_TOKENS = 400
_WORD = re.compile(r"\S+")
_SCORES = ("p_yes", "logit", "sigmoid", "logit_diff", "sigmoid_diff")
_RAW_SCORES = ("logit", "sigmoid")


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class LabelAnswer(ABC):
    """How a pointwise LLM's answer is read: which label tokens the backend is asked about (:attr:`labels`, as
    log-probabilities, or raw logits when :attr:`raw_logits`) and what one row of them scores (:meth:`read`).
    The one contract for both answer types, yes/no and graded, in the spirit of transformers' logits processors."""

    labels: list[str]
    raw_logits: bool = False

    @abstractmethod
    def read(self, row: list[float]) -> tuple[float, dict[str, Any]]:
        """The score of one row (one value per label) and its details; unusable rows are a ModelOutputError."""


class YesNoAnswer(LabelAnswer):
    """P(yes) (``score="p_yes"``), or a formula on the yes/no log-probabilities or raw logits (``score=``)."""

    def __init__(self, labels: BinaryLabels, score: str, shift: float) -> None:
        self.binary, self.score, self.shift = labels, score, shift
        self.labels = labels.labels
        self.raw_logits = score in _RAW_SCORES

    def read(self, row: list[float]) -> tuple[float, dict[str, Any]]:
        if self.raw_logits:
            z_yes, z_no = (float(v) for v in row)
            if not (math.isfinite(z_yes) and math.isfinite(z_no)):
                raise ModelOutputError(f"the model returned invalid logits for yes/no: {row}")
            value = z_yes if self.score == "logit" else _sigmoid(z_yes - self.shift)
            return value, {"logit_yes": z_yes, "logit_no": z_no, "labels": self.labels}
        p, lp_yes, lp_no = yes_probability(row, self.binary)
        details: dict[str, Any] = {"p_yes": p, "logprob_yes": lp_yes, "logprob_no": lp_no}
        details["labels"] = self.labels
        if self.score == "p_yes":
            return p, details
        if not (math.isfinite(lp_yes) and math.isfinite(lp_no)):
            raise ModelOutputError(f"score={self.score!r} needs both yes and no log-probabilities, got {row}")
        diff = lp_yes - lp_no
        details["logit_diff"] = diff
        return (diff if self.score == "logit_diff" else _sigmoid(diff - self.shift)), details


class GradedAnswer(LabelAnswer):
    """The expected grade over the grade tokens ``0..max_grade``, divided by ``max_grade`` (ERank-style)."""

    def __init__(self, max_grade: int) -> None:
        self.max_grade = max_grade
        self.labels = [str(g) for g in range(max_grade + 1)]

    def read(self, row: list[float]) -> tuple[float, dict[str, Any]]:
        expected, dist = graded_expectation(row)
        return expected / self.max_grade, {
            "expected_grade": expected,
            "max_grade": self.max_grade,
            "distribution": tuple(dist),
        }


class PointwiseLLMReranker(BatchedReranker):
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
        long_documents / max_chunks / chunk_overlap / chunk_aggregate: the length policy (module docstring):
            ``"truncate"`` (default) or ``"chunk"``; at most ``max_chunks`` windows (10) sharing ``chunk_overlap``
            tokens (32), aggregated ``"max"`` (default), ``"first"`` or ``"mean"``.
        max_document_tokens: most tokens of a passage (template prompts: default 400; a ``prompt_format`` reads
            the whole passage unless given, cut at ``max_length`` as its reference cuts).
        truncation_side: ``"right"`` (keep the beginning; default) or ``"left"`` (keep the end).
        max_passage_words: deprecated alias of ``max_document_tokens`` counted in whitespace-separated words
            (``FutureWarning``).
        long_passages: deprecated alias of ``long_documents`` (``FutureWarning``).
        prompt_format: a token-level prompt format (model recipes; module docstring), instead of ``prompt``.
        instruction: the task instruction of ``prompt_format`` (``None``: the format's default).
        max_length: token budget of ``prompt_format`` (``None``: the format's).
        score / score_shift: the score formula of yes/no mode (module docstring).
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
        max_passage_words: int | None = None,
        long_passages: str | None = None,
        prompt_format: TokenPromptFormat | Mapping[str, Any] | None = None,
        instruction: str | None = None,
        max_length: int | None = None,
        score: str | None = None,
        score_shift: float = 0.0,
        backend: str = "transformers",
        backend_options: dict[str, Any] | None = None,
        long_documents: str | None = None,
        max_chunks: int | None = None,
        chunk_overlap: int | None = None,
        chunk_aggregate: str | None = None,
        max_document_tokens: int | None = None,
        truncation_side: str | None = None,
    ) -> None:
        self.mode = check_choice("mode", mode, _MODES)
        self.policy, self.max_passage_words = _policy(
            long_documents, long_passages, max_document_tokens, max_passage_words,
            max_chunks=max_chunks, chunk_overlap=chunk_overlap, chunk_aggregate=chunk_aggregate,
            truncation_side=truncation_side,
        )
        self.prompt_format = TokenPromptFormat.from_options(prompt_format) if prompt_format is not None else None
        if self.prompt_format is not None and (prompt is not None or prompt_version is not None):
            raise ConfigError("pass either prompt_format (a token-level format) or prompt, not both")
        if self.prompt_format is not None and self.mode != "yes_no":
            raise ConfigError("prompt_format supports mode='yes_no' only")
        if instruction is not None and (not isinstance(instruction, str) or self.prompt_format is None):
            raise ConfigError("instruction must be a string and applies to a prompt_format (a model recipe) only")
        self.instruction = instruction
        self.max_length = check_int("max_length", max_length, 1, optional=True)
        if max_length is not None and self.prompt_format is None:
            raise ConfigError("max_length (a token budget) applies to a prompt_format only")
        if score is not None and self.mode != "yes_no":
            raise ConfigError("score applies to mode='yes_no' only")
        self.score = check_choice("score", score if score is not None else "p_yes", _SCORES)
        self.score_shift = float(check_number("score_shift", score_shift, finite=True))
        check_int("batch_size", batch_size, 1)
        self.batch_size: int = batch_size
        self.long_documents = self.policy.long_documents
        self._can_tokenize: bool | None = None
        check_int("max_grade", max_grade, 1)
        if labels is not None and self.mode != "yes_no":
            raise ConfigError("labels apply to mode='yes_no' only")
        self.template = get_prompt(prompt if prompt is not None else self._default_prompt(), prompt_version)
        wanted = "yes_no" if self.mode == "yes_no" else "grade"
        if self.template.kind != "pointwise" or self.template.output_format != wanted:
            raise ConfigError(f"prompt {self.template.key} does not produce {wanted!r} answers for mode={mode!r}")
        labels_given = _label_table(labels) if labels is not None else None
        single_pair = self.score != "p_yes" or self.prompt_format is not None
        if single_pair and labels_given is not None and (len(labels_given.yes) != 1 or len(labels_given.no) != 1):
            raise ConfigError(
                f"score={self.score!r} and prompt formats need exactly one yes and one no label, got "
                f"{labels_given.yes} / {labels_given.no}"
            )
        self.backend, self._owns_backend = resolve_backend(model, backend, backend_options)
        single = self.backend.single_token
        self._static_ids: dict[str, list[int]] = {}
        if self.prompt_format is not None:
            chosen = labels_given if labels_given is not None else BinaryLabels(("yes",), ("no",))
            self._check_alone_single(chosen)
            self.labels: BinaryLabels | None = chosen
            self.max_grade: int | None = None
        elif self.mode == "yes_no":
            table = labels_given if labels_given is not None else KNOWN_YES_NO_LABELS.get(self.backend.model_id)
            self.labels = choose_yes_no_labels(single, table)
            self.max_grade = None
            if self.score != "p_yes" and (len(self.labels.yes) != 1 or len(self.labels.no) != 1):
                raise ConfigError(
                    f"score={self.score!r} needs exactly one yes and one no label; pass labels={{'yes': [...], "
                    f"'no': [...]}} (the single-token spellings here: {self.labels.yes} / {self.labels.no})"
                )
        else:
            self.labels = None
            self.max_grade = choose_grade_scale(single, max_grade)
        self.answer: LabelAnswer = (
            YesNoAnswer(self.labels, self.score, self.score_shift) if self.labels is not None
            else GradedAnswer(cast(int, self.max_grade))
        )
        self._label_list = self.answer.labels
        self.name = f"{'yes-no' if self.mode == 'yes_no' else 'graded'}:{self.backend.model_id}"

    def with_length_policy(self, policy: LengthPolicy) -> PointwiseLLMReranker:
        """A copy sharing this reranker's backend that follows ``policy``: how the service honours a per-request
        ``long_document_strategy`` / ``max_chunks_per_doc`` without loading the model twice. This reranker itself
        when ``policy`` is its own."""
        if policy == self.policy:
            return self
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.policy = policy
        clone.long_documents = policy.long_documents
        clone._owns_backend = False  # closing a copy must not release the shared backend
        return clone

    def _default_prompt(self) -> str:
        return "yes-no" if self.mode == "yes_no" else "graded"

    def _check_alone_single(self, labels: BinaryLabels) -> None:
        bad: list[str] = []
        for label in labels.labels:
            ids = self.backend.tokenize_text(label)
            if len(ids) != 1:
                bad.append(f"{label!r} -> {len(ids)} tokens {list(ids)}")
        if bad:
            raise ConfigError(
                f"the labels of this prompt format must each be one token of {self.backend.model_id}'s tokenizer; "
                f"not single tokens: {', '.join(bad)}"
            )

    # ------------------------------------------------------------------ Reranker
    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        prompts: list[ChatPrompt] = []
        owner: list[Candidate] = []  # the first candidate of each (deduplicated) prompt, for error messages
        index: dict[tuple[str, str], int] = {}
        cut_prompts: set[int] = set()
        windows_of: list[list[list[int]]] = []
        plans_of: list[list[DocumentPlan]] = []
        for query, cands in zip(queries, lists):
            per_windows, per_plans = [], []
            for cand in cands:
                plan, texts = self._windows(query.text, cand)
                rows = []
                for text in texts:
                    key = (query.text, text)
                    if key not in index:  # identical windows (and identical passages) are scored once
                        prompt, cut = self._prompt(query.text, text)
                        index[key] = len(prompts)
                        prompts.append(prompt)
                        owner.append(cand)
                        if cut:
                            cut_prompts.add(index[key])
                    rows.append(index[key])
                per_windows.append(rows)
                per_plans.append(plan)
            windows_of.append(per_windows)
            plans_of.append(per_plans)

        call = self.backend.label_logits if self.answer.raw_logits else self.backend.label_logprobs
        step = None if self.prompt_format is not None else self.batch_size
        rows_out = batched_label_logprobs(self.backend, prompts, self._label_list, step, call=call)
        read: list[tuple[float, dict[str, Any]]] = []
        for cand, row in zip(owner, rows_out):
            try:
                read.append(self.answer.read(row))
            except ModelOutputError as exc:
                raise ModelOutputError(f"{self.name}: candidate {cand.id!r}: {exc}", raw_text=str(row)) from None

        all_plans = [p for plans in plans_of for p in plans]
        stats: dict[str, Any] = {"mode": self.mode, "prompt": self.template.key,
                                 **call_stats(all_plans, len(prompts))}
        results: list[Scores] = []
        token_cut = 0
        for per_windows, per_plans in zip(windows_of, plans_of):
            values: list[float] = []
            per_candidate: list[dict[str, Any]] = []
            for rows, plan in zip(per_windows, per_plans):
                value, info = document_score(self.policy, plan, [read[r][0] for r in rows])
                best = info["best_chunk"]["index"] if "best_chunk" in info else 0
                d = {**read[rows[best]][1], **info}
                if plan.chunked:
                    d["chunks"] = len(plan.spans)
                if any(r in cut_prompts for r in rows):
                    d["truncated"] = True
                    token_cut += 1
                values.append(value)
                per_candidate.append(d)
            results.append(Scores(values=values, details=per_candidate, extra=stats))
        self._warn(stats["truncated"], len(all_plans), token_cut)
        return results

    def _warn(self, cut: int, total: int, token_cut: int) -> None:
        """One warning per call for the passages cut by the passage budget, one for prompts cut at max_length."""
        words = self.max_passage_words is not None
        budget = self.max_passage_words if words else self._document_budget()
        if cut and words:
            warnings.warn(
                f"{self.name}: {cut} of {total} passages were longer than max_passage_words={budget} words and were "
                + ("cut after max_chunks windows" if self.policy.chunking else "cut to that length")
                + "; max_passage_words is deprecated, use max_document_tokens",
                TruncationWarning,
                stacklevel=caller_stacklevel(),
            )
        elif cut:
            warn_truncated(self.name, cut, total, budget, chunking=self.policy.chunking, unit="passages")
        if token_cut and self.prompt_format is not None:
            warnings.warn(
                f"{type(self).__name__}: {token_cut} prompt(s) longer than max_length="
                f"{self._effective_max_length()} tokens were cut at the token level (as the model's reference "
                "code does); pass a larger max_length, or long_documents='chunk', to keep whole passages",
                TruncationWarning,
                stacklevel=caller_stacklevel(),
            )

    def build_prompts(self, query: str, passages: Sequence[str]) -> list[ChatPrompt]:
        """The exact prompts this reranker sends for ``query`` and each passage (one per passage; with
        ``long_documents="chunk"`` the first window's): for a ``prompt_format``, their ``token_ids`` are the ids
        the model reads."""
        out: list[ChatPrompt] = []
        for n, text in enumerate(passages):
            window = self._windows(query, Candidate(id=str(n), text=text))[1][0]
            out.append(self._prompt(query, window)[0])
        return out

    def close(self) -> None:
        release_backend(self.backend, self._owns_backend)

    # ------------------------------------------------------------------ helpers
    def _effective_max_length(self) -> int | None:
        assert self.prompt_format is not None
        return self.max_length if self.max_length is not None else self.prompt_format.max_length

    def _token_prompt(self, query: str, text: str) -> tuple[ChatPrompt, bool]:
        assert self.prompt_format is not None
        built = build_token_prompt(
            self.prompt_format, self.backend.tokenize_text, query, text, instruction=self.instruction,
            max_length=self.max_length, bos_token_id=self.backend.bos_token_id,
            context_length=self.backend.context_length, static_ids=self._static_ids,
        )
        ids = built.ids[1:] if built.bos_added else built.ids
        raw = self.backend.detokenize(ids) if built.truncated else "".join(built.pieces)
        prompt = ChatPrompt(raw=raw, token_ids=built.ids, add_special_tokens=built.bos_added)
        return prompt, built.truncated

    def _prompt(self, query: str, text: str) -> tuple[ChatPrompt, bool]:
        """The prompt of one passage window, and whether a token-level format cut it at ``max_length``."""
        if self.prompt_format is not None:
            return self._token_prompt(query, text)
        return self.template.render_pointwise(query, text, max_grade=self.max_grade), False

    def _document_budget(self) -> int | None:
        """The passage budget in tokens (``None``: a prompt format without ``max_document_tokens``)."""
        if self.policy.max_document_tokens is not None:
            return self.policy.max_document_tokens
        return None if self.prompt_format is not None else DEFAULT_DOCUMENT_TOKENS

    def _count(self, text: str) -> int:
        """Tokens of ``text`` (whitespace-separated words when the backend has no tokenizer)."""
        if self._can_tokenize is None:
            try:
                self.backend.tokenize_text("a")
                self._can_tokenize = True
            except ConfigError:
                self._can_tokenize = False
        return len(self.backend.tokenize_text(text)) if self._can_tokenize else len(text.split())

    def _offsets(self, text: str) -> list[tuple[int, int]]:
        """Cut points of ``text``: the tokenizer's offsets when it is a fast one, else the words' spans."""
        tok: Any = getattr(self.backend, "tokenizer", None)
        if self.max_passage_words is None and getattr(tok, "is_fast", False):
            return token_offsets(tok, text)
        return [m.span() for m in _WORD.finditer(text)]

    def _windows(self, query: str, cand: Candidate) -> tuple[DocumentPlan, list[str]]:
        """The plan of one passage under the length policy and the text of each of its windows as the prompt
        shows it (a template cleans it; a token-level format reads it as it is, as its reference does)."""
        if cand.text is None:
            raise InvalidInputError(f"{type(self).__name__} ranks text; candidate {cand.id!r} has no text")
        text = cand.text
        raw = self.prompt_format is not None

        def shown(s: int, e: int) -> str:
            if raw:
                return text if (s, e) == (0, len(text)) else text[s:e]
            return clean_passage(text[s:e])[0]

        memo: dict[tuple[int, int], int] = {}
        if self.max_passage_words is not None:
            budget: int | None = self.max_passage_words

            def measure(s: int, e: int) -> int:
                return len(text[s:e].split())
        elif self.prompt_format is not None and self.policy.max_document_tokens is None:
            limit = self._effective_max_length()
            context = self.backend.context_length
            budget = limit if context is None or limit is None else min(limit, context)
            if not self.policy.chunking or budget is None:
                return DocumentPlan(((0, len(text)),), False), [text]  # the reference's own cut, at max_length

            def measure(s: int, e: int) -> int:
                if (s, e) not in memo:
                    built, cut = self._token_prompt(query, text[s:e])
                    assert built.token_ids is not None
                    memo[(s, e)] = len(built.token_ids) if not cut else cast(int, budget) + 1
                return memo[(s, e)]
        else:
            budget = self._document_budget()

            def measure(s: int, e: int) -> int:
                if (s, e) not in memo:
                    memo[(s, e)] = self._count(shown(s, e))
                return memo[(s, e)]
        assert budget is not None
        plan = plan_document(self.policy, len(text), budget, measure, lambda: self._offsets(text), who=self.name)
        return plan, [shown(s, e) for s, e in plan.spans]


def _policy(
    long_documents: str | None,
    long_passages: str | None,
    max_document_tokens: int | None,
    max_passage_words: int | None,
    **options: Any,
) -> tuple[LengthPolicy, int | None]:
    """The length policy from the options, with the deprecated word-based aliases folded in (each a
    ``FutureWarning`` at the caller's line): ``long_passages`` is ``long_documents``; ``max_passage_words`` is a
    passage budget counted in words. Returns the policy and the word budget (``None`` unless given)."""
    if long_passages is not None:
        deprecated_option("long_passages", "long_documents")
        if long_documents is not None and long_documents != long_passages:
            raise ConfigError(f"long_passages={long_passages!r} and long_documents={long_documents!r} disagree; "
                              "pass only long_documents")
        long_documents = long_passages
    words = check_int("max_passage_words", max_passage_words, 1, optional=True)
    if words is not None:
        if max_document_tokens is not None:
            raise ConfigError("pass max_document_tokens (the model's tokens) or the deprecated max_passage_words "
                              "(words), not both")
        deprecated_option("max_passage_words", "max_document_tokens (a budget in the model's tokens)")
    policy = policy_from_options(long_documents=long_documents, max_document_tokens=max_document_tokens, **options)
    return policy, words


def _label_table(labels: BinaryLabels | Mapping[str, Sequence[str]]) -> BinaryLabels:
    if isinstance(labels, BinaryLabels):
        return labels
    if not isinstance(labels, Mapping):
        raise ConfigError(f"labels must be a mapping {{'yes': [...], 'no': [...]}}, got {type(labels).__name__}")
    try:
        yes, no = labels["yes"], labels["no"]
    except KeyError as exc:
        raise ConfigError(f"yes/no labels must be a mapping with 'yes' and 'no' keys, missing {exc}") from None
    if isinstance(yes, str) or isinstance(no, str):
        raise ConfigError("labels['yes'] and labels['no'] must be lists of spellings, not strings")
    return BinaryLabels(tuple(yes), tuple(no))


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
