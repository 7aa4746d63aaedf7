"""The length policy for encoders that read one text at a time (the embedding and ColBERT rerankers).

:func:`plan_texts` plans every text of a call under a :class:`~rerank_plugins.engine.length_policy.LengthPolicy`:
one tokenizer call measures all of them as the model reads them (``render(text)``: prompt, marker, cleaning;
special tokens included), and only an overlong one is cut (``truncate``) or split into windows (``chunk``), each
measured on the real input (:func:`~rerank_plugins.engine.length_policy.plan_document`), so every window fits the
budget and its span maps back to the original text. :func:`distinct_windows` lists the window texts of all plans
once each, so identical windows are encoded once.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import partial
from typing import Any

from ..engine.length_policy import DocumentPlan, LengthPolicy, plan_document, token_offsets

__all__ = ["distinct_windows", "plan_texts", "text_budget"]


def text_budget(tokenizer: Any, limit: int, own_tokens: int | None, render: Callable[[str], str]) -> int:
    """The budget of one model input: ``limit`` tokens, lowered to ``own_tokens`` of the text itself plus what
    ``render`` adds around it (prompt, marker, special tokens) when ``own_tokens`` is given."""
    if own_tokens is None:
        return limit
    overhead = len(tokenizer(render(""), verbose=False)["input_ids"])
    return min(limit, own_tokens + overhead)


def plan_texts(
    tokenizer: Any,
    texts: Sequence[str],
    policy: LengthPolicy,
    budget: int,
    *,
    render: Callable[[str], str],
    who: str,
    search: bool = True,
) -> list[DocumentPlan]:
    """The plan of each text: ``(0, len)`` when ``render(text)`` fits ``budget`` tokens, else its windows
    (``policy.chunking``) or its kept span. ``search=False`` (truncate mode, when the model cuts the text itself,
    as the reference does) only marks an overlong text as truncated, keeping its whole span."""
    if not texts:
        return []
    lengths = [len(ids) for ids in tokenizer([render(t) for t in texts], verbose=False)["input_ids"]]
    plans: list[DocumentPlan] = []
    for text, length in zip(texts, lengths):
        if length <= budget:
            plans.append(DocumentPlan(((0, len(text)),), False))
        elif not policy.chunking and not search:
            plans.append(DocumentPlan(((0, len(text)),), True))
        else:
            seen: dict[tuple[int, int], int] = {}

            def measure(s: int, e: int, text: str = text, seen: dict[tuple[int, int], int] = seen) -> int:
                if (s, e) not in seen:
                    seen[(s, e)] = len(tokenizer(render(text[s:e]), verbose=False)["input_ids"])
                return seen[(s, e)]

            plans.append(plan_document(policy, len(text), budget, measure, partial(token_offsets, tokenizer, text),
                                       full_length=length, who=who))
    return plans


def distinct_windows(texts: Sequence[str], plans: Sequence[DocumentPlan]) -> tuple[list[str], list[list[int]]]:
    """``(windows, index)``: the distinct window texts of all plans, and for each text the positions of its
    windows in that list (in window order)."""
    position: dict[str, int] = {}
    index: list[list[int]] = []
    for text, plan in zip(texts, plans):
        index.append([position.setdefault(text[s:e], len(position)) for s, e in plan.spans])
    return list(position), index
