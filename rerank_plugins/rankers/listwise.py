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
    ``shuffle_groups`` the passages of a group are shown in a seeded random order (``seed``), as the reference
    shuffles them; answers are mapped back. Across queries the groups at the same step go in one backend call.

Prompt text and token budget
    ``cleaning`` picks the reference's text rules (:mod:`rerank_plugins.prompts.cleaning`); ``max_passage_tokens``
    / ``max_query_tokens`` cut passages / the query to that many tokens the way the references do
    (``tokenizer.convert_tokens_to_string(tokenizer.tokenize(text)[:n])``). With ``context_size`` every window
    prompt is fitted as rank_llm fits it (``rank_listwise_os_llm.py`` ``create_prompt``, rank-llm 0.25.7): the word
    cap starts at ``max_passage_words * 20 / window`` (300 words for 20 passages) and, while the rendered prompt
    has more than ``context_size - reserve`` tokens (``reserve``: the tokens of the full permutation, rank_llm's
    ``num_output_tokens``), drops by ``max(1, excess // (4 * window))`` words; a warning names how many passages
    were cut and to how many words and tokens. ``add_special_tokens`` is the special-token policy of every prompt
    (see :class:`~rerank_plugins.backends.base.ChatPrompt`).

Results: monotone scores from the final order (:func:`~rerank_plugins.base.scores_from_order`) and one
:class:`~rerank_plugins.types.WindowTrace` per window sent to the model (input and output ids, raw output,
repairs, failure). A window whose output is unusable raises :class:`~rerank_plugins.errors.ModelOutputError`
(``fallback="raise"``) or keeps its input order and is recorded as failed (``fallback="keep"``).
"""

from __future__ import annotations

import math
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._warnings import caller_stacklevel
from ..backends.base import ChatPrompt, Generation, LLMBackend
from ..base import Reranker, Scores, scores_from_order
from ..engine.identifiers import IdScheme, get_scheme
from ..engine.logits import choose_id_scheme, first_order
from ..engine.permutation import format_permutation, parse_permutation
from ..engine.windows import HeapsortSchedule, Window, WindowPlan, apply_window, plan_windows
from ..errors import BackendError, ConfigError, InvalidInputError, ModelOutputError
from ..prompts import PromptTemplate, get_prompt
from ..prompts.cleaning import cut_words, get_cleaning
from ..refs import ModelRef
from ..types import Candidate, Query, WindowTrace
from ..validation import check_choice, check_int, check_number
from ._llm import (
    batched_label_logprobs,
    passage_texts,
    release_backend,
    resolve_backend,
    truncate_tokens,
    warn_truncated,
)

__all__ = ["FirstReranker", "ListwiseReranker"]

_MODES = ("generate", "first")
_SCHEDULES = ("sliding", "heapsort")


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


class WindowAnswer(ABC):
    """How the listwise loop asks the backend about a group of windows and reads each answer: one contract for
    both answer types, in the spirit of transformers' logits processors (small objects, no mode string switched
    on in the loop). :meth:`call` builds and makes one backend call for the prompts of several windows;
    :meth:`interpret` turns one answer into a window order, raising
    :class:`~rerank_plugins.errors.ModelOutputError` (with the raw text) when it is unusable."""

    @abstractmethod
    def call(self, ranker: ListwiseReranker, prompts: list[ChatPrompt], sizes: list[int]) -> list[Any]:
        """One backend call for the prompts of several windows (``sizes``: passages in each)."""

    @abstractmethod
    def interpret(self, ranker: ListwiseReranker, raw: Any, size: int, prompt: ChatPrompt) -> _Outcome:
        """One answer of :meth:`call` as a window order."""


class FirstLogitsAnswer(WindowAnswer):
    """FIRST: the first identifier token's log-probabilities, one forward pass per window, sorted."""

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
    """RankGPT / RankZephyr: a generated permutation (``[3] > [1] > ...``), parsed and repaired."""

    def call(self, ranker: ListwiseReranker, prompts: list[ChatPrompt], sizes: list[int]) -> list[Any]:
        out = ranker.backend.generate(
            prompts,
            max_new_tokens=max(ranker._generation_budget(s) for s in sizes),
            temperature=ranker.temperature,
            seed=ranker.seed,
        )
        if len(out) != len(prompts):
            raise BackendError(f"{ranker.backend.model_id}: generate returned {len(out)} outputs for {len(prompts)}")
        return out

    def interpret(self, ranker: ListwiseReranker, raw: Any, size: int, prompt: ChatPrompt) -> _Outcome:
        gen: Generation = raw
        text = prompt.assistant_prefix + gen.text
        order, repairs = parse_permutation(
            text, size, scheme=ranker.scheme, complete=ranker.template.output_format != "best"
        )
        counts = repairs.as_dict()
        order = ranker._best_only(order, counts, text)
        if gen.finish_reason == "length":
            counts["truncated"] = 1
        return _Outcome(order, counts, text)


#: the answer reader of each mode
ANSWERS: dict[str, WindowAnswer] = {"first": FirstLogitsAnswer(), "generate": GeneratedPermutationAnswer()}


class ListwiseReranker(Reranker):
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
        max_passage_tokens / max_query_tokens: cut passages / the query to this many tokens (the references' way).
        cleaning: ``"default"``, ``"rank_llm"``, ``"reasonrank"``, ``"first"`` or ``"none"``
            (:mod:`rerank_plugins.prompts.cleaning`).
        context_size: fit every prompt under this many tokens minus the answer's, shortening passages evenly
            (rank_llm's rule, see the module docstring); ``None``: no fitting (the backend still refuses a prompt
            longer than the model's context).
        add_special_tokens: special-token (BOS) policy of the prompts (``None``: the backend's default).
        schedule: ``"sliding"`` windows or ``"heapsort"`` (best-only answers; see the module docstring).
        shuffle_groups: heapsort: show each group in a seeded random order (``seed``), as Rank-R1's reference.
        fallback: ``"raise"`` or ``"keep"`` (an unusable window keeps its input order, recorded in the trace).
        temperature / seed: sampling for generate mode (0 is greedy and deterministic).
        batch_windows: send the windows of all queries at the same step in one backend call.
        backend / backend_options: which backend to load ``model`` with, and its options (device, dtype, ...).
    """

    kind = "listwise"
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
    ) -> None:
        self.mode = check_choice("mode", mode, _MODES)
        self.answer: WindowAnswer = ANSWERS[self.mode]
        self.fallback = check_choice("fallback", fallback, self.fallbacks)
        self.schedule = check_choice("schedule", schedule, _SCHEDULES)
        check_int("max_new_tokens", max_new_tokens, 1, optional=True)
        check_int("max_passage_words", max_passage_words, 1, optional=True)
        check_int("max_passage_tokens", max_passage_tokens, 1, optional=True)
        check_int("max_query_tokens", max_query_tokens, 1, optional=True)
        check_int("context_size", context_size, 16, optional=True)
        if add_special_tokens is not None and not isinstance(add_special_tokens, bool):
            raise ConfigError(f"add_special_tokens must be True, False or None, got {add_special_tokens!r}")
        self.cleaning = get_cleaning(cleaning)
        self.cleaning.fixer()  # a missing ftfy fails here, before any model is loaded
        self.max_passage_tokens, self.max_query_tokens = max_passage_tokens, max_query_tokens
        self.context_size = context_size
        self.add_special_tokens = add_special_tokens
        self.shuffle_groups = bool(shuffle_groups)
        check_number("temperature", temperature, 0)
        if self.mode == "first" and temperature != 0:
            raise ConfigError("FIRST reads logits and never samples: temperature must be 0")
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
            if self.template.output_format != "best" or self.mode != "generate":
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

    # ------------------------------------------------------------------ configuration hooks
    def _default_prompt(self) -> str:
        return "first" if self.mode == "first" else "rankzephyr"

    def _check_template(self, template: PromptTemplate) -> None:
        if template.kind != "listwise":
            raise ConfigError(f"prompt {template.key} is {template.kind}; {type(self).__name__} needs a listwise one")
        if template.reasoning is not None:
            raise ConfigError(
                f"prompt {template.key} asks for reasoning; use ReasoningReranker, which reads only the answer"
            )

    def _choose_scheme(self, ids: str | IdScheme | None) -> IdScheme:
        if self.mode != "first":
            scheme = get_scheme(ids if ids is not None else self.template.ids)
            scheme.check_size(self.window_size)
            return scheme
        if ids is not None:
            preferences: tuple[str | IdScheme, ...] = (ids,)
        else:
            preferences = tuple(dict.fromkeys([self.template.ids, "upper", "lower", "numeric", "mixed"]))
        return choose_id_scheme(self.backend.single_token, self.window_size, preferences)

    @property
    def _ordered(self) -> int | None:
        """Positions of a window answer that are ordered: 1 for best-only formats (Rank-R1), else all."""
        return 1 if self.template.output_format == "best" and self.mode == "generate" else None

    @property
    def assistant_prefix(self) -> str:
        """What the answer is forced to start with; FIRST always ends it with ``[`` (the identifier comes next)."""
        prefix = self.template.assistant_prefix
        if self.mode == "first" and not prefix.endswith("["):
            prefix += "["
        return prefix

    # ------------------------------------------------------------------ Reranker
    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        return self._score_many([query], [candidates])[0]

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        states = [self._start(q, c) for q, c in zip(queries, lists)]
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

    def _warn_fitted(self, states: Sequence[_State]) -> None:
        fitted = [s for s in states if s.fitted]
        if not fitted:
            return
        words = min(s.fit_words for s in fitted if s.fit_words is not None)
        tokens = max(s.fit_tokens for s in fitted)
        cut = sum(s.truncated for s in fitted)
        windows = sum(s.fitted for s in fitted)
        warnings.warn(
            f"{type(self).__name__}: {cut} passage(s) in {windows} window(s) were shortened to {words} words so "
            f"the prompts fit context_size={self.context_size} (largest prompt {tokens} tokens, answer reserve "
            "included); raise context_size or use smaller windows to keep more text",
            UserWarning,
            stacklevel=5,
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
        if self.cleaning.name == "default" and self.max_passage_tokens is None and self.context_size is None:
            return passage_texts(candidates, self.max_passage_words, who)
        words = None if self.context_size is not None else self.max_passage_words
        alphabetical = self.scheme.kind == "alphabetical"
        texts: list[str] = []
        cut = 0
        for c in candidates:
            if c.text is None:
                raise InvalidInputError(f"{who} ranks text; candidate {c.id!r} has an image but no text")
            text = self.cleaning.prepare(c.text)
            if self.max_passage_tokens is not None:
                text, was_cut = truncate_tokens(self.backend, text, self.max_passage_tokens)
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
        if self.context_size is None and self.max_passage_tokens is None:
            warn_truncated(cut, self.max_passage_words, type(self).__name__)
        elif cut and self.context_size is None:
            limits = f"max_passage_tokens={self.max_passage_tokens}"
            if self.max_passage_words is not None:
                limits += f" / max_passage_words={self.max_passage_words}"
            warnings.warn(
                f"{type(self).__name__}: {cut} passage(s) longer than {limits} were cut to that length",
                UserWarning,
                stacklevel=4,
            )
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

    def _prompt(self, query: Query, passages: list[str]) -> ChatPrompt:
        prompt = self.template.render_listwise(self._query_text(query), passages, self.scheme)
        messages = prompt.messages
        if self._fix is not None:
            fix = self._fix
            messages = tuple({**m, "content": fix(m["content"])} for m in messages)
        return ChatPrompt(messages, self.assistant_prefix, prompt.raw, add_special_tokens=self.add_special_tokens)

    def _window_prompt(self, state: _State, ids: Sequence[int]) -> ChatPrompt:
        """The prompt of one window; with ``context_size``, fitted as rank_llm fits it (module docstring)."""
        if self.context_size is None:
            return self._prompt(state.query, [state.texts[i] for i in ids])
        size = len(ids)
        limit = self.context_size - self._output_reserve(size)
        start = self.max_passage_words if self.max_passage_words is not None else 300
        max_length = start * (20 / size)  # rank_llm: 300 * (20 / (rank_end - rank_start))
        while True:
            words = int(max_length)
            if words < 1:
                raise ConfigError(
                    f"{self.name}: even with 0 words per passage the prompt has more than {limit} tokens "
                    f"(context_size={self.context_size}); raise context_size or use a smaller window"
                )
            prompt = self._prompt(state.query, [cut_words(state.texts[i], words) for i in ids])
            tokens = self.backend.count_tokens(prompt)
            if tokens <= limit:
                break
            max_length -= max(1, (tokens - limit) // (size * 4))
        if any(len(state.texts[i].split()) > words for i in ids):
            state.fitted += 1
            state.fit_words = words if state.fit_words is None else min(state.fit_words, words)
            state.truncated += sum(len(state.texts[i].split()) > words for i in ids)
        state.fit_tokens = max(state.fit_tokens, tokens)
        return prompt

    def _output_reserve(self, size: int) -> int:
        """rank_llm's ``num_output_tokens``: ``len(tokenizer.encode("[1] > [2] > ... > [size]")) - 1``."""
        if size not in self._reserve:
            text = format_permutation(range(size), self.scheme)
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
        groups = [list(range(len(todo)))] if self.batch_windows else [[i] for i in range(len(todo))]
        for group in groups:
            raws = self._call([todo[i][3] for i in group], [len(todo[i][2]) for i in group])
            for i, raw in zip(group, raws):
                self._apply(*todo[i], raw)

    def _run_heapsort(self, states: list[_State]) -> None:
        """Setwise heapsort: each state's next group, all queries' groups in one backend call per step."""
        import random

        rng = random.Random(self.seed)
        step = 0
        while True:
            todo: list[tuple[_State, tuple[int, ...], list[int], ChatPrompt]] = []
            for state in states:
                assert state.heap is not None
                group = state.heap.next_group()
                if group is None:
                    continue
                shown = list(range(len(group)))
                if self.shuffle_groups:
                    shown = rng.sample(shown, len(shown))
                todo.append((state, group, shown, self._window_prompt(state, [group[j] for j in shown])))
            if not todo:
                break
            groups = [list(range(len(todo)))] if self.batch_windows else [[i] for i in range(len(todo))]
            for chunk in groups:
                raws = self._call([todo[i][3] for i in chunk], [len(todo[i][1]) for i in chunk])
                for i, raw in zip(chunk, raws):
                    self._apply_group(*todo[i], raw, step)
            step += 1
        for state in states:
            assert state.heap is not None
            state.order = state.heap.order()

    def _apply_group(
        self, state: _State, group: tuple[int, ...], shown: list[int], prompt: ChatPrompt, raw: Any, step: int
    ) -> None:
        heap = state.heap
        assert heap is not None
        try:
            outcome = self._interpret(raw, len(group), prompt)
            failed, error = False, None
            best: int | None = shown[outcome.order[0]]
        except ModelOutputError as exc:
            where = f"{self.name}: heapsort group {step} for query {state.query.text[:60]!r}"
            if self.fallback == "raise":
                raise ModelOutputError(f"{where}: {exc}", raw_text=exc.raw_text) from exc
            # the reference keeps the node where it is when the answer names no passage
            outcome = _Outcome(list(range(len(group))), {}, exc.raw_text, self._failed_reasoning(exc.raw_text))
            failed, error, best = True, str(exc), None
        heap.feed(best)
        if outcome.reasoning is not None and not failed:
            for p in group:
                state.reasoning[state.order[p]] = outcome.reasoning
        cands = state.candidates
        winner = [0] if best is None else [best]
        output = [*winner, *(j for j in range(len(group)) if j not in winner)]
        state.traces.append(
            WindowTrace(
                pass_index=0,
                start=min(group),
                end=max(group) + 1,
                input_ids=tuple(cands[state.order[group[j]]].id for j in shown),
                output_ids=tuple(cands[state.order[group[j]]].id for j in output),
                raw_output=outcome.raw_output,
                reasoning=outcome.reasoning,
                repairs=outcome.repairs,
                failed=failed,
                error=error,
            )
        )

    def _failed_reasoning(self, raw_text: str | None) -> str | None:
        """Reasoning to keep in the trace of a window whose answer failed (the reasoning ranker overrides)."""
        return None

    def _generation_budget(self, size: int) -> int:
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

    def _best_only(self, order: list[int], counts: dict[str, int], answer: str) -> list[int]:
        """A best-only answer moves only the passage it names first; further ids are counted (``extra_ids``)
        and ignored, so ``[3] > [1]`` never moves both to the front."""
        if self.template.output_format != "best":
            return order
        _, full = parse_permutation(answer, len(order), scheme=self.scheme, complete=True)
        extra = len(order) - full.missing - 1
        if extra > 0:
            counts["extra_ids"] = extra
        return [order[0], *(j for j in range(len(order)) if j != order[0])]

    def _apply(self, state: _State, window: Window, ids: tuple[int, ...], prompt: ChatPrompt, raw: Any) -> None:
        try:
            outcome = self._interpret(raw, len(ids), prompt)
            failed, error = False, None
        except ModelOutputError as exc:
            where = (
                f"{self.name}: window [{window.start}, {window.end}) of pass {window.pass_index} "
                f"for query {state.query.text[:60]!r}"
            )
            if self.fallback == "raise":
                raise ModelOutputError(f"{where}: {exc}", raw_text=exc.raw_text) from exc
            outcome = _Outcome(list(range(len(ids))), {}, exc.raw_text, self._failed_reasoning(exc.raw_text))
            failed, error = True, str(exc)
        state.cache[ids] = outcome.order
        state.order = apply_window(state.order, window.start, window.end, outcome.order)
        if outcome.reasoning is not None and not failed:
            for i in ids:
                state.reasoning[i] = outcome.reasoning
        cands = state.candidates
        state.traces.append(
            WindowTrace(
                pass_index=window.pass_index,
                start=window.start,
                end=window.end,
                input_ids=tuple(cands[i].id for i in ids),
                output_ids=tuple(cands[ids[j]].id for j in outcome.order),
                raw_output=outcome.raw_output,
                reasoning=outcome.reasoning,
                repairs=outcome.repairs,
                failed=failed,
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
