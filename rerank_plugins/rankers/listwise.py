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

Results: monotone scores from the final order (:func:`~rerank_plugins.base.scores_from_order`) and one
:class:`~rerank_plugins.types.WindowTrace` per window sent to the model (input and output ids, raw output,
repairs, failure). A window whose output is unusable raises :class:`~rerank_plugins.errors.ModelOutputError`
(``fallback="raise"``) or keeps its input order and is recorded as failed (``fallback="keep"``).
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from .._warnings import caller_stacklevel
from ..backends.base import ChatPrompt, Generation, LLMBackend
from ..base import Reranker, Scores, scores_from_order
from ..engine.identifiers import IdScheme, get_scheme
from ..engine.logits import choose_id_scheme, first_order
from ..engine.permutation import format_permutation, parse_permutation
from ..engine.windows import Window, WindowPlan, apply_window, plan_windows
from ..errors import BackendError, ConfigError, ModelOutputError
from ..prompts import PromptTemplate, get_prompt
from ..refs import ModelRef
from ..types import Candidate, Query, WindowTrace
from ._llm import check_choice, check_int, passage_texts, release_backend, resolve_backend, warn_truncated

__all__ = ["FirstReranker", "ListwiseReranker"]

_MODES = ("generate", "first")
_FALLBACKS = ("raise", "keep")


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
        fallback: ``"raise"`` or ``"keep"`` (an unusable window keeps its input order, recorded in the trace).
        temperature / seed: sampling for generate mode (0 is greedy and deterministic).
        batch_windows: send the windows of all queries at the same step in one backend call.
        backend / backend_options: which backend to load ``model`` with, and its options (device, dtype, ...).
    """

    kind = "listwise"

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
    ) -> None:
        self.mode = check_choice("mode", mode, _MODES)
        self.fallback = check_choice("fallback", fallback, _FALLBACKS)
        check_int("max_new_tokens", max_new_tokens, 1, optional=True)
        check_int("max_passage_words", max_passage_words, 1, optional=True)
        if isinstance(temperature, bool) or not isinstance(temperature, (int, float)) or temperature < 0:
            raise ConfigError(f"temperature must be a number >= 0, got {temperature!r}")
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
        step = 0
        while True:
            pending = [(s, s.plan.windows[step]) for s in states if step < len(s.plan.windows)]
            if not pending:
                break
            self._run_step(pending)
            step += 1
        return [self._result(s) for s in states]

    def close(self) -> None:
        release_backend(self.backend, self._owns_backend)

    # ------------------------------------------------------------------ machinery
    def _passage_texts(self, query: Query, candidates: Sequence[Candidate]) -> tuple[list[str], int]:
        """The passage texts the model sees (cleaned and cut to ``max_passage_words``) and how many were cut.

        A hook for prompt variants that annotate passages, e.g. InsertRank appends first-stage scores
        (:class:`~rerank_plugins.rankers.insertrank.InsertRankReranker`).
        """
        return passage_texts(candidates, self.max_passage_words, type(self).__name__)

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
        warn_truncated(cut, self.max_passage_words, type(self).__name__)
        return _State(query, candidates, texts, self._plan(len(candidates)), list(range(len(candidates))), cut)

    def _prompt(self, query: Query, passages: list[str]) -> ChatPrompt:
        prompt = self.template.render_listwise(query.text, passages, self.scheme)
        return ChatPrompt(prompt.messages, self.assistant_prefix, prompt.raw)

    def _run_step(self, pending: list[tuple[_State, Window]]) -> None:
        todo: list[tuple[_State, Window, tuple[int, ...], ChatPrompt]] = []
        for state, window in pending:
            ids = tuple(state.order[window.start : window.end])
            if self.temperature == 0 and ids in state.cache:
                state.order = apply_window(state.order, window.start, window.end, state.cache[ids])
                state.reused += 1
                continue
            todo.append((state, window, ids, self._prompt(state.query, [state.texts[i] for i in ids])))
        if not todo:
            return
        groups = [list(range(len(todo)))] if self.batch_windows else [[i] for i in range(len(todo))]
        for group in groups:
            raws = self._call([todo[i][3] for i in group], [len(todo[i][2]) for i in group])
            for i, raw in zip(group, raws):
                self._apply(*todo[i], raw)

    def _generation_budget(self, size: int) -> int:
        if self.max_new_tokens is not None:
            return self.max_new_tokens
        if size not in self._budget:
            full = format_permutation(range(size), self.scheme)
            self._budget[size] = max(self.backend.count_tokens(full), 5 * size) + 16
        return self._budget[size]

    def _call(self, prompts: list[ChatPrompt], sizes: list[int]) -> list[Any]:
        if self.mode == "first":
            labels = self.scheme.labels(max(sizes))
            rows = self.backend.label_logprobs(prompts, labels)
            if len(rows) != len(prompts) or any(len(r) != len(labels) for r in rows):
                raise BackendError(f"{self.backend.model_id}: label_logprobs returned a malformed result")
            return [list(r[:size]) for r, size in zip(rows, sizes)]
        out = self.backend.generate(
            prompts,
            max_new_tokens=max(self._generation_budget(s) for s in sizes),
            temperature=self.temperature,
            seed=self.seed,
        )
        if len(out) != len(prompts):
            raise BackendError(f"{self.backend.model_id}: generate returned {len(out)} outputs for {len(prompts)}")
        return out

    def _interpret(self, raw: Any, size: int, prompt: ChatPrompt) -> _Outcome:
        """Turn one backend answer into a window order (raises ModelOutputError when it is unusable)."""
        if self.mode == "first":
            labels = self.scheme.labels(size)
            rendered = " ".join(f"{lab}:{lp:.4g}" for lab, lp in zip(labels, raw))
            try:
                order, unseen = first_order(raw)
            except ModelOutputError as exc:
                raise ModelOutputError(str(exc), raw_text=rendered) from None
            return _Outcome(order, {"missing": unseen}, rendered)
        gen: Generation = raw
        text = prompt.assistant_prefix + gen.text
        order, repairs = parse_permutation(
            text, size, scheme=self.scheme, complete=self.template.output_format != "best"
        )
        counts = repairs.as_dict()
        if gen.finish_reason == "length":
            counts["truncated"] = 1
        return _Outcome(order, counts, text)

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
            outcome = _Outcome(list(range(len(ids))), {}, exc.raw_text)
            failed, error = True, str(exc)
        state.cache[ids] = outcome.order
        state.order = apply_window(state.order, window.start, window.end, outcome.order)
        if outcome.reasoning is not None:
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
