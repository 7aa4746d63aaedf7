"""Split a reasoning model's output into its reasoning and its answer (Rank-R1, ReasonRank, R1-style models).

Formats (:class:`ReasoningFormat`):

* ``<think> reasoning </think> <answer> answer </answer>`` - Rank-R1 and ReasonRank (:data:`THINK_ANSWER`);
* ``<think> reasoning </think> answer`` - models whose answer simply follows the reasoning
  (:data:`THINK_THEN_TEXT`, Qwen3 / DeepSeek-R1 style).

The opening ``<think>`` may be missing (chat templates often put it in the prompt); tags match case-insensitively.
A format with a ``pattern`` (the reference's own regular expression, group 1 the answer) is read exactly as its
reference reads it instead: Rank-R1's ``<think>.*?</think>\\s*<answer>(.*?)</answer>`` (ielab/llm-rankers@b36517b
``Rank-R1/prompts/prompt_setwise-R1.toml``, searched in ``RankR1SetwiseLlmRanker.compare``) needs the opening
``<think>`` and nothing but whitespace between ``</think>`` and ``<answer>``; an output it does not match fails.
``exact_label`` says the answer must be exactly one identifier label (``[3]``), as that reference's vote
(``result in characters``) requires; the caller checks it (it knows the labels).

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
    #: the reference's regular expression over the whole output (case-insensitive, ``.`` matches newlines); its
    #: group 1 is the answer. ``None``: the lenient tag search above.
    pattern: str | None = None
    #: the answer must be exactly one identifier label (``[3]``), nothing around it
    exact_label: bool = False

    def __post_init__(self) -> None:
        if (self.answer_open is None) != (self.answer_close is None):
            raise ValueError("answer_open and answer_close must both be set or both be None")
        if not self.think_close:
            raise ValueError("think_close must be a non-empty tag")
        if self.pattern is not None:
            try:
                groups = re.compile(self.pattern).groups
            except re.error as exc:
                raise ValueError(f"pattern {self.pattern!r} is not a regular expression: {exc}") from None
            if groups < 1:
                raise ValueError(f"pattern {self.pattern!r} needs a group for the answer")


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
    if fmt.pattern is not None:
        return _match_pattern(text, fmt, truncated)
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


def _match_pattern(text: str, fmt: ReasoningFormat, truncated: bool) -> Parsed:
    """``re.search(fmt.pattern, text.lower(), re.DOTALL)`` as the reference reads it (case-insensitive here, so the
    reasoning keeps its case); the reasoning is what lies between the think tags of the match."""
    assert fmt.pattern is not None
    match = re.search(fmt.pattern, text, re.IGNORECASE | re.DOTALL)
    if match is None:
        why = " (the output hit the token limit)" if truncated else ""
        raise ModelOutputError(
            f"the output does not match the reference's answer pattern {fmt.pattern!r}{why}", raw_text=text
        )
    head = text[match.start() : match.start(1)]
    low = head.lower()
    if fmt.answer_open:
        cut = low.rfind(fmt.answer_open.lower())
        head, low = (head[:cut], low[:cut]) if cut >= 0 else (head, low)
    cut = low.rfind(fmt.think_close.lower())
    head, low = (head[:cut], low[:cut]) if cut >= 0 else (head, low)
    opening = low.find(fmt.think_open.lower()) if fmt.think_open else -1
    reasoning = head[opening + len(fmt.think_open) :] if opening >= 0 else head
    answer = match.group(1).strip()
    if not answer:
        raise ModelOutputError("the answer is empty", raw_text=text)
    return Parsed(reasoning=reasoning.strip(), answer=answer)
