"""Deterministic toy rerankers for the composed-method tests (no model)."""

from __future__ import annotations

from collections.abc import Sequence

from rerank_plugins import Candidate, Query, Reranker, Scores


class TableReranker(Reranker):
    """Scores from a fixed table ``id -> score`` (missing ids score ``default``); counts calls and seen ids."""

    def __init__(self, table: dict[str, float], name: str = "table", default: float = 0.0) -> None:
        self.table = dict(table)
        self.name = name
        self.default = default
        self.seen: list[list[str]] = []

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        self.seen.append([c.id for c in candidates])
        return Scores([self.table.get(c.id, self.default) for c in candidates])


class OverlapReranker(Reranker):
    """Score = share of query words found in the candidate text (case-folded); identical texts tie exactly."""

    name = "overlap"

    def __init__(self) -> None:
        self.queries: list[str] = []

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        self.queries.append(query.text)
        words = {w.strip("?.,!").lower() for w in query.text.split()} - {""}
        out = []
        for c in candidates:
            text = {w.strip("?.,!").lower() for w in c.content.split()}
            out.append(len(words & text) / max(1, len(words)))
        return Scores(out)


class LengthReranker(Reranker):
    """Score = minus the text length in characters (shorter is better): a cheap, deterministic second opinion."""

    name = "shorter"

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        return Scores([-float(len(c.content)) for c in candidates])
