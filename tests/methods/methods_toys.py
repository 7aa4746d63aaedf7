"""Deterministic toy rerankers for the composed-method tests (no model)."""

from __future__ import annotations

import math
import re
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


class QueryTableReranker(Reranker):
    """Scores from ``tables[query_text][id]``; records the query texts it was asked about."""

    name = "query-table"

    def __init__(self, tables: dict[str, dict[str, float]]) -> None:
        self.tables = tables
        self.queries: list[str] = []

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        self.queries.append(query.text)
        table = self.tables[query.text]
        return Scores([table[c.id] for c in candidates])


class TableEmbedder:
    """A fake bi-encoder: fixed vectors per text (unknown texts get a hashed bag-of-words vector)."""

    def __init__(self, vectors: dict[str, list[float]] | None = None, normalize: bool = False, dim: int = 16) -> None:
        self.vectors = vectors or {}
        self.normalize = normalize
        self.dim = dim
        self.name = "table-embedder"
        self.calls: list[tuple[str, list[str]]] = []

    def _vec(self, text: str) -> list[float]:
        import zlib

        if text in self.vectors:
            return list(self.vectors[text])
        v = [0.0] * self.dim
        for w in text.lower().split():
            v[zlib.crc32(w.encode()) % self.dim] += 1.0
        v[0] += 0.5  # no zero vectors
        return v

    def _embed(self, texts: list[str]):  # type: ignore[no-untyped-def]
        import numpy as np

        out = np.asarray([self._vec(t) for t in texts], dtype=np.float32)
        if self.normalize:
            out = out / np.linalg.norm(out, axis=1, keepdims=True)
        return out

    def embed_queries(self, texts: list[str]):  # type: ignore[no-untyped-def]
        self.calls.append(("query", list(texts)))
        return self._embed(texts)

    def embed_documents(self, texts: list[str]):  # type: ignore[no-untyped-def]
        self.calls.append(("document", list(texts)))
        return self._embed(texts)

    def close(self) -> None:
        pass


# ---------------------------------------------------------------------------------------------- LLM oracles
_PASSAGE_LINE = re.compile(r"^(?:user: )?\[([A-Za-z0-9]+)\] (.*)$", re.MULTILINE)
_SHOWN_SCORE = re.compile(r"\(BM25 score: (-?[0-9.]+)\)$")


def shown_scores(prompt: str) -> list[tuple[str, float]]:
    """(label, score shown after the passage) for every passage line of a listwise prompt (-1e9 when absent)."""
    out = []
    for label, text in _PASSAGE_LINE.findall(prompt):
        m = _SHOWN_SCORE.search(text)
        out.append((label, float(m.group(1)) if m else -1e9))
    assert out, f"no passages in prompt:\n{prompt}"
    return out


def by_shown_score(prompt: str) -> list[str]:
    items = shown_scores(prompt)
    order = sorted(range(len(items)), key=lambda i: -items[i][1])
    return [items[i][0] for i in order]


def score_reading_llm():  # type: ignore[no-untyped-def]
    """A ScriptedLLM that ranks a listwise window by the scores written in the prompt (generate and FIRST)."""
    from rerank_plugins.testing.fake_llm import ScriptedLLM

    def answer(prompt: str) -> str:
        text = " > ".join(f"[{label}]" for label in by_shown_score(prompt))
        return text[1:] if prompt.endswith("[") else text

    def logprobs(prompt: str, labels: list[str]) -> list[float]:
        ranked = by_shown_score(prompt)
        return [-1.0 - ranked.index(lab) if lab in ranked else -math.inf for lab in labels]

    return ScriptedLLM(answer, logprobs=logprobs)


_PRP_QUERY = re.compile(r'Given a query "(.*)", which')
_PRP_PASSAGE = re.compile(r'Passage ([AB]): "(.*)"')
_JUDGE_QUERY = re.compile(r"^(?:user: )?Query: (.*)$", re.MULTILINE)
_JUDGE_PASSAGE = re.compile(r"\[Passage ([AB])\]\n(.*)")


def _words(text: str) -> set[str]:
    return set(re.findall(r"\w+", text.casefold()))


def pairwise_llm(bias: float = 0.0, relevance=None):  # type: ignore[no-untyped-def]
    """A ScriptedLLM judge for pairwise prompts (prp or pairwise-judge): P(A) = sigmoid(rel(A) - rel(B) + bias),
    rel = shared words with the query (or ``relevance(text)``); ``bias`` > 0 favours the first shown passage."""
    from rerank_plugins.testing.fake_llm import ScriptedLLM

    def logprobs(prompt: str, labels: list[str]) -> list[float]:
        m = _PRP_QUERY.search(prompt) or _JUDGE_QUERY.search(prompt)
        assert m, f"no query in prompt:\n{prompt}"
        query = m.group(1)
        found = dict(_PRP_PASSAGE.findall(prompt) or _JUDGE_PASSAGE.findall(prompt))
        rel = relevance or (lambda t: float(len(_words(query) & _words(t))))
        z = rel(found["A"]) - rel(found["B"]) + bias
        p_a = 1.0 / (1.0 + math.exp(-z))
        table = {" A": math.log(p_a), " B": math.log(1.0 - p_a)}
        return [table.get(lab, -math.inf) for lab in labels]

    return ScriptedLLM(logprobs=logprobs)
