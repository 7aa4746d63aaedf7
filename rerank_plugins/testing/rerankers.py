"""A deterministic, dependency-free reranker for testing adapters and pipelines.

:class:`KeywordReranker` scores a candidate by the query words it contains, weighted down by the candidate's
length (so scores are graded and rarely tie, while identical texts tie exactly). It returns everything a real
strategy can return - a reasoning string and details per candidate, and one listwise-style window trace - so a
test can check that all of it reaches the user through an adapter. It counts its sync and async calls, and its
:meth:`_ascore` is natively asynchronous (no worker thread), so a test can tell which path an adapter took.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence

from ..base import Reranker, Scores
from ..types import Candidate, Query, WindowTrace

__all__ = ["KeywordReranker"]

_WORD = re.compile(r"\w+", re.UNICODE)


class KeywordReranker(Reranker):
    """Score = (number of distinct query words in the text) / sqrt(1 + number of words in the text) + ``offset``.

    ``reasoning=False`` leaves out reasoning and details, ``traces=False`` the window trace (plain scores, like a
    cross-encoder's). A negative ``offset`` gives negative scores (to test thresholds at 0.0); ``seen`` records
    the candidates of the last call and ``seen_query`` its query (to test what an adapter passed in);
    ``instruction`` is only recorded (to test that an adapter passes the option of LLM rerankers through).
    """

    name = "keyword"

    def __init__(
        self, *, reasoning: bool = True, traces: bool = True, offset: float = 0.0, instruction: str | None = None
    ) -> None:
        self.offset = float(offset)
        self.instruction = instruction
        self.seen: tuple[Candidate, ...] = ()
        self.seen_query: Query | None = None
        self.reasoning = reasoning
        self.traces = traces
        self.sync_calls = 0
        self.async_calls = 0

    def _compute(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        self.seen = tuple(candidates)
        self.seen_query = query
        qwords = {w.lower() for w in _WORD.findall(query.text)}
        values: list[float] = []
        reasons: list[str | None] = []
        details = []
        for c in candidates:
            words = [w.lower() for w in _WORD.findall(c.content)]
            matched = sorted(qwords.intersection(words))
            values.append(len(matched) / math.sqrt(1 + len(words)) + self.offset)
            reasons.append(f"{len(matched)} of {len(qwords)} query words found: {', '.join(matched)}")
            details.append({"matched": len(matched), "words": len(words)})
        traces: tuple[WindowTrace, ...] = ()
        if self.traces:
            ids = tuple(c.id for c in candidates)
            order = sorted(range(len(ids)), key=lambda i: -values[i])
            traces = (
                WindowTrace(
                    pass_index=0,
                    start=0,
                    end=len(ids),
                    input_ids=ids,
                    output_ids=tuple(ids[i] for i in order),
                    raw_output=" > ".join(f"[{i + 1}]" for i in order),
                ),
            )
        return Scores(
            values,
            reasoning=reasons if self.reasoning else None,
            details=details if self.reasoning else None,
            traces=traces,
        )

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        self.sync_calls += 1
        return self._compute(query, candidates)

    async def _ascore(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        self.async_calls += 1
        return self._compute(query, candidates)
