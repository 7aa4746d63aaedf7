from __future__ import annotations

import pytest
from llm_oracle import reasoning_answer, reasoning_llm

from rerank_plugins import Candidate, load_reranker
from rerank_plugins.errors import ConfigError, ModelOutputError
from rerank_plugins.rankers.listwise import ListwiseReranker
from rerank_plugins.rankers.reasoning import ReasoningReranker
from rerank_plugins.testing import RerankerConformance
from rerank_plugins.testing.fake_llm import ScriptedLLM

QUERY = "supersonic shock waves"


def docs(n: int) -> list[Candidate]:
    return [Candidate(id=f"d{i}", text=f"passage {i}") for i in range(n)]


class TestReasonRankConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> ReasoningReranker:
        return ReasoningReranker(reasoning_llm(), window_size=4, stride=2)


class TestRankR1Conformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> ReasoningReranker:
        # Rank-R1 names only the best passage: windows of 4 stepping by 3 bubble the best to the front
        return ReasoningReranker(reasoning_llm(), prompt="rank-r1", window_size=4, stride=3)


def test_reasoning_per_window_and_per_document() -> None:
    outputs = [
        "<think>window one: 4 beats 3</think><answer>[4] > [3] > [1] > [2]</answer>",
        "<think>window two: 3 is best</think><answer>[3] > [1] > [2] > [4]</answer>",
    ]
    result = ReasoningReranker(ScriptedLLM(outputs), window_size=4, stride=2).rerank(QUERY, docs(6))
    assert [t.reasoning for t in result.traces] == ["window one: 4 beats 3", "window two: 3 is best"]
    # window [2,6): d5 d4 d2 d3; window [0,4) = d0 d1 d5 d4 -> d5 d0 d1 d4
    assert result.ids == ["d5", "d0", "d1", "d4", "d2", "d3"]
    by_id = {r.id: r.reasoning for r in result.results}
    assert by_id["d2"] == by_id["d3"] == "window one: 4 beats 3"  # last window containing them
    assert by_id["d0"] == by_id["d5"] == by_id["d4"] == "window two: 3 is best"
    assert result.traces[0].raw_output == outputs[0]


def test_truncated_reasoning_raises_with_raw_text() -> None:
    long_thought = "<think> " + "let me compare these passages carefully " * 20
    ranker = ReasoningReranker(ScriptedLLM([long_thought]), window_size=4, max_new_tokens=30)
    with pytest.raises(ModelOutputError, match="not closed") as info:
        ranker.rerank(QUERY, docs(3))
    assert info.value.raw_text is not None and info.value.raw_text.startswith("<think> let me compare")


def test_truncated_reasoning_with_fallback_keeps_input_order_and_never_reads_the_reasoning() -> None:
    text = "<think> clearly [3] > [2] > [1], but wait, maybe passage 2 is better because"
    llm = ScriptedLLM([text])
    result = ReasoningReranker(llm, window_size=4, max_new_tokens=12, fallback="keep").rerank(QUERY, docs(3))
    assert result.ids == ["d0", "d1", "d2"]  # not [d2, d1, d0] from the reasoning
    (trace,) = result.traces
    assert trace.failed and "not closed" in (trace.error or "") and "token limit" in (trace.error or "")
    assert trace.reasoning is None and trace.raw_output is not None and trace.raw_output.startswith("<think>")
    assert all(r.reasoning is None for r in result.results)


@pytest.mark.parametrize(
    ("output", "message"),
    [
        ("<think>ok</think><answer></answer>", "empty"),
        ("<think>ok</think> [2] > [1]", "no <answer>"),
        ("<think>ok</think><answer>[2] > [1]", "not closed"),
        ("<think>ok</think><answer>both are fine</answer>", "names no passage"),
    ],
)
def test_malformed_answers(output: str, message: str) -> None:
    ranker = ReasoningReranker(ScriptedLLM([output]), window_size=4)
    with pytest.raises(ModelOutputError, match=message) as info:
        ranker.rerank(QUERY, docs(2))
    assert info.value.raw_text == output
    kept = ReasoningReranker(ScriptedLLM([output]), window_size=4, fallback="keep").rerank(QUERY, docs(2))
    assert kept.ids == ["d0", "d1"] and kept.traces[0].failed


def test_closed_answer_is_used_even_when_generation_ran_on() -> None:
    output = "<think>r</think><answer>[2] > [1]</answer> and some more words after the answer"
    result = ReasoningReranker(ScriptedLLM([output]), window_size=4, max_new_tokens=25).rerank(QUERY, docs(2))
    assert result.ids == ["d1", "d0"] and not result.traces[0].failed
    assert result.traces[0].raw_output.endswith("some more")  # cut by the token limit after </answer>


def test_rank_r1_best_only_answer() -> None:
    result = ReasoningReranker(
        ScriptedLLM(["<think>3 matches</think><answer>[3]</answer>"]), prompt="rank-r1", window_size=4
    ).rerank(QUERY, docs(4))
    assert result.ids == ["d2", "d0", "d1", "d3"]
    assert result.traces[0].repairs["missing"] == 0  # naming only the best is the format, not a repair


def test_prompts_are_checked() -> None:
    with pytest.raises(ConfigError, match="reasoning"):
        ReasoningReranker(reasoning_llm(), prompt="rankzephyr")
    with pytest.raises(ConfigError, match="generate"):
        ReasoningReranker(reasoning_llm(), mode="first")
    with pytest.raises(ConfigError, match="ReasoningReranker"):
        ListwiseReranker(reasoning_llm(), prompt="rank-r1")


def test_registry_and_default_budget() -> None:
    llm = ScriptedLLM(reasoning_answer)
    ranker = load_reranker("reasoning", model=llm, window_size=4)
    assert isinstance(ranker, ReasoningReranker) and ranker.template.key == "reasonrank@1"
    ranker.rerank("passage 1", docs(3))
    # ReasonRank's budget: run_rank_llm.sh --reasoning_maxlen 3072, SamplingParams(max_tokens=3072 + 100)
    assert llm.generate_calls[0].max_new_tokens == 3072 + 100


def test_rank_r1_top_k_settle_uses_one_position_per_pass() -> None:
    shared = [1, 2, 3, 4, 5, 9, 8, 7]  # query words in each passage: the best three are d5, d6, d7
    query = " ".join(f"q{j}" for j in range(10))
    cands = [Candidate(id=f"d{i}", text=" ".join(f"q{j}" for j in range(s))) for i, s in enumerate(shared)]
    ranker = ReasoningReranker(reasoning_llm(), prompt="rank-r1", window_size=4, stride=2, top_k_settle=3)
    result = ranker.rerank(query, cands)
    assert result.ids[:3] == ["d5", "d6", "d7"]
    assert result.details["passes"] == 3 and all(t.start >= t.pass_index for t in result.traces)
    # with the full-permutation rule (2 positions per pass) one pass would have been planned, and be wrong
    one_pass = ReasoningReranker(reasoning_llm(), prompt="rank-r1", window_size=4, stride=2, num_passes=1)
    assert one_pass.rerank(query, cands).ids[:3] != ["d5", "d6", "d7"]
    with pytest.warns(UserWarning, match="settles only the top 2"):
        ReasoningReranker(reasoning_llm(), prompt="rank-r1", window_size=4, stride=2, top_k_settle=3, num_passes=2)
