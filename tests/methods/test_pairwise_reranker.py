"""Pairwise LLM judges (PRP / judge prompts) with a scripted judge: both orders, aggregation, top-k sorting."""

from __future__ import annotations

import math
from typing import Any

import pytest
from methods_toys import pairwise_llm

from rerank_plugins import Candidate, ConfigError
from rerank_plugins.rankers.pairwise import PairwiseReranker, RatingJudgeReranker
from rerank_plugins.testing import RerankerConformance
from rerank_plugins.testing.fake_llm import ScriptedLLM

QUERY = "supersonic shock wave drag"
TEXTS = ["pasta recipe", "shock wave", "supersonic shock wave drag", "drag"]
CANDS = [Candidate(id=f"d{i}", text=t) for i, t in enumerate(TEXTS)]  # relevance 0, 2, 4, 1


def sigmoid(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-z))


def test_allpairs_borda_hand_computed_and_call_accounting() -> None:
    llm = pairwise_llm()
    out = PairwiseReranker(llm).rerank(QUERY, CANDS[:3])
    # relevance 0, 2, 4: P(i > j) = sigmoid(rel_i - rel_j) in both orders (no bias)
    p01, p02, p12 = sigmoid(-2), sigmoid(-4), sigmoid(-2)
    expected = {"d0": (p01 + p02) / 2, "d1": (1 - p01 + p12) / 2, "d2": (1 - p02 + 1 - p12) / 2}
    assert {r.id: r.score for r in out} == pytest.approx(expected)
    assert out.ids == ["d2", "d1", "d0"]
    assert out.details["comparisons"] == 3 and out.details["prompts"] == 6
    assert len(llm.logprob_calls) == 1 and not llm.generate_calls  # one batched call, no generation
    assert llm.forward_passes == 6
    assert all(c.prompts[0].assistant_prefix == "Passage" for c in llm.logprob_calls)


def test_both_orders_cancel_position_bias() -> None:
    biased = PairwiseReranker(pairwise_llm(bias=3.0), both_orders=False).rerank(QUERY, CANDS)
    fair = PairwiseReranker(pairwise_llm(bias=3.0)).rerank(QUERY, CANDS)
    assert fair.ids == ["d2", "d1", "d3", "d0"]
    assert biased.ids != fair.ids  # one order only: the first-shown passage wins too often
    # with a pure position bias and equal passages, both orders give exactly 0.5
    same = [Candidate(id=f"s{i}", text="shock wave") for i in range(3)]
    tied = PairwiseReranker(pairwise_llm(bias=2.0), aggregation="copeland").rerank(QUERY, same)
    assert tied.scores == [0.0, 0.0, 0.0] and tied.ids == ["s0", "s1", "s2"]


def test_copeland_counts_wins() -> None:
    out = PairwiseReranker(pairwise_llm(), aggregation="copeland").rerank(QUERY, CANDS)
    # relevance 0, 2, 4, 1: wins - losses = -3, +1, +3, -1 over n - 1 = 3
    assert {r.id: r.score for r in out} == pytest.approx({"d0": -1.0, "d1": 1 / 3, "d2": 1.0, "d3": -1 / 3})


@pytest.mark.parametrize("method", ["sliding", "heap"])
def test_sorting_methods_settle_the_top_k_with_fewer_comparisons(method: str) -> None:
    cands = [Candidate(id=f"d{i}", text=" ".join(["shock"] * 0 + QUERY.split()[: i % 5])) for i in range(12)]
    llm = pairwise_llm(bias=1.0)
    out = PairwiseReranker(llm, method=method, top_k_settle=2).rerank(QUERY, cands)
    rel = [i % 5 for i in range(12)]
    best = sorted(range(12), key=lambda i: -rel[i])
    assert {out.ids[0], out.ids[1]} <= {f"d{i}" for i in best[:3]}  # ties among relevance-4 passages
    assert rel[int(out.ids[0][1:])] == 4 and rel[int(out.ids[1][1:])] == 4
    assert out.details["comparisons"] < 66 and out.details["settled"] == 2
    assert out.scores == pytest.approx([(12 - r) / 12 for r in range(12)])


def test_lockstep_batches_queries_together() -> None:
    llm = pairwise_llm()
    ranker = PairwiseReranker(llm, method="sliding", top_k_settle=1, batch_size=64)
    outs = ranker.rerank_batch([QUERY, "pasta"], [CANDS, CANDS[:2]])
    assert outs[0].ids[0] == "d2" and outs[1].ids[0] == "d0"
    # sliding k=1: 3 steps for 4 candidates; both queries share the first step's call
    assert len(llm.logprob_calls) == 3
    assert len(llm.logprob_calls[0].prompts) == 4


def test_judge_prompt_and_custom_labels() -> None:
    out = PairwiseReranker(pairwise_llm(), prompt="pairwise-judge").rerank(QUERY, CANDS)
    assert out.ids[0] == "d2" and out.details["prompt"] == "pairwise-judge@1"
    with pytest.raises(ConfigError, match="single-token"):
        PairwiseReranker(ScriptedLLM(single_tokens=set()), labels={"yes": ["A"], "no": ["B"]})


def test_configuration_errors() -> None:
    llm = pairwise_llm()
    bad: list[tuple[dict[str, Any], str]] = [
        ({"method": "quick"}, "method"),
        ({"aggregation": "kemeny"}, "aggregation"),
        ({"prompt": "yes-no"}, "pairwise"),
        ({"top_k_settle": 0}, "top_k_settle"),
    ]
    for options, match in bad:
        with pytest.raises(ConfigError, match=match):
            PairwiseReranker(llm, **options)


def test_rating_judge_reuses_the_graded_scores() -> None:
    def graded(prompt: str, labels: list[str]) -> list[float]:
        assert "Rate how well the passage answers the query" in prompt
        grade = 8 if "shock" in prompt.split("Passage:")[1] else 1
        return [0.0 if lab == str(grade) else -math.inf for lab in labels]

    judge = RatingJudgeReranker(ScriptedLLM(logprobs=graded))
    out = judge.rerank(QUERY, CANDS[:2])
    assert out.ids == ["d1", "d0"] and out.scores == pytest.approx([0.8, 0.1])
    assert out.details["prompt"] == "judge-rating@1" and judge.name.startswith("rating-judge:")


def _rating_by_overlap(prompt: str, labels: list[str]) -> list[float]:
    """A judge rating 0..10 by the words the passage shares with the query (ties stay exact)."""
    query = prompt.split("Query: ")[1].split("\n")[0]
    passage = prompt.split("Passage: ")[1].split("\n\nRating")[0]
    grade = len(set(query.lower().split()) & set(passage.lower().split()))
    return [-abs(int(label) - min(grade, 10)) for label in labels]


class TestRatingJudgeConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> RatingJudgeReranker:
        return RatingJudgeReranker(ScriptedLLM(logprobs=_rating_by_overlap))


class TestPairwiseAllPairsConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> PairwiseReranker:
        return PairwiseReranker(pairwise_llm(bias=1.0))


class TestPairwiseHeapConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> PairwiseReranker:
        return PairwiseReranker(pairwise_llm(bias=1.0), method="heap", top_k_settle=3)


class TestPairwiseSlidingConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> PairwiseReranker:
        return PairwiseReranker(pairwise_llm(bias=1.0), method="sliding", top_k_settle=2)
