"""Listwise LLM reranking over back-to-front sliding windows: permutation generation or FIRST logits.

:class:`ListwiseReranker` orders each window of passages with a causal LM through the
:class:`~rerank_plugins.backends.base.LLMBackend` contract, in one of two modes over the *same* windows:

``mode="generate"`` (RankGPT, RankZephyr)
    the model writes the permutation (``[2] > [3] > [1]``), parsed robustly with repair counts
    (:mod:`rerank_plugins.engine.permutation`);
``mode="first"`` (FIRST)
    exactly one :meth:`~rerank_plugins.backends.base.LLMBackend.label_logprobs` call per window and never
    ``generate``: the answer is forced to start with ``[`` and the window is ordered by the log-probability of
    each identifier as the next token (:func:`rerank_plugins.engine.logits.first_order`). Identifiers are
    single tokens for the model (letters, else another scheme; :func:`~rerank_plugins.engine.logits.choose_id_scheme`).

Windows follow :func:`rerank_plugins.engine.windows.plan_windows` (``window_size``, ``stride``,
``num_passes``, ``rank_start``/``rank_end`` and the proven top-k early stop ``top_k_settle``). Across queries
(:meth:`~rerank_plugins.base.Reranker.rerank_batch`) the windows at the same step of every query go to the
backend in one call. With deterministic decoding a window whose passages, in the same order, were already
ranked for the query is not sent again (the model would answer the same); ``extra["windows_reused"]`` counts
them.

Heapsort schedule (``schedule="heapsort"``, best-only answers such as Rank-R1)
    the top ``top_k_settle`` (default 10) are selected with ielab's setwise heapsort
    (:class:`~rerank_plugins.engine.windows.HeapsortSchedule`): groups of ``window_size`` passages (a node and its
    ``window_size - 1`` children), one model call per group, each answer naming the best. With
    ``shuffle_groups`` the passages of a group are shown in a seeded random order, as the reference shuffles
    them; answers are mapped back. Each query has its own stream, seeded from ``seed`` and the query text, so a
    query's result does not depend on the rest of the batch. Across queries the groups at the same step go in
    one backend call.

Prompt text and token budget
    ``cleaning`` picks the reference's text rules (:mod:`rerank_plugins.prompts.cleaning`); ``max_document_tokens``
    / ``max_query_tokens`` (the length policy's names) cut passages / the query to that many tokens the way the
    references do
    (``tokenizer.convert_tokens_to_string(tokenizer.tokenize(text)[:n])``). With ``context_size`` every window
    prompt is fitted as rank_llm fits it (``rank_listwise_os_llm.py`` ``create_prompt``, rank-llm 0.25.7): the word
    cap starts at ``max_passage_words * 20 / window`` (300 words for 20 passages) and, while the rendered prompt
    has more than ``context_size - reserve`` tokens (``reserve``: the tokens of the full permutation, rank_llm's
    ``num_output_tokens``), drops by ``max(1, excess // (4 * window))`` words. ``fit_rule="first"`` follows FIRST's
    own ``create_prompt`` instead (gangiswag/llm-reranker@2d7cba4): the cap starts at ``max_passage_words`` for
    every window size and the reserve is a numeric permutation of ``window_size``. One warning per call names how
    many passages were cut, to how many words, and whether the starting cap or the context cut them.
    ``add_special_tokens`` is the special-token policy of every prompt
    (see :class:`~rerank_plugins.backends.base.ChatPrompt`).

Results: monotone scores from the final order (:func:`~rerank_plugins.base.scores_from_order`) and one
:class:`~rerank_plugins.types.WindowTrace` per window sent to the model (input and output ids, raw output,
repairs, failure). A window whose output is unusable raises :class:`~rerank_plugins.errors.ModelOutputError`
(``fallback="raise"``) or keeps its input order and is recorded as failed (``fallback="keep"``).
"""

from __future__ import annotations

import math
import os
import random
import warnings
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

from .._warnings import caller_stacklevel
from ..backends.base import ChatPrompt, Generation, LLMBackend
from ..backends.chat_template import ChatTemplate
from ..base import BatchedReranker, Scores, scores_from_order
from ..engine.identifiers import IdScheme, get_scheme
from ..engine.length_policy import TruncationWarning, deprecated_option, policy_from_options
from ..engine.logits import choose_id_scheme, first_order
from ..engine.permutation import format_permutation, parse_permutation
from ..engine.windows import HeapsortSchedule, Window, WindowPlan, apply_window, plan_windows
from ..errors import BackendError, ConfigError, InvalidInputError, ModelOutputError
from ..prompts import PromptTemplate, get_prompt
from ..prompts.cleaning import cut_words, get_cleaning
from ..refs import ModelRef
from ..types import Candidate, Query, WindowTrace
from ..validation import check_bool, check_choice, check_int, check_number
from ._llm import (
    batched_label_logprobs,
    passage_texts,
    release_backend,
    resolve_backend,
    truncate_tokens,
    warn_truncated,
)

__all__ = ["FirstReranker", "ListwiseReranker"]

_SCHEDULES = ("sliding", "heapsort")
_FIT_RULES = ("rank_llm", "first")


@dataclass
class _Outcome:
    order: list[int]
    repairs: dict[str, int]
    raw_output: str | None
    reasoning: str | None = None


@dataclass
class _State:
    query: Query
    candidates: Sequence[Candidate]
    texts: list[str]
    plan: WindowPlan
    order: list[int]
    truncated: int
    traces: list[WindowTrace] = field(default_factory=list)
    cache: dict[tuple[int, ...], list[int]] = field(default_factory=dict)
    reasoning: dict[int, str] = field(default_factory=dict)
    reused: int = 0
    heap: HeapsortSchedule | None = None
    #: token budget: windows whose passages had to be shortened, the smallest word cap, the largest prompt
    fitted: int = 0
    fit_words: int | None = None
    fit_tokens: int = 0
    #: the (largest) starting word cap of the fitted windows, and how many of them had to go below it
    fit_start: int | None = None
    fit_lowered: int = 0


class WindowAnswer(ABC):
    """How the listwise loop asks the backend about a group of windows and reads each answer: everything that
    depends on the answer type lives here, in the spirit of transformers' logits processors (small objects, no
    mode string switched on in the ranker). :meth:`call` builds and makes one backend call for the prompts of
    several windows; :meth:`interpret` turns one answer into a window order, raising
    :class:`~rerank_plugins.errors.ModelOutputError` (with the raw text) when it is unusable. A reader talks to
    the ranker only through its public attributes (``backend``, ``template``, ``scheme``, ``temperature``,
    ``seed``, ``window_size``, ``fallback``) and :meth:`ListwiseReranker.generation_budget`."""

    #: the ``mode=`` this reader serves
    mode: str = ""
    #: the bundled prompt used when none is given
    default_prompt: str = "rankzephyr"

    def check_options(self, *, temperature: float) -> None:  # noqa: B027 - readers without constraints
        """Refuse options this answer type cannot honour (called before any model is loaded)."""

    def ordered(self, template: PromptTemplate) -> int | None:
        """Positions of a window answer that are ordered: 1 for best-only answers, ``None`` for all."""
        return None

    def assistant_prefix(self, template: PromptTemplate) -> str:
        """What the answer is forced to start with."""
        return template.assistant_prefix

    def counted_prefix(self, template: PromptTemplate) -> str:
        """The answer prefix as the references count and fit the prompt (see ``context_size``)."""
        return self.assistant_prefix(template)

    def choose_scheme(self, ranker: ListwiseReranker, ids: str | IdScheme | None) -> IdScheme:
        """The identifier scheme of the windows (``ids``: the caller's choice, if any)."""
        scheme = get_scheme(ids if ids is not None else ranker.template.ids)
        scheme.check_size(ranker.window_size)
        return scheme

    @abstractmethod
    def call(self, ranker: ListwiseReranker, prompts: list[ChatPrompt], sizes: list[int]) -> list[Any]:
        """One backend call for the prompts of several windows (``sizes``: passages in each)."""

    @abstractmethod
    def interpret(self, ranker: ListwiseReranker, raw: Any, size: int, prompt: ChatPrompt) -> _Outcome:
        """One answer of :meth:`call` as a window order."""

    def failed_reasoning(self, ranker: ListwiseReranker, raw_text: str | None) -> str | None:
        """Reasoning to keep in the trace of a window whose answer failed (reasoning answers override)."""
        return None


class FirstLogitsAnswer(WindowAnswer):
    """FIRST: the first identifier token's log-probabilities, one forward pass per window, sorted. The answer is
    forced to start with ``[``; the prompt is counted without it, as FIRST and rank_llm count theirs (their
    batched runs let the model write the ``[``)."""

    mode = "first"
    default_prompt = "first"

    def check_options(self, *, temperature: float) -> None:
        if temperature != 0:
            raise ConfigError("FIRST reads logits and never samples: temperature must be 0")

    def assistant_prefix(self, template: PromptTemplate) -> str:
        prefix = template.assistant_prefix
        return prefix if prefix.endswith("[") else prefix + "["

    def counted_prefix(self, template: PromptTemplate) -> str:
        return self.assistant_prefix(template)[:-1]

    def choose_scheme(self, ranker: ListwiseReranker, ids: str | IdScheme | None) -> IdScheme:
        if ids is not None:
            preferences: tuple[str | IdScheme, ...] = (ids,)
        else:
            preferences = tuple(dict.fromkeys([ranker.template.ids, "upper", "lower", "numeric", "mixed"]))
        return choose_id_scheme(ranker.backend.single_token, ranker.window_size, preferences)

    def call(self, ranker: ListwiseReranker, prompts: list[ChatPrompt], sizes: list[int]) -> list[Any]:
        labels = ranker.scheme.labels(max(sizes))
        rows = batched_label_logprobs(ranker.backend, prompts, labels)
        return [list(r[:size]) for r, size in zip(rows, sizes)]

    def interpret(self, ranker: ListwiseReranker, raw: Any, size: int, prompt: ChatPrompt) -> _Outcome:
        labels = ranker.scheme.labels(size)
        rendered = " ".join(f"{lab}:{lp:.4g}" for lab, lp in zip(labels, raw))
        try:
            order, unseen = first_order(raw)
        except ModelOutputError as exc:
            raise ModelOutputError(str(exc), raw_text=rendered) from None
        return _Outcome(order, {"missing": unseen}, rendered)


class GeneratedPermutationAnswer(WindowAnswer):
    """RankGPT / RankZephyr: a generated permutation (``[3] > [1] > ...``), parsed and repaired; a best-only
    prompt (Rank-R1) moves only the passage it names first (:func:`keep_best_only`)."""

    mode = "generate"
    default_prompt = "rankzephyr"

    def ordered(self, template: PromptTemplate) -> int | None:
        return 1 if template.output_format == "best" else None

    def call(self, ranker: ListwiseReranker, prompts: list[ChatPrompt], sizes: list[int]) -> list[Any]:
        out = ranker.backend.generate(
            prompts,
            max_new_tokens=max(ranker.generation_budget(s) for s in sizes),
            temperature=ranker.temperature,
            seed=ranker.seed,
        )
        if len(out) != len(prompts):
            raise BackendError(f"{ranker.backend.model_id}: generate returned {len(out)} outputs for {len(prompts)}")
        return out

    def interpret(self, ranker: ListwiseReranker, raw: Any, size: int, prompt: ChatPrompt) -> _Outcome:
        gen: Generation = raw
        text = prompt.assistant_prefix + gen.text
        best = ranker.template.output_format == "best"
        order, repairs = parse_permutation(text, size, scheme=ranker.scheme, complete=not best)
        counts = repairs.as_dict()
        if best:
            order = keep_best_only(order, counts, text, ranker.scheme)
        if gen.finish_reason == "length":
            counts["truncated"] = 1
        return _Outcome(order, counts, text)


def keep_best_only(order: list[int], counts: dict[str, int], answer: str, scheme: IdScheme) -> list[int]:
    """A best-only answer moves only the passage it names first; further ids are counted (``extra_ids`` in
    ``counts``) and ignored, so ``[3] > [1]`` never moves both to the front."""
    _, full = parse_permutation(answer, len(order), scheme=scheme, complete=True)
    extra = len(order) - full.missing - 1
    if extra > 0:
        counts["extra_ids"] = extra
    return [order[0], *(j for j in range(len(order)) if j != order[0])]


#: the answer reader of each mode
ANSWERS: dict[str, WindowAnswer] = {"first": FirstLogitsAnswer(), "generate": GeneratedPermutationAnswer()}


class ListwiseReranker(BatchedReranker):
    """Sliding-window listwise reranking with an LLM (see the module docstring).

    Args:
        model: an :class:`~rerank_plugins.backends.base.LLMBackend` (used as is), or a bundled name, hub id,
            path or :class:`~rerank_plugins.models.ModelRef` loaded with ``load_llm_backend``.
        mode: ``"generate"`` (write the permutation) or ``"first"`` (one forward pass per window).
        window_size / stride: window length and step back (default ``window_size // 2``, so 20 / 10 as in
            RankGPT; ``stride < window_size`` for overlapping windows).
        num_passes: passes over the list (default 1; with ``top_k_settle``, as many as needed, capped by this).
        top_k_settle: stop as soon as the top ``k`` are settled (see :mod:`rerank_plugins.engine.windows`).
        rank_start / rank_end: only positions ``[rank_start, rank_end)`` of the input order are reranked.
        prompt / prompt_version: a bundled prompt name (``"rankzephyr"`` for generate, ``"first"`` for FIRST),
            a path to a TOML file, or a :class:`~rerank_plugins.prompts.PromptTemplate`.
        ids: identifier scheme (``"numeric"``, ``"upper"``, ``"lower"``, ``"mixed"``); default: the prompt's
            for generate, the first single-token scheme for FIRST.
        max_new_tokens: generation budget per window (default: the tokens of a full permutation plus a margin).
        max_passage_words: passages are cut to this many words (a warning says so); ``None`` keeps them whole.
        long_documents: ``"truncate"`` (the default) only: listwise windows rank whole passages, so ``"chunk"``
            (and ``max_chunks`` / ``chunk_overlap`` / ``chunk_aggregate``) is a :class:`ConfigError` saying why
            (the names of :mod:`rerank_plugins.engine.length_policy`).
        max_document_tokens / max_query_tokens: cut passages / the query to this many of the model's tokens, the
            references' way (``tokenizer.convert_tokens_to_string(tokenizer.tokenize(text)[:n])``); one
            :class:`~rerank_plugins.engine.length_policy.TruncationWarning` per call counts the cut passages.
        truncation_side: ``"right"`` (keep the beginning, the references' cut; default) or ``"left"``.
        max_passage_tokens: deprecated alias of ``max_document_tokens`` (a ``FutureWarning``).
        cleaning: ``"default"``, ``"rank_llm"``, ``"reasonrank"``, ``"first"`` or ``"none"``
            (:mod:`rerank_plugins.prompts.cleaning`).
        context_size: fit every prompt under this many tokens minus the answer's, shortening passages evenly
            (rank_llm's rule, see the module docstring); ``None``: no fitting (the backend still refuses a prompt
            longer than the model's context).
        fit_rule: whose ``create_prompt`` the context fitting follows: ``"rank_llm"`` (the word cap starts at
            ``max_passage_words * 20 / window``, the reserve is the window's permutation) or ``"first"``
            (FIRST's: the cap starts at ``max_passage_words``, the reserve is a numeric permutation of
            ``window_size``).
        add_special_tokens: special-token (BOS) policy of the prompts (``None``: the backend's default).
        chat_template: Jinja chat template the prompts are rendered with instead of the tokenizer's (rendered
            as transformers renders it, :class:`~rerank_plugins.backends.chat_template.ChatTemplate`), for models
            whose reference sets its own (rank_llm for RankVicuna); ``None``: the tokenizer's.
        schedule: ``"sliding"`` windows or ``"heapsort"`` (best-only answers; see the module docstring).
        shuffle_groups: heapsort: show each group in a seeded random order (``seed``), as Rank-R1's reference.
        fallback: ``"raise"`` or ``"keep"`` (an unusable window keeps its input order, recorded in the trace).
        temperature / seed: sampling for generate mode (0 is greedy and deterministic).
        batch_windows: send the windows of all queries at the same step in one backend call.
        backend / backend_options: which backend to load ``model`` with, and its options (device, dtype, ...).
    """

    kind = "listwise"
    #: the answer reader of each ``mode``
    answers: ClassVar[Mapping[str, WindowAnswer]] = ANSWERS
    #: accepted ``fallback`` values (the reasoning ranker adds ``"partial"``)
    fallbacks: tuple[str, ...] = ("raise", "keep")
    _stacklevel = 2

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef | LLMBackend,
        *,
        mode: str = "generate",
        window_size: int = 20,
        stride: int | None = None,
        num_passes: int | None = None,
        top_k_settle: int | None = None,
        rank_start: int = 0,
        rank_end: int | None = None,
        prompt: str | PromptTemplate | None = None,
        prompt_version: str | int | None = None,
        ids: str | IdScheme | None = None,
        max_new_tokens: int | None = None,
        max_passage_words: int | None = 300,
        fallback: str = "raise",
        temperature: float = 0.0,
        seed: int | None = None,
        batch_windows: bool = True,
        backend: str = "transformers",
        backend_options: dict[str, Any] | None = None,
        max_passage_tokens: int | None = None,
        max_query_tokens: int | None = None,
        cleaning: str = "default",
        context_size: int | None = None,
        add_special_tokens: bool | None = None,
        schedule: str = "sliding",
        shuffle_groups: bool = False,
        fit_rule: str = "rank_llm",
        chat_template: str | None = None,
        long_documents: str | None = None,
        max_document_tokens: int | None = None,
        truncation_side: str | None = None,
        max_chunks: int | None = None,
        chunk_overlap: int | None = None,
        chunk_aggregate: str | None = None,
    ) -> None:
        self.mode = check_choice("mode", mode, tuple(self.answers))
        self.answer: WindowAnswer = self.answers[self.mode]
        self.fallback = check_choice("fallback", fallback, self.fallbacks)
        self.schedule = check_choice("schedule", schedule, _SCHEDULES)
        check_int("max_new_tokens", max_new_tokens, 1, optional=True)
        check_int("max_passage_words", max_passage_words, 1, optional=True)
        check_int("max_passage_tokens", max_passage_tokens, 1, optional=True)
        if max_passage_tokens is not None:
            if max_document_tokens is not None and max_document_tokens != max_passage_tokens:
                raise ConfigError(
                    f"max_passage_tokens={max_passage_tokens} and max_document_tokens={max_document_tokens} "
                    "disagree; pass only max_document_tokens"
                )
            deprecated_option("max_passage_tokens", "max_document_tokens")
            max_document_tokens = max_passage_tokens
        policy = policy_from_options(
            long_documents=long_documents, max_chunks=max_chunks, chunk_overlap=chunk_overlap,
            chunk_aggregate=chunk_aggregate, max_query_tokens=max_query_tokens,
            max_document_tokens=max_document_tokens, truncation_side=truncation_side,
        )
        chunk_options = {"max_chunks": max_chunks, "chunk_overlap": chunk_overlap, "chunk_aggregate": chunk_aggregate}
        given = [f"{k}={v!r}" for k, v in chunk_options.items() if v is not None]
        if policy.chunking or given:
            asked = "long_documents='chunk'" if policy.chunking else ", ".join(given)
            raise ConfigError(
                f"{type(self).__name__} cannot chunk long documents ({asked}): a listwise window ranks whole "
                "passages against each other, so splitting a passage into chunks would change what is ranked (the "
                "chunks of one document would compete with each other and with other documents for the window's "
                "places). Use long_documents='truncate' with max_document_tokens=, or chunk with a pointwise "
                "reranker first and give this ranker the head of its list"
            )
        check_int("context_size", context_size, 16, optional=True)
        check_bool("add_special_tokens", add_special_tokens, optional=True)
        self.cleaning = get_cleaning(cleaning)
        self.cleaning.fixer()  # a missing ftfy fails here, before any model is loaded
        self.long_documents = policy.long_documents
        self.max_document_tokens, self.max_query_tokens = policy.max_document_tokens, policy.max_query_tokens
        self.truncation_side = policy.truncation_side
        self.context_size = context_size
        if chat_template is not None and (not isinstance(chat_template, str) or "{" not in chat_template):
            raise ConfigError(f"chat_template must be Jinja source text, got {chat_template!r}")
        self.chat_template = chat_template
        self.fit_rule = check_choice("fit_rule", fit_rule, _FIT_RULES)
        self.add_special_tokens = add_special_tokens
        self.shuffle_groups = bool(shuffle_groups)
        check_number("temperature", temperature, 0)
        self.answer.check_options(temperature=temperature)
        if stride is None:
            stride = max(1, window_size // 2) if isinstance(window_size, int) else 1
        # validate the window configuration before loading any model
        plan_windows(window_size, window_size=window_size, stride=stride, num_passes=num_passes, top_k=top_k_settle)
        self.window_size, self.stride = window_size, stride
        self.num_passes, self.top_k_settle = num_passes, top_k_settle
        self.rank_start, self.rank_end = rank_start, rank_end
        plan_windows(rank_start + 2, window_size=window_size, stride=stride, rank_start=rank_start, rank_end=rank_end)
        self.template = get_prompt(prompt if prompt is not None else self._default_prompt(), prompt_version)
        self._check_template(self.template)
        if self.schedule == "heapsort":
            if self.answer.ordered(self.template) != 1:
                raise ConfigError(
                    f"schedule='heapsort' needs a best-only prompt in generate mode (e.g. 'rank-r1'); "
                    f"{self.template.key} answers with a {self.template.output_format}"
                )
            if num_passes is not None:
                raise ConfigError("schedule='heapsort' has no passes; it takes window_size (group) and top_k_settle")
        elif self._ordered == 1 and top_k_settle is None:
            warnings.warn(
                f"prompt {self.template.key} names only the best passage of a window: one sliding pass settles only "
                "the top 1; pass top_k_settle=k for the top k, or schedule='heapsort' (the reference's algorithm)",
                UserWarning,
                stacklevel=self._stacklevel,
            )
        if top_k_settle is not None and num_passes is not None:
            per_pass = min(window_size - stride, window_size if self._ordered is None else self._ordered)
            needed = math.ceil(top_k_settle / per_pass)
            if num_passes < needed:
                warnings.warn(
                    f"num_passes={num_passes} settles only the top {num_passes * per_pass}, fewer "
                    f"than top_k_settle={top_k_settle} (which needs {needed} passes)",
                    UserWarning,
                    stacklevel=caller_stacklevel(),
                )
        self.max_new_tokens = max_new_tokens
        self.max_passage_words = max_passage_words
        self.temperature = float(temperature)
        self.seed = seed
        self.batch_windows = bool(batch_windows)
        self.backend, self._owns_backend = resolve_backend(model, backend, backend_options)
        self.scheme = self._choose_scheme(ids)
        self.name = f"{self.kind}:{self.backend.model_id}"
        self._budget: dict[int, int] = {}
        self._reserve: dict[int, int] = {}
        self._queries: dict[str, str] = {}
        self._fix = self.cleaning.fixer() if self.cleaning.fix_prompt else None
        self._template = self._chat_template(chat_template)

    # ------------------------------------------------------------------ configuration hooks
    def _default_prompt(self) -> str:
        return self.answer.default_prompt

    def _check_template(self, template: PromptTemplate) -> None:
        if template.kind != "listwise":
            raise ConfigError(f"prompt {template.key} is {template.kind}; {type(self).__name__} needs a listwise one")
        if template.reasoning is not None:
            raise ConfigError(
                f"prompt {template.key} asks for reasoning; use ReasoningReranker, which reads only the answer"
            )

    def _choose_scheme(self, ids: str | IdScheme | None) -> IdScheme:
        return self.answer.choose_scheme(self, ids)

    @property
    def _ordered(self) -> int | None:
        """Positions of a window answer that are ordered: 1 for best-only formats (Rank-R1), else all."""
        return self.answer.ordered(self.template)

    @property
    def assistant_prefix(self) -> str:
        """What the answer is forced to start with; FIRST always ends it with ``[`` (the identifier comes next)."""
        return self.answer.assistant_prefix(self.template)

    # ------------------------------------------------------------------ Reranker
    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        states = [self._start(q, c) for q, c in zip(queries, lists)]
        self._warn_cut(sum(s.truncated for s in states), sum(len(s.candidates) for s in states))
        if self.schedule == "heapsort":
            self._run_heapsort(states)
        else:
            step = 0
            while True:
                pending = [(s, s.plan.windows[step]) for s in states if step < len(s.plan.windows)]
                if not pending:
                    break
                self._run_step(pending)
                step += 1
        self._warn_fitted(states)
        return [self._result(s) for s in states]

    def _warn_cut(self, cut: int, total: int) -> None:
        """One warning per call for the passages cut by ``max_document_tokens`` / ``max_passage_words`` before
        any window is built (the context fitting warns on its own, :meth:`_warn_fitted`)."""
        if not cut or (self.context_size is not None and self.max_document_tokens is None):
            return
        if self.max_document_tokens is None:
            warn_truncated(cut, self.max_passage_words, type(self).__name__)
            return
        limits = f"max_document_tokens={self.max_document_tokens} tokens"
        if self.max_passage_words is not None and self.context_size is None:
            limits += f" / max_passage_words={self.max_passage_words} words"
        warnings.warn(
            f"{type(self).__name__}: {cut} of {total} passages were longer than {limits} and were cut to that "
            f"length (truncation_side={self.truncation_side!r}); a listwise window ranks whole passages, so "
            "long_documents='chunk' is not available here",
            TruncationWarning,
            stacklevel=caller_stacklevel(),
        )

    def _warn_fitted(self, states: Sequence[_State]) -> None:
        """One warning per call for the passages the context fitting cut, saying what cut them: the starting
        word cap (``max_passage_words``, scaled to the window as rank_llm scales it) or the context size."""
        fitted = [s for s in states if s.fitted]
        if not fitted:
            return
        words = min(s.fit_words for s in fitted if s.fit_words is not None)
        start = max(s.fit_start for s in fitted if s.fit_start is not None)
        tokens = max(s.fit_tokens for s in fitted)
        cut = sum(s.truncated for s in fitted)
        windows = sum(s.fitted for s in fitted)
        lowered = sum(s.fit_lowered for s in fitted)
        scaled = " scaled to the window as rank_llm scales it" if self.fit_words_scaled else ""
        cap = f"the starting word cap of {start} words (max_passage_words={self.max_passage_words}{scaled})"
        if lowered:
            why = (
                f"were shortened to {words} words: {cap} was lowered in {lowered} window(s) so the prompts fit "
                f"context_size={self.context_size} (largest prompt {tokens} tokens, answer reserve included); "
                "raise context_size or use smaller windows to keep more text"
            )
        else:
            why = (
                f"were cut to {cap}; the context did not cut them (context_size={self.context_size}, largest "
                f"prompt {tokens} tokens); raise max_passage_words to keep more text"
            )
        warnings.warn(
            f"{type(self).__name__}: {cut} passage(s) in {windows} window(s) {why}", UserWarning, stacklevel=5
        )

    def close(self) -> None:
        release_backend(self.backend, self._owns_backend)

    # ------------------------------------------------------------------ machinery
    def _passage_texts(self, query: Query, candidates: Sequence[Candidate]) -> tuple[list[str], int]:
        """The passage texts the model sees (cleaned and cut to ``max_passage_words``) and how many were cut.

        A hook for prompt variants that annotate passages, e.g. InsertRank appends first-stage scores
        (:class:`~rerank_plugins.rankers.insertrank.InsertRankReranker`).
        """
        who = type(self).__name__
        if self.cleaning.name == "default" and self.max_document_tokens is None and self.context_size is None:
            return passage_texts(candidates, self.max_passage_words, who)
        words = None if self.context_size is not None else self.max_passage_words
        alphabetical = self.scheme.kind == "alphabetical"
        texts: list[str] = []
        cut = 0
        for c in candidates:
            if c.text is None:
                raise InvalidInputError(f"{who} ranks text; candidate {c.id!r} has an image but no text")
            text = self.cleaning.prepare(c.text)
            if self.max_document_tokens is not None:
                text, was_cut = truncate_tokens(
                    self.backend, text, self.max_document_tokens, side=self.truncation_side
                )
                cut += was_cut
            text = self.cleaning.finish(text, alphabetical=alphabetical)
            if words is not None and len(text.split()) > words:
                cut += 1
            texts.append(cut_words(text, words) if words is not None else text)
        return texts, cut

    def _query_text(self, query: Query) -> str:
        """The query as the prompt shows it (the cleaning's rules, then ``max_query_tokens``)."""
        text = self._queries.get(query.text)
        if text is None:
            text = query.text
            if self.max_query_tokens is not None:
                text = truncate_tokens(self.backend, text, self.max_query_tokens)[0]
            text = self.cleaning.query(text)
            self._queries[query.text] = text
        return text

    def _plan(self, n: int) -> WindowPlan:
        """The window plan for a list of ``n`` candidates with this reranker's settings (subclasses that build
        their own :class:`_State` should call this, so the early-stop rule matches the answer format)."""
        return plan_windows(
            n,
            window_size=self.window_size,
            stride=self.stride,
            num_passes=self.num_passes,
            top_k=self.top_k_settle,
            rank_start=self.rank_start,
            rank_end=self.rank_end,
            ordered=self._ordered,
        )

    def _start(self, query: Query, candidates: Sequence[Candidate]) -> _State:
        texts, cut = self._passage_texts(query, candidates)
        n = len(candidates)
        if self.schedule == "heapsort":
            heap = HeapsortSchedule(
                n, num_child=self.window_size - 1, k=self._heap_k, rank_start=self.rank_start, rank_end=self.rank_end
            )
            plan = WindowPlan((), 0, heap.settled, heap.rank_start, heap.rank_end)
            return _State(query, candidates, texts, plan, list(range(n)), cut, heap=heap)
        return _State(query, candidates, texts, self._plan(n), list(range(n)), cut)

    @property
    def _heap_k(self) -> int:
        """How many the heapsort selects: ``top_k_settle``, else the reference's ``--k 10``."""
        return self.top_k_settle if self.top_k_settle is not None else 10

    def _prompt(self, query: Query, passages: list[str], *, forced: bool = True) -> ChatPrompt:
        """The window's prompt; ``forced=False`` leaves out what the answer reader forces after the template's
        own prefix (FIRST's ``[``): the references count and fit the prompt without it."""
        prompt = self.template.render_listwise(self._query_text(query), passages, self.scheme)
        messages = prompt.messages
        if self._fix is not None:
            fix = self._fix
            messages = tuple({**m, "content": fix(m["content"])} for m in messages)
        prefix = self.assistant_prefix if forced else self.answer.counted_prefix(self.template)
        raw = prompt.raw
        if self._template is not None and raw is None:
            raw, messages = self._template.render(messages), ()
        return ChatPrompt(messages, prefix, raw, add_special_tokens=self.add_special_tokens)

    def _chat_template(self, source: str | None) -> ChatTemplate | None:
        """``chat_template`` as a renderer, with the tokenizer's BOS / EOS texts (for templates that use them)."""
        if source is None:
            return None
        tok = getattr(self.backend, "tokenizer", None)
        return ChatTemplate(source, getattr(tok, "bos_token", None), getattr(tok, "eos_token", None))

    def _window_prompt(self, state: _State, ids: Sequence[int]) -> ChatPrompt:
        """The prompt of one window; with ``context_size``, fitted as rank_llm fits it (module docstring)."""
        if self.context_size is None:
            return self._prompt(state.query, [state.texts[i] for i in ids])
        size = len(ids)
        limit = self.context_size - self._output_reserve(size)
        start = self._start_words(size)
        max_length: float = start
        while True:
            words = int(max_length)
            if words < 1:
                raise ConfigError(
                    f"{self.name}: even with 0 words per passage the prompt has more than {limit} tokens "
                    f"(context_size={self.context_size}); raise context_size or use a smaller window"
                )
            shown = [cut_words(state.texts[i], words) for i in ids]
            tokens = self.backend.count_tokens(self._prompt(state.query, shown, forced=False))
            if tokens <= limit:
                break
            max_length -= max(1, (tokens - limit) // (size * 4))
        prompt = self._prompt(state.query, shown)
        longer = sum(len(state.texts[i].split()) > words for i in ids)
        if longer:
            state.fitted += 1
            state.fit_words = words if state.fit_words is None else min(state.fit_words, words)
            state.fit_start = int(start) if state.fit_start is None else max(state.fit_start, int(start))
            state.fit_lowered += words < int(start)
            state.truncated += longer
        state.fit_tokens = max(state.fit_tokens, tokens)
        return prompt

    @property
    def fit_words_scaled(self) -> bool:
        """Whether the starting word cap is scaled to the window (rank_llm) or flat (FIRST)."""
        return self.fit_rule == "rank_llm"

    def _start_words(self, size: int) -> float:
        """The word cap a window's fitting starts from: rank_llm's ``300 * (20 / window)`` (``max_passage_words``
        scaled to the window) or FIRST's flat ``300`` (``fit_rule="first"``)."""
        start = self.max_passage_words if self.max_passage_words is not None else 300
        return start * (20 / size) if self.fit_words_scaled else float(start)

    def _output_reserve(self, size: int) -> int:
        """The answer's reserve in the fitting: rank_llm's ``num_output_tokens``,
        ``len(tokenizer.encode("[1] > [2] > ... > [size]")) - 1`` in the window's identifiers; with
        ``fit_rule="first"`` FIRST's, which always counts numeric ids over the configured ``window_size``
        (its ``create_prompt`` passes the window length as ``use_alpha``, so the default window size is used)."""
        if self.fit_rule == "first":
            size, scheme = self.window_size, get_scheme("numeric")
        else:
            scheme = self.scheme
        if size not in self._reserve:
            text = format_permutation(range(size), scheme)
            self._reserve[size] = self.backend.count_tokens(ChatPrompt(raw=text, add_special_tokens=True)) - 1
        return self._reserve[size]

    def _run_step(self, pending: list[tuple[_State, Window]]) -> None:
        todo: list[tuple[_State, Window, tuple[int, ...], ChatPrompt]] = []
        for state, window in pending:
            ids = tuple(state.order[window.start : window.end])
            if self.temperature == 0 and ids in state.cache:
                state.order = apply_window(state.order, window.start, window.end, state.cache[ids])
                state.reused += 1
                continue
            todo.append((state, window, ids, self._window_prompt(state, ids)))
        if not todo:
            return
        for i, raw in self._answers([t[3] for t in todo], [len(t[2]) for t in todo]):
            self._apply(*todo[i], raw)

    def _answers(self, prompts: list[ChatPrompt], sizes: list[int]) -> Iterator[tuple[int, Any]]:
        """``(index, answer)`` of each prompt: one backend call for all (``batch_windows``) or one per prompt, each
        call made when the answers before it have been taken (applied)."""
        groups = [list(range(len(prompts)))] if self.batch_windows else [[i] for i in range(len(prompts))]
        for group in groups:
            yield from zip(group, self._call([prompts[i] for i in group], [sizes[i] for i in group]))

    def _run_heapsort(self, states: list[_State]) -> None:
        """Setwise heapsort: each state's next group, all queries' groups in one backend call per step."""
        rngs = [self._shuffle_rng(state.query) for state in states]
        step = 0
        while True:
            todo: list[tuple[_State, tuple[int, ...], list[int], ChatPrompt]] = []
            for state, rng in zip(states, rngs):
                assert state.heap is not None
                group = state.heap.next_group()
                if group is None:
                    continue
                shown = list(range(len(group)))
                if rng is not None:
                    shown = rng.sample(shown, len(shown))
                todo.append((state, group, shown, self._window_prompt(state, [group[j] for j in shown])))
            if not todo:
                break
            for i, raw in self._answers([t[3] for t in todo], [len(t[1]) for t in todo]):
                self._apply_group(*todo[i], raw, step)
            step += 1
        for state in states:
            assert state.heap is not None
            state.order = state.heap.order()

    def _shuffle_rng(self, query: Query) -> random.Random | None:
        """The display-order stream of one query's heapsort groups (``shuffle_groups``): seeded from ``seed`` and
        the query text alone, so a query's result never depends on the other queries of the batch or on its
        position in it (``rerank("q", docs) == rerank_batch(["q", "q"], [docs, docs])[0]``); ``seed=None`` draws
        a fresh stream."""
        if not self.shuffle_groups:
            return None
        if self.seed is None:
            return random.Random()
        return random.Random(f"{self.seed}\x00{query.text}")  # str seeds are hashed with SHA-512: stable

    def _apply_group(
        self, state: _State, group: tuple[int, ...], shown: list[int], prompt: ChatPrompt, raw: Any, step: int
    ) -> None:
        heap = state.heap
        assert heap is not None
        where = f"{self.name}: heapsort group {step} for query {state.query.text[:60]!r}"
        # the reference keeps the node where it is when the answer names no passage
        outcome, error = self._interpret_or_keep(raw, len(group), prompt, where)
        best = None if error is not None else shown[outcome.order[0]]
        heap.feed(best)
        if outcome.reasoning is not None and error is None:
            for p in group:
                state.reasoning[state.order[p]] = outcome.reasoning
        cands = state.candidates
        winner = [0] if best is None else [best]
        output = [*winner, *(j for j in range(len(group)) if j not in winner)]
        self._trace(
            state, 0, min(group), max(group) + 1, tuple(cands[state.order[group[j]]].id for j in shown),
            tuple(cands[state.order[group[j]]].id for j in output), outcome, error,
        )

    def generation_budget(self, size: int) -> int:
        """``max_new_tokens`` for a window of ``size`` passages: the option when given; with ``context_size``
        rank_llm's ``num_output_tokens`` (it generates exactly that many); else the tokens of a full
        permutation plus a margin."""
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if self.context_size is not None:
            return max(1, self._output_reserve(size))  # rank_llm generates exactly num_output_tokens
        if size not in self._budget:
            full = format_permutation(range(size), self.scheme)
            self._budget[size] = max(self.backend.count_tokens(full), 5 * size) + 16
        return self._budget[size]

    def _call(self, prompts: list[ChatPrompt], sizes: list[int]) -> list[Any]:
        return self.answer.call(self, prompts, sizes)

    def _interpret(self, raw: Any, size: int, prompt: ChatPrompt) -> _Outcome:
        """Turn one backend answer into a window order (raises ModelOutputError when it is unusable)."""
        return self.answer.interpret(self, raw, size, prompt)

    def _apply(self, state: _State, window: Window, ids: tuple[int, ...], prompt: ChatPrompt, raw: Any) -> None:
        where = (
            f"{self.name}: window [{window.start}, {window.end}) of pass {window.pass_index} "
            f"for query {state.query.text[:60]!r}"
        )
        outcome, error = self._interpret_or_keep(raw, len(ids), prompt, where)
        state.cache[ids] = outcome.order
        state.order = apply_window(state.order, window.start, window.end, outcome.order)
        if outcome.reasoning is not None and error is None:
            for i in ids:
                state.reasoning[i] = outcome.reasoning
        cands = state.candidates
        self._trace(
            state, window.pass_index, window.start, window.end, tuple(cands[i].id for i in ids),
            tuple(cands[ids[j]].id for j in outcome.order), outcome, error,
        )

    def _interpret_or_keep(self, raw: Any, size: int, prompt: ChatPrompt, where: str) -> tuple[_Outcome, str | None]:
        """The window order of one answer and ``None``; for an unusable answer, :class:`ModelOutputError` naming
        ``where`` (``fallback="raise"``) or the input order, the reasoning kept, and the error's text."""
        try:
            return self._interpret(raw, size, prompt), None
        except ModelOutputError as exc:
            if self.fallback == "raise":
                raise ModelOutputError(f"{where}: {exc}", raw_text=exc.raw_text) from exc
            kept = self.answer.failed_reasoning(self, exc.raw_text)
            return _Outcome(list(range(size)), {}, exc.raw_text, kept), str(exc)

    @staticmethod
    def _trace(
        state: _State, pass_index: int, start: int, end: int, input_ids: tuple[str, ...],
        output_ids: tuple[str, ...], outcome: _Outcome, error: str | None,
    ) -> None:
        """Add the :class:`WindowTrace` of one window (or heapsort group) to ``state``; ``error``: why it failed."""
        state.traces.append(
            WindowTrace(
                pass_index=pass_index,
                start=start,
                end=end,
                input_ids=input_ids,
                output_ids=output_ids,
                raw_output=outcome.raw_output,
                reasoning=outcome.reasoning,
                repairs=outcome.repairs,
                failed=error is not None,
                error=error,
            )
        )

    def _result(self, state: _State) -> Scores:
        n = len(state.candidates)
        totals: dict[str, int] = {}
        for t in state.traces:
            for key, value in t.repairs.items():
                totals[key] = totals.get(key, 0) + value
        reasoning = [state.reasoning.get(i) for i in range(n)] if state.reasoning else None
        return Scores(
            values=scores_from_order(state.order, n),
            reasoning=reasoning,
            traces=tuple(state.traces),
            extra={
                "mode": self.mode,
                "prompt": self.template.key,
                "ids": self.scheme.name,
                "windows": len(state.traces),
                "windows_reused": state.reused,
                "passes": state.plan.passes,
                "settled": state.plan.settled,
                "failed_windows": sum(t.failed for t in state.traces),
                "repairs": totals,
                "truncated_passages": state.truncated,
                "schedule": self.schedule,
                "calls": len(state.traces),
                "fitted_windows": state.fitted,
                "fit_words": state.fit_words,
                "max_prompt_tokens": state.fit_tokens if self.context_size is not None else None,
                "token_counter": self.backend.token_counter if self.context_size is not None else None,
            },
        )


class FirstReranker(ListwiseReranker):
    """:class:`ListwiseReranker` in FIRST mode (``load_reranker(model, kind="first")``)."""

    kind = "first"

    def __init__(self, model: str | os.PathLike[str] | ModelRef | LLMBackend, **options: Any) -> None:
        mode = options.pop("mode", "first")
        if mode != "first":
            raise ConfigError(f"FirstReranker always uses mode='first', got mode={mode!r}; use ListwiseReranker")
        super().__init__(model, mode="first", **options)
