"""FusionReranker: hand-computed fusion of toy rerankers, first-stage runs, batch/async parity, conformance."""

from __future__ import annotations

import pytest
from methods_toys import LengthReranker, OverlapReranker, TableReranker

from rerank_plugins import Candidate, ConfigError, InvalidInputError
from rerank_plugins.rankers.fusion import FusionReranker
from rerank_plugins.testing import RerankerConformance

CANDS = [Candidate(id=i, text=f"text {i}", score=s) for i, s in (("a", 0.1), ("b", 0.3), ("c", 0.2))]
RUN_A = {"a": 3.0, "b": 2.0, "c": 1.0}
RUN_B = {"c": 0.9, "a": 0.5, "b": 0.0}


def scores(result) -> dict[str, float]:  # type: ignore[no-untyped-def]
    return {r.id: r.score for r in result.results}


def test_rrf_of_two_rerankers_hand_computed() -> None:
    fusion = FusionReranker([TableReranker(RUN_A, "A"), TableReranker(RUN_B, "B")], "rrf", k=60)
    out = fusion.rerank("q", CANDS)
    # a: 1/61 + 1/62, b: 1/62 + 1/63, c: 1/63 + 1/61
    assert scores(out) == pytest.approx({"a": 1 / 61 + 1 / 62, "b": 1 / 62 + 1 / 63, "c": 1 / 63 + 1 / 61})
    assert out.ids == ["a", "c", "b"]
    assert out.details["runs"] == ("A", "B")
    a = next(r for r in out.results if r.id == "a")
    assert [(e["run"], e["rank"], e["score"]) for e in a.details["fusion"]] == [("A", 1, 3.0), ("B", 2, 0.5)]


def test_first_stage_score_run_and_weights() -> None:
    # first stage order by Candidate.score: b (0.3), c (0.2), a (0.1)
    fusion = FusionReranker([TableReranker(RUN_A, "A")], "borda", include_first_stage=True, weights=[1.0, 2.0])
    out = fusion.rerank("q", CANDS)
    # A: a 3, b 2, c 1 ; first stage x2: b 6, c 4, a 2
    assert scores(out) == {"a": 5.0, "b": 8.0, "c": 5.0}
    assert out.ids == ["b", "a", "c"]  # a and c tie: input order


def test_first_stage_only_candidates_without_score_are_absent() -> None:
    cands = [Candidate(id="x", text="x"), Candidate(id="y", text="y", score=2.0)]
    cands.append(Candidate(id="z", text="z", score=1.0))
    fusion = FusionReranker([], "rrf", k=0, include_first_stage="score")
    assert scores(fusion.rerank("q", cands)) == pytest.approx({"x": 0.0, "y": 1.0, "z": 0.5})
    with pytest.raises(InvalidInputError, match="no candidate has a first-stage score"):
        fusion.rerank("q", [Candidate(id="x", text="x")])


def test_first_stage_order_run() -> None:
    fusion = FusionReranker([TableReranker(RUN_B, "B")], "combsum", include_first_stage="order")
    out = fusion.rerank("q", CANDS)
    # B minmax: c 1, a 5/9, b 0 ; order run (1, 2/3, 1/3) minmax: a 1, b .5, c 0
    assert scores(out) == pytest.approx({"a": 5 / 9 + 1, "b": 0.5, "c": 1.0})


def test_combmnz_equals_combsum_times_runs_over_one_list() -> None:
    rr = [TableReranker(RUN_A, "A"), TableReranker(RUN_B, "B")]
    s = scores(FusionReranker(rr, "combsum", normalization="zscore").rerank("q", CANDS))
    m = scores(FusionReranker(rr, "combmnz", normalization="zscore").rerank("q", CANDS))
    assert m == pytest.approx({d: 2 * v for d, v in s.items()})


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="at least one reranker"):
        FusionReranker([])
    with pytest.raises(ConfigError, match="unknown fusion method"):
        FusionReranker([LengthReranker()], "mean")
    with pytest.raises(ConfigError, match="weights"):
        FusionReranker([LengthReranker()], weights=[1.0, 1.0])
    with pytest.raises(ConfigError, match="include_first_stage"):
        FusionReranker([LengthReranker()], include_first_stage="bm25")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="k must be"):
        FusionReranker([LengthReranker()], k=-5)
    with pytest.raises(ConfigError, match="list of rerankers"):
        FusionReranker(LengthReranker())  # type: ignore[arg-type]


def test_batch_and_async_match_single() -> None:
    import asyncio

    fusion = FusionReranker([OverlapReranker(), LengthReranker()], "rrf", include_first_stage=True)
    queries = ["text a", "b c"]
    single = [fusion.rerank(q, CANDS) for q in queries]
    batch = fusion.rerank_batch(queries, [CANDS, CANDS])
    asyn = asyncio.run(fusion.arerank_batch(queries, [CANDS, CANDS]))
    one_async = asyncio.run(fusion.arerank(queries[0], CANDS))
    for s, b, a in zip(single, batch, asyn):
        assert s.ids == b.ids == a.ids and s.scores == b.scores == a.scores
    assert one_async.scores == single[0].scores


class TestFusionRRFConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> FusionReranker:
        return FusionReranker([OverlapReranker(), LengthReranker()], "rrf", include_first_stage="order")


class TestFusionCombMNZConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> FusionReranker:
        return FusionReranker([OverlapReranker(), LengthReranker()], "combmnz", normalization="zscore")
