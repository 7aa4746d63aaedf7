"""CascadeReranker: heads, tails, tiered scores, fallbacks, conformance."""

from __future__ import annotations

import pytest
from methods_toys import LengthReranker, OverlapReranker, TableReranker

from rerank_plugins import Candidate, ConfigError
from rerank_plugins.rankers.cascade import CascadeReranker
from rerank_plugins.testing import RerankerConformance

CANDS = [Candidate(id=f"d{i}", text=f"doc {i}") for i in range(6)]


def test_two_stage_cascade_hand_computed() -> None:
    cheap = TableReranker({"d0": 0.1, "d1": 0.9, "d2": 0.5, "d3": 0.7, "d4": 1.0, "d5": 2.0}, "cheap")
    expensive = TableReranker({"d1": 3.0, "d3": 8.0, "d2": 5.0}, "expensive")
    cascade = CascadeReranker([(cheap, 4), (expensive, 2)])
    out = cascade.rerank("q", CANDS)
    # cheap sees d0..d3 -> d1 .9, d3 .7, d2 .5, d0 .1 ; expensive sees d1, d3 -> d3 8, d1 3
    assert cheap.seen == [["d0", "d1", "d2", "d3"]]
    assert expensive.seen == [["d1", "d3"]]
    assert out.ids == ["d3", "d1", "d2", "d0", "d4", "d5"]
    # tier 2 keeps its scores; tier 1 (d2 .5, d0 .1) shifted so that .5 -> 3 - 1 = 2, d0 -> 1.6;
    # tier 0 (d4 -4, d5 -5) shifted so that -4 -> 1.6 - 1 = 0.6, d5 -> -0.4
    assert out.scores == pytest.approx([8.0, 3.0, 2.0, 1.6, 0.6, -0.4])
    assert [r.details["cascade"]["tier"] for r in out.results] == [2, 2, 1, 1, 0, 0]
    assert out.results[2].details["cascade"]["raw_score"] == 0.5
    assert out.details["scores"] == "tiered"


def test_depth_larger_than_list_and_none() -> None:
    r = TableReranker({"d5": 1.0}, "t")
    out = CascadeReranker([(r, 100)]).rerank("q", CANDS)
    assert out.ids[0] == "d5" and sorted(out.ids) == sorted(c.id for c in CANDS)
    assert CascadeReranker([r]).rerank("q", CANDS).ids == out.ids


def test_infinite_scores_fall_back_to_rank_scores() -> None:
    r = TableReranker({"d0": float("-inf"), "d1": 1.0}, "t")
    out = CascadeReranker([(r, 2)]).rerank("q", CANDS)
    assert out.ids == ["d1", "d0", "d2", "d3", "d4", "d5"]
    assert out.scores == pytest.approx([1.0, 5 / 6, 4 / 6, 3 / 6, 2 / 6, 1 / 6])
    assert out.details["scores"] == "rank"


def test_tail_strictly_below_head_for_every_list() -> None:
    cascade = CascadeReranker([(OverlapReranker(), 4), (LengthReranker(), 2)])
    cands = [Candidate(id=str(i), text=t) for i, t in enumerate(["a b", "a", "b c d", "a b c", "zz", "a a a"])]
    out = cascade.rerank("a b c", cands)
    tiers = [r.details["cascade"]["tier"] for r in out.results]
    assert tiers == sorted(tiers, reverse=True)
    for upper, lower in zip(out.results, out.results[1:]):
        if upper.details["cascade"]["tier"] != lower.details["cascade"]["tier"]:
            assert lower.score <= upper.score - 1.0


def test_batch_matches_single() -> None:
    cascade = CascadeReranker([(OverlapReranker(), 3), (LengthReranker(), 2)])
    cands = [Candidate(id=str(i), text=t) for i, t in enumerate(["a b", "a", "b c d", "a b c", "zz"])]
    queries = ["a b", "c d"]
    batch = cascade.rerank_batch(queries, [cands, cands])
    for q, b in zip(queries, batch):
        single = cascade.rerank(q, cands)
        assert single.ids == b.ids and single.scores == b.scores


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="non-empty"):
        CascadeReranker([])
    with pytest.raises(ConfigError, match="depth"):
        CascadeReranker([(LengthReranker(), 0)])
    with pytest.raises(ConfigError, match=r"\(reranker, depth\)"):
        CascadeReranker([(LengthReranker(), 3, 1)])
    with pytest.raises(ConfigError, match="must be a Reranker"):
        CascadeReranker([(42, 3)])


class TestCascadeConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> CascadeReranker:
        return CascadeReranker([(OverlapReranker(), 4), (LengthReranker(), 2)])
