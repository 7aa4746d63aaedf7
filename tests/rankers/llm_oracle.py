"""Prompt-reading scripted LLMs for the LLM strategy tests.

Each oracle reads the passages and the query back from the rendered prompt text and ranks by word overlap
(case-folded ``\\w+`` words shared with the query; ties keep prompt order). So conformance tests exercise the
whole path: prompt rendering, identifiers, the backend call, parsing, window merging and scores.
"""

from __future__ import annotations

import math
import re

from rerank_plugins.testing.fake_llm import ScriptedLLM

_PASSAGE = re.compile(r"^(?:user: )?\[([A-Za-z0-9]+)\] (.*)$", re.MULTILINE)
_QUERIES = (
    re.compile(r"Search Query: (.*)\.$", re.MULTILINE),
    re.compile(r'Given the query: "(.*)", which', re.MULTILINE),
    re.compile(r"^Query: (.*)$", re.MULTILINE),
)
_DOCUMENT = re.compile(r"^Document: (.*)$", re.MULTILINE)


def words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def query_of(prompt: str) -> str:
    for pattern in _QUERIES:
        m = pattern.search(prompt)
        if m:
            return m.group(1)
    raise AssertionError(f"no query found in prompt:\n{prompt}")


def passages_of(prompt: str) -> list[tuple[str, str]]:
    found = _PASSAGE.findall(prompt)
    assert found, f"no passages found in prompt:\n{prompt}"
    return found


def overlap(query: str, text: str) -> int:
    return len(words(query) & words(text))


def ranked_labels(prompt: str) -> list[str]:
    q = query_of(prompt)
    items = passages_of(prompt)
    order = sorted(range(len(items)), key=lambda i: -overlap(q, items[i][1]))
    return [items[i][0] for i in order]


def listwise_answer(prompt: str) -> str:
    """What a perfect listwise model writes (the assistant prefix, if any, is already in the prompt)."""
    answer = " > ".join(f"[{label}]" for label in ranked_labels(prompt))
    return answer[1:] if prompt.endswith("[") else answer


def reasoning_answer(prompt: str) -> str:
    labels = ranked_labels(prompt)
    answer = f"[{labels[0]}]" if "most relevant?" in prompt else " > ".join(f"[{x}]" for x in labels)
    return f"<think> counting shared words, [{labels[-1]}] shares the fewest </think>\n<answer>{answer}</answer>"


def first_logprobs(prompt: str, labels: list[str]) -> list[float]:
    q = query_of(prompt)
    seen = dict(passages_of(prompt))
    return [-10.0 + 0.5 * overlap(q, seen[label]) if label in seen else -math.inf for label in labels]


def yes_no_logprobs(prompt: str, labels: list[str]) -> list[float]:
    o = overlap(query_of(prompt), _DOCUMENT.search(prompt).group(1))  # type: ignore[union-attr]
    lp_yes, lp_no = math.log((o + 1) / (o + 2)), math.log(1 / (o + 2))
    table = {"yes": lp_yes, "no": lp_no}
    return [table.get(label.strip().lower(), -math.inf) for label in labels]


def graded_logprobs(prompt: str, labels: list[str]) -> list[float]:
    o = overlap(query_of(prompt), _DOCUMENT.search(prompt).group(1))  # type: ignore[union-attr]
    top = len(labels) - 1
    return [-abs(int(g) - min(o, top)) * 1.0 for g in labels]


def listwise_llm(**kwargs: object) -> ScriptedLLM:
    return ScriptedLLM(listwise_answer, logprobs=first_logprobs, **kwargs)  # type: ignore[arg-type]


def reasoning_llm(**kwargs: object) -> ScriptedLLM:
    return ScriptedLLM(reasoning_answer, **kwargs)  # type: ignore[arg-type]


def pointwise_llm(graded: bool = False, **kwargs: object) -> ScriptedLLM:
    return ScriptedLLM(logprobs=graded_logprobs if graded else yes_no_logprobs, **kwargs)  # type: ignore[arg-type]
