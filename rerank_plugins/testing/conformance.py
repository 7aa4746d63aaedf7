"""The shared conformance suite (needs pytest).

Subclass :class:`RerankerConformance` in a test module and provide a ``reranker`` fixture returning an object
with the core contract ``rerank(query, candidates, top_k=None, score_threshold=None) -> RankedList``. Adapters
test themselves by wrapping their host API in such an object (converting candidates to the host's documents and
back), so the same checks run on the bare engine and through every framework.

Class attributes tune the suite to a strategy:

* ``ties_are_exact``: identical texts get identical scores (true for pointwise models; listwise models order
  identical passages by position, which is also stable, so leave it true unless the model is stochastic);
* ``checks_duplicates``: duplicate candidate ids are rejected with :class:`~rerank_plugins.errors.InvalidInputError`.
"""

from __future__ import annotations

import copy
from typing import Any

import pytest

from ..errors import InvalidInputError
from ..types import Candidate

__all__ = ["RerankerConformance", "sample_candidates"]

_TEXTS = [
    "The boundary layer thickens downstream of the leading edge of a flat plate.",
    "Shock waves form when an aircraft exceeds the speed of sound.",
    "Heat transfer in laminar flow over a heated wall depends on the Prandtl number.",
    "Cooking pasta requires boiling salted water for about ten minutes.",
    "Wing flutter is an aeroelastic instability coupling bending and torsion.",
    "The stock market closed higher on Friday after a volatile week.",
]
_QUERY = "What causes shock waves around supersonic aircraft?"


def sample_candidates(n: int = len(_TEXTS)) -> list[Candidate]:
    return [
        Candidate(
            id=f"d{i}", text=_TEXTS[i % len(_TEXTS)], metadata={"source": "conformance", "i": i}, score=float(n - i)
        )
        for i in range(n)
    ]


class RerankerConformance:
    """Mixin of conformance tests; see the module docstring."""

    ties_are_exact = True
    checks_duplicates = True

    @pytest.fixture
    def reranker(self) -> Any:  # pragma: no cover - overridden
        raise TypeError(f"{type(self).__name__} must define a 'reranker' fixture")

    # ------------------------------------------------------------------ helpers
    @staticmethod
    def _ids(result: Any) -> list[str]:
        return [r.id for r in result.results]

    # ------------------------------------------------------------------ tests
    def test_empty_list(self, reranker: Any) -> None:
        result = reranker.rerank(_QUERY, [])
        assert list(result.results) == []

    def test_one_document(self, reranker: Any) -> None:
        result = reranker.rerank(_QUERY, sample_candidates(1))
        assert self._ids(result) == ["d0"]
        assert result.results[0].rank == 1
        assert type(result.results[0].score) is float

    def test_every_input_returned_exactly_once(self, reranker: Any) -> None:
        cands = sample_candidates()
        result = reranker.rerank(_QUERY, cands)
        assert sorted(self._ids(result)) == sorted(c.id for c in cands)
        assert [r.rank for r in result.results] == list(range(1, len(cands) + 1))
        scores = [r.score for r in result.results]
        assert all(type(s) is float for s in scores)
        assert scores == sorted(scores, reverse=True)
        assert sorted(r.original_position for r in result.results) == list(range(len(cands)))

    def test_duplicate_ids_rejected(self, reranker: Any) -> None:
        if not self.checks_duplicates:
            pytest.skip("this reranker does not check duplicate ids")
        cands = [Candidate(id="same", text="a"), Candidate(id="same", text="b")]
        with pytest.raises(InvalidInputError, match="duplicate"):
            reranker.rerank(_QUERY, cands)

    def test_unicode(self, reranker: Any) -> None:
        cands = [
            Candidate(id="ja", text="超音速航空機の衝撃波はなぜ発生するのか"),
            Candidate(id="emoji", text="Shock waves 🚀✈️ — «supersonic» flight, naïve café ß"),
            Candidate(id="ar", text="موجات الصدمة حول الطائرات الأسرع من الصوت"),
        ]
        result = reranker.rerank("Stoßwellen 超音速 🚀?", cands)
        assert sorted(self._ids(result)) == ["ar", "emoji", "ja"]
        assert {r.id: r.text for r in result.results} == {c.id: c.text for c in cands}

    def test_very_long_document(self, reranker: Any) -> None:
        long_text = ("Supersonic flow produces shock waves and expansion fans. " * 200)[:10_000]
        assert len(long_text) == 10_000
        cands = [*sample_candidates(3), Candidate(id="long", text=long_text)]
        result = reranker.rerank(_QUERY, cands)
        assert sorted(self._ids(result)) == sorted(c.id for c in cands)
        assert next(r for r in result.results if r.id == "long").text == long_text

    def test_top_k_zero(self, reranker: Any) -> None:
        assert list(reranker.rerank(_QUERY, sample_candidates(), top_k=0).results) == []

    def test_top_k_larger_than_list(self, reranker: Any) -> None:
        cands = sample_candidates(4)
        assert len(reranker.rerank(_QUERY, cands, top_k=100).results) == 4

    def test_top_k_keeps_best(self, reranker: Any) -> None:
        cands = sample_candidates()
        full = reranker.rerank(_QUERY, cands)
        top = reranker.rerank(_QUERY, cands, top_k=2)
        assert self._ids(top) == self._ids(full)[:2]

    def test_score_threshold(self, reranker: Any) -> None:
        cands = sample_candidates()
        full = reranker.rerank(_QUERY, cands)
        scores = sorted(r.score for r in full.results)
        threshold = scores[len(scores) // 2]
        kept = reranker.rerank(_QUERY, cands, score_threshold=threshold)
        assert self._ids(kept) == [r.id for r in full.results if r.score >= threshold]
        assert all(r.score >= threshold for r in kept.results)

    def test_threshold_zero_is_a_value(self, reranker: Any) -> None:
        cands = sample_candidates()
        full = reranker.rerank(_QUERY, cands)
        kept = reranker.rerank(_QUERY, cands, score_threshold=0.0)
        assert self._ids(kept) == [r.id for r in full.results if r.score >= 0.0]

    def test_metadata_kept(self, reranker: Any) -> None:
        cands = sample_candidates()
        result = reranker.rerank(_QUERY, cands)
        by_id = {c.id: c for c in cands}
        for r in result.results:
            assert dict(r.metadata) == dict(by_id[r.id].metadata)

    def test_inputs_not_mutated(self, reranker: Any) -> None:
        cands = sample_candidates()
        before = copy.deepcopy([(c.id, c.text, dict(c.metadata), c.score) for c in cands])
        reranker.rerank(_QUERY, cands, top_k=2)
        after = [(c.id, c.text, dict(c.metadata), c.score) for c in cands]
        assert before == after

    def test_stable_order_for_equal_scores(self, reranker: Any) -> None:
        if not self.ties_are_exact:
            pytest.skip("this reranker does not give exact ties")
        text = "Shock waves around supersonic aircraft."
        cands = [Candidate(id=f"same{i}", text=text) for i in range(4)]
        result = reranker.rerank(_QUERY, cands)
        assert self._ids(result) == [c.id for c in cands]

    def test_empty_query_rejected(self, reranker: Any) -> None:
        with pytest.raises(InvalidInputError, match="empty"):
            reranker.rerank("   ", sample_candidates(2))

    def test_wrong_candidate_type_rejected(self, reranker: Any) -> None:
        with pytest.raises((InvalidInputError, TypeError, ValueError)):
            reranker.rerank(_QUERY, [object()])

    def test_negative_top_k_rejected(self, reranker: Any) -> None:
        with pytest.raises((InvalidInputError, ValueError)):
            reranker.rerank(_QUERY, sample_candidates(2), top_k=-1)

    def test_deterministic(self, reranker: Any) -> None:
        cands = sample_candidates()
        a = reranker.rerank(_QUERY, cands)
        b = reranker.rerank(_QUERY, cands)
        assert self._ids(a) == self._ids(b)
        assert [r.score for r in a.results] == pytest.approx([r.score for r in b.results], abs=1e-6)
