"""Every LLM reranking strategy over a scripted fake LLM, for adapter and pipeline tests.

:func:`scripted_reranker` builds the strategy registered as ``kind`` (``"listwise"``, ``"first"``,
``"reasoning"``, ``"yes-no"``, ``"graded"``) over a :class:`~rerank_plugins.testing.fake_llm.ScriptedLLM` that
answers any prompt deterministically from the prompt itself: listwise answers rank the passages of the window
by length (longest first, ties by identifier), the reasoning answer wraps that ranking in think/answer tags,
FIRST log-probabilities follow passage length, and pointwise relevance grows with the prompt's length (the
query is the same for every document of a call). So the same prompt always gets the same answer (parity
between a bare reranker and an adapter), results are not the input order, and reasoning is produced.

The whole path runs for real: prompt rendering, identifiers, the backend call, parsing, windows and scores.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from ..base import Reranker
from ..models import strategies
from .fake_llm import ScriptedLLM

__all__ = ["LLM_KINDS", "scripted_llm", "scripted_reranker"]

#: The LLM strategy kinds :func:`scripted_reranker` can build.
LLM_KINDS = ("listwise", "first", "reasoning", "yes-no", "graded")

_PASSAGE = re.compile(r"^(?:user: )?\[([A-Za-z0-9]+)\] (.*)$", re.MULTILINE)


def _ranked_labels(prompt: str) -> list[str]:
    found = _PASSAGE.findall(prompt)
    if not found:
        raise AssertionError(f"no '[id] passage' lines in the prompt:\n{prompt}")
    return [label for label, _ in sorted(found, key=lambda item: (-len(item[1]), item[0]))]


def _listwise(prompt: str) -> str:
    answer = " > ".join(f"[{label}]" for label in _ranked_labels(prompt))
    return answer[1:] if prompt.endswith("[") else answer


def _reasoning(prompt: str) -> str:
    labels = _ranked_labels(prompt)
    ranking = " > ".join(f"[{label}]" for label in labels)
    thought = f"[{labels[0]}] is the longest passage, [{labels[-1]}] the shortest"
    return f"<think> {thought} </think>\n<answer>{ranking}</answer>"


def _first(prompt: str, labels: Sequence[str]) -> list[float]:
    lengths = {label: len(text) for label, text in _PASSAGE.findall(prompt)}
    return [-10.0 + lengths[label] / 100 if label in lengths else -math.inf for label in labels]


def _yes_no(prompt: str, labels: Sequence[str]) -> list[float]:
    p = 1.0 - 1.0 / (1.0 + len(prompt) / 200)
    table = {"yes": math.log(p), "no": math.log(1.0 - p)}
    return [table.get(label.strip().lower(), -math.inf) for label in labels]


def _graded(prompt: str, labels: Sequence[str]) -> list[float]:
    grade = (len(prompt) // 9) % len(labels)
    out = []
    for label in labels:
        try:
            out.append(-abs(int(label.strip()) - grade) * 1.0)
        except ValueError:
            out.append(-math.inf)
    return out


def scripted_llm(kind: str) -> ScriptedLLM:
    """The scripted LLM :func:`scripted_reranker` uses for ``kind``."""
    if kind in ("listwise", "first"):
        return ScriptedLLM(_listwise, logprobs=_first)
    if kind == "reasoning":
        return ScriptedLLM(_reasoning)
    if kind == "yes-no":
        return ScriptedLLM(logprobs=_yes_no)
    if kind == "graded":
        return ScriptedLLM(logprobs=_graded)
    raise ValueError(f"unknown LLM kind {kind!r}; expected one of {LLM_KINDS}")


def scripted_reranker(kind: str, **options: Any) -> Reranker:
    """The strategy registered as ``kind``, built over :func:`scripted_llm` with ``options``."""
    cls = strategies()[kind].load_class()
    return cls(scripted_llm(kind), **options)  # type: ignore[no-any-return]
