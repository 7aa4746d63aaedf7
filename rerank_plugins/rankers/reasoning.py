"""Reasoning listwise reranking (ReasonRank, Rank-R1) on the same sliding windows as :class:`ListwiseReranker`.

The model thinks first, then answers: ``<think> ... </think> <answer> [2] > [1] > [3] </answer>``
(ReasonRank, prompt ``"reasonrank"``), or names only the most relevant passage, ``<answer>[3]</answer>``
(Rank-R1, prompt ``"rank-r1"``: the best passage of each window moves to its front, the others keep their
order, which over back-to-front windows is the setwise bubble pass Rank-R1 was trained for).

With ``fallback="partial"`` an answer cut off before ``</answer>`` (``<answer> [3] > [1] > [``, typically at the
token limit) keeps its valid prefix and appends the rest of the window in input order, as both references do
(rank_llm's ``receive_permutation``; ReasonRank ``rerank/rankllm.py`` ``_clean_response`` splits on ``<answer>``);
the window's trace records ``repairs["partial"] = 1``. Without a closed reasoning and an ``<answer>`` the window
keeps its input order and is recorded as failed, as with ``"keep"``. A failed window keeps its well-formed
reasoning (closed think block) in its trace.

The ranking is read **only** from the answer (:func:`rerank_plugins.engine.reasoning.split_reasoning`). A
reasoning that never closes, a missing or unclosed answer, an empty answer, or an answer cut by the token
limit raises :class:`~rerank_plugins.errors.ModelOutputError` with the raw text, or, with ``fallback="keep"``,
leaves the window in its input order and records the failure in its trace; identifiers are never scraped
from the reasoning.

The reasoning comes back per window (:attr:`WindowTrace.reasoning <rerank_plugins.types.WindowTrace>`) and per
document (:attr:`ScoredCandidate.reasoning <rerank_plugins.types.ScoredCandidate>`: the reasoning of the last
successfully parsed window that contained it).
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, ClassVar

from ..backends.base import ChatPrompt, Generation, LLMBackend
from ..engine.permutation import parse_permutation
from ..engine.reasoning import split_reasoning
from ..errors import ConfigError, ModelOutputError
from ..prompts import PromptTemplate, get_prompt
from ..refs import ModelRef
from .listwise import GeneratedPermutationAnswer, ListwiseReranker, WindowAnswer, _Outcome, keep_best_only

__all__ = ["ReasoningAnswer", "ReasoningReranker"]


class ReasoningAnswer(GeneratedPermutationAnswer):
    """A reasoning model's window answer: the ranking is read only from the answer of
    :func:`~rerank_plugins.engine.reasoning.split_reasoning` (the prompt's reasoning format), with the
    reference's pattern and exact-label vote where the prompt names them (Rank-R1), and the valid prefix of a
    cut-off answer with ``fallback="partial"`` (see the module docstring)."""

    default_prompt = "reasonrank"

    def interpret(self, ranker: ListwiseReranker, raw: Any, size: int, prompt: ChatPrompt) -> _Outcome:
        gen: Generation = raw
        fmt = ranker.template.reasoning
        assert fmt is not None
        text = prompt.assistant_prefix + gen.text
        try:
            parsed = split_reasoning(text, fmt, truncated=gen.finish_reason == "length")
        except ModelOutputError as exc:
            if ranker.fallback != "partial":
                raise
            return self._partial(ranker, text, size, exc)
        if fmt.exact_label:
            _check_exact_label(ranker, parsed.answer, size, text)
        best = ranker.template.output_format == "best"
        try:
            order, repairs = parse_permutation(parsed.answer, size, scheme=ranker.scheme, complete=not best)
        except ModelOutputError as exc:
            message = f"the answer {parsed.answer[:80]!r} names no passage: {exc}"
            raise ModelOutputError(message, raw_text=text) from None
        counts = repairs.as_dict()
        if best:
            order = keep_best_only(order, counts, parsed.answer, ranker.scheme)
        return _Outcome(order, counts, text, parsed.reasoning)

    def _partial(self, ranker: ListwiseReranker, text: str, size: int, error: ModelOutputError) -> _Outcome:
        """The valid prefix of an answer cut off before its closing tag (see the module docstring); formats read
        by the reference's own pattern have no partial answers."""
        fmt = ranker.template.reasoning
        assert fmt is not None
        if fmt.pattern is not None:
            raise error
        reasoning = self.failed_reasoning(ranker, text)
        low = text.lower()
        close = low.find(fmt.think_close.lower())
        opening = low.find(fmt.answer_open.lower(), close) if fmt.answer_open and close >= 0 else -1
        if reasoning is None or opening < 0 or fmt.answer_open is None:
            raise error
        tail = text[opening + len(fmt.answer_open):]
        try:
            order, repairs = parse_permutation(tail, size, scheme=ranker.scheme, complete=True)
        except ModelOutputError:
            raise error from None
        counts = {**repairs.as_dict(), "partial": 1}
        if ranker.template.output_format == "best":
            order = keep_best_only(order, counts, tail, ranker.scheme)
        return _Outcome(order, counts, text, reasoning)

    def failed_reasoning(self, ranker: ListwiseReranker, raw_text: str | None) -> str | None:
        """The reasoning of an output whose think block is closed, else None."""
        fmt = ranker.template.reasoning
        if fmt is None or not raw_text:
            return None
        low = raw_text.lower()
        close = low.find(fmt.think_close.lower())
        if close < 0:
            return None
        head = raw_text[:close]
        opening = head.lower().find(fmt.think_open.lower()) if fmt.think_open else -1
        return (head[opening + len(fmt.think_open):] if opening >= 0 else head).strip()


def _check_exact_label(ranker: ListwiseReranker, answer: str, size: int, text: str) -> None:
    """An ``exact_label`` format's answer is one of the window's labels and nothing else (llm-rankers'
    ``result in characters``; anything else is its "Unexpected voting")."""
    scheme = ranker.scheme
    labels = [f"[{label}]" for label in scheme.labels(size)]  # as the passages are labelled
    fold = (lambda x: x) if scheme.case_sensitive else str.lower
    if fold(answer) not in {fold(label) for label in labels}:
        raise ModelOutputError(
            f"the answer {answer[:80]!r} is not exactly one of the labels {labels[0]}..{labels[-1]} "
            "(the reference counts it as an unexpected vote)",
            raw_text=text,
        )



class ReasoningReranker(ListwiseReranker):
    """Listwise reranking with a reasoning model (see the module docstring).

    Takes the options of :class:`ListwiseReranker` (always in ``generate`` mode); ``prompt`` defaults to
    ``"reasonrank"`` and must define the reasoning tags; ``max_new_tokens`` defaults to the prompt's own budget
    (``reasonrank``: 3072 + 100 as ReasonRank's ``run_rank_llm.sh`` / ``SamplingParams(max_tokens=reasoning_maxlen
    + 100)``; ``rank-r1``: 2048 as ``RankR1SetwiseLlmRanker``), else 2048. ``fallback`` also takes ``"partial"``.
    """

    kind = "reasoning"
    answers: ClassVar[Mapping[str, WindowAnswer]] = MappingProxyType({"generate": ReasoningAnswer()})
    fallbacks = ("raise", "keep", "partial")
    _stacklevel = 3

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef | LLMBackend,
        *,
        prompt: str | PromptTemplate | None = "reasonrank",
        max_new_tokens: int | None = None,
        **options: Any,
    ) -> None:
        mode = options.pop("mode", "generate")
        if mode != "generate":
            raise ConfigError(f"ReasoningReranker generates its reasoning: mode must be 'generate', got {mode!r}")
        if max_new_tokens is None:
            template = get_prompt(prompt if prompt is not None else "reasonrank", options.get("prompt_version"))
            max_new_tokens = template.max_new_tokens if template.max_new_tokens is not None else 2048
        super().__init__(model, mode="generate", prompt=prompt, max_new_tokens=max_new_tokens, **options)

    def _check_template(self, template: PromptTemplate) -> None:
        if template.kind != "listwise" or template.reasoning is None:
            raise ConfigError(
                f"prompt {template.key} is not a reasoning listwise prompt (it needs think/answer tags); "
                "use 'reasonrank' or 'rank-r1', or ListwiseReranker for plain listwise prompts"
            )
