"""Reasoning listwise reranking (ReasonRank, Rank-R1) on the same sliding windows as :class:`ListwiseReranker`.

The model thinks first, then answers: ``<think> ... </think> <answer> [2] > [1] > [3] </answer>``
(ReasonRank, prompt ``"reasonrank"``), or names only the most relevant passage, ``<answer>[3]</answer>``
(Rank-R1, prompt ``"rank-r1"``: the best passage of each window moves to its front, the others keep their
order, which over back-to-front windows is the setwise bubble pass Rank-R1 was trained for).

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
from typing import Any

from ..backends.base import ChatPrompt, Generation, LLMBackend
from ..engine.permutation import parse_permutation
from ..engine.reasoning import split_reasoning
from ..errors import ConfigError, ModelOutputError
from ..prompts import PromptTemplate
from ..refs import ModelRef
from .listwise import ListwiseReranker, _Outcome

__all__ = ["ReasoningReranker"]


class ReasoningReranker(ListwiseReranker):
    """Listwise reranking with a reasoning model (see the module docstring).

    Takes the options of :class:`ListwiseReranker` (always in ``generate`` mode); ``prompt`` defaults to
    ``"reasonrank"`` and must define the reasoning tags; ``max_new_tokens`` defaults to 2048 (reasoning is long).
    """

    kind = "reasoning"

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef | LLMBackend,
        *,
        prompt: str | PromptTemplate | None = "reasonrank",
        max_new_tokens: int | None = 2048,
        **options: Any,
    ) -> None:
        mode = options.pop("mode", "generate")
        if mode != "generate":
            raise ConfigError(f"ReasoningReranker generates its reasoning: mode must be 'generate', got {mode!r}")
        super().__init__(model, mode="generate", prompt=prompt, max_new_tokens=max_new_tokens, **options)

    def _default_prompt(self) -> str:
        return "reasonrank"

    def _check_template(self, template: PromptTemplate) -> None:
        if template.kind != "listwise" or template.reasoning is None:
            raise ConfigError(
                f"prompt {template.key} is not a reasoning listwise prompt (it needs think/answer tags); "
                "use 'reasonrank' or 'rank-r1', or ListwiseReranker for plain listwise prompts"
            )

    def _interpret(self, raw: Any, size: int, prompt: ChatPrompt) -> _Outcome:
        gen: Generation = raw
        assert self.template.reasoning is not None
        text = prompt.assistant_prefix + gen.text
        parsed = split_reasoning(text, self.template.reasoning, truncated=gen.finish_reason == "length")
        try:
            order, repairs = parse_permutation(
                parsed.answer, size, scheme=self.scheme, complete=self.template.output_format != "best"
            )
        except ModelOutputError as exc:
            message = f"the answer {parsed.answer[:80]!r} names no passage: {exc}"
            raise ModelOutputError(message, raw_text=text) from None
        return _Outcome(order, repairs.as_dict(), text, parsed.reasoning)
