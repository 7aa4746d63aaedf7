"""Split a reasoning model's output into its reasoning and its answer (Rank-R1, ReasonRank, R1-style models).

Formats (:class:`ReasoningFormat`):

* ``<think> reasoning </think> <answer> answer </answer>`` - Rank-R1 and ReasonRank (:data:`THINK_ANSWER`);
* ``<think> reasoning </think> answer`` - models whose answer simply follows the reasoning
  (:data:`THINK_THEN_TEXT`, Qwen3 / DeepSeek-R1 style).

The opening ``<think>`` may be missing (chat templates often put it in the prompt); tags match case-insensitively.

Failures raise :class:`~rerank_plugins.errors.ModelOutputError` carrying the raw text, never a guess:

* no closing ``</think>``: the reasoning never finished (typically the output was truncated);
* no ``<answer>`` after ``</think>``, or an ``<answer>`` without ``</answer>``;
* an empty answer;
* for formats without answer tags, an output cut by the token limit (``truncated=True``): the answer after
  ``</think>`` may be incomplete. With answer tags a closed answer is complete even if generation went on.

Identifiers are only ever read from the answer: an ``<answer>`` (or ``[3] > [1]``) inside the reasoning is
never used, unlike peers that scrape digits from the reasoning when the answer is missing.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import ModelOutputError

__all__ = ["THINK_ANSWER", "THINK_THEN_TEXT", "Parsed", "ReasoningFormat", "split_reasoning"]


@dataclass(frozen=True)
class ReasoningFormat:
    """Tags of a reasoning output. ``answer_open=None`` means the answer is the text after ``think_close``."""

    think_open: str = "<think>"
    think_close: str = "</think>"
    answer_open: str | None = "<answer>"
    answer_close: str | None = "</answer>"

    def __post_init__(self) -> None:
        if (self.answer_open is None) != (self.answer_close is None):
            raise ValueError("answer_open and answer_close must both be set or both be None")
        if not self.think_close:
            raise ValueError("think_close must be a non-empty tag")


THINK_ANSWER = ReasoningFormat()
THINK_THEN_TEXT = ReasoningFormat(answer_open=None, answer_close=None)


@dataclass(frozen=True)
class Parsed:
    """The reasoning (text between the think tags, stripped) and the answer (stripped, non-empty)."""

    reasoning: str
    answer: str


def _find(text: str, tag: str, start: int = 0) -> int:
    m = re.compile(re.escape(tag), re.IGNORECASE).search(text, start)
    return -1 if m is None else m.start()


def split_reasoning(text: str, fmt: ReasoningFormat = THINK_ANSWER, *, truncated: bool = False) -> Parsed:
    """Split ``text`` (the full assistant output, including any forced prefix such as ``<think>``).

    ``truncated`` says generation stopped at the token limit (``finish_reason == "length"``).
    """
    close = _find(text, fmt.think_close)
    if close < 0:
        why = " (the output hit the token limit)" if truncated else ""
        raise ModelOutputError(f"reasoning is not closed: no {fmt.think_close} in the output{why}", raw_text=text)
    head = text[:close]
    opening = _find(head, fmt.think_open) if fmt.think_open else -1
    reasoning = head[opening + len(fmt.think_open) :] if opening >= 0 else head
    rest = text[close + len(fmt.think_close) :]

    if fmt.answer_open is None or fmt.answer_close is None:
        if truncated:
            raise ModelOutputError(
                f"the output hit the token limit after {fmt.think_close}: the answer may be incomplete",
                raw_text=text,
            )
        answer = rest
    else:
        start = _find(rest, fmt.answer_open)
        if start < 0:
            raise ModelOutputError(f"no {fmt.answer_open} after {fmt.think_close}", raw_text=text)
        body_start = start + len(fmt.answer_open)
        end = _find(rest, fmt.answer_close, body_start)
        if end < 0:
            why = " (the output hit the token limit)" if truncated else ""
            raise ModelOutputError(f"the answer is not closed: no {fmt.answer_close}{why}", raw_text=text)
        answer = rest[body_start:end]
    answer = answer.strip()
    if not answer:
        raise ModelOutputError("the answer is empty", raw_text=text)
    return Parsed(reasoning=reasoning.strip(), answer=answer)
