"""Rank-R1's setwise heapsort, best-only answers, ReasonRank's partial answers and kept reasoning, on scripted
models (no model weights)."""

from __future__ import annotations

import random
import re
import warnings

import pytest

from rerank_plugins import Candidate
from rerank_plugins.backends.base import Generation
from rerank_plugins.errors import ConfigError, ModelOutputError
from rerank_plugins.rankers.reasoning import ReasoningReranker
from rerank_plugins.testing.fake_llm import ScriptedLLM

_LINE = re.compile(r"^\[(\d+)\] passage (\d+) ", re.MULTILINE)


def _best_namer(relevance: list[float]):
    def answer(prompt: str) -> str:
        shown = [(label, int(doc)) for label, doc in _LINE.findall(prompt)]
        label = max(shown, key=lambda item: relevance[item[1]])[0]
        return f"<think> passage {label} looks best </think>\n<answer>[{label}]</answer>"

    return answer


def _docs(n: int) -> list[Candidate]:
    return [Candidate(id=f"d{i}", text=f"passage {i} text") for i in range(n)]


def _reference_top10(relevance: list[float], num_child: int = 19, k: int = 10, valid: bool = True):
    setwise = pytest.importorskip("llmrankers.setwise")
    rankers = pytest.importorskip("llmrankers.rankers")

    class Scripted(setwise.SetwiseLlmRanker):  # llm-rankers 0.0.2 heapsort, compare() scripted
        def __init__(self) -> None:
            self.num_child, self.k, self.method, self.num_permutation = num_child, k, "heapsort", 1

        def compare(self, query, docs):
            self.total_compare += 1
            if not valid:
                return "Unexpected voting."
            return self.CHARACTERS[max(range(len(docs)), key=lambda j: relevance[int(docs[j].docid)])]

    ranker = Scripted()
    out = ranker.rerank("q", [rankers.SearchResult(docid=str(i), score=0.0, text="") for i in range(len(relevance))])
    return [int(r.docid) for r in out], ranker.total_compare


@pytest.mark.parametrize("shuffle", [False, True])
def test_rank_r1_heapsort_top10_of_100_equals_the_reference_with_its_call_count(shuffle: bool) -> None:
    rng = random.Random(7)
    relevance = [rng.random() for _ in range(100)]
    llm = ScriptedLLM(_best_namer(relevance))
    ranker = ReasoningReranker(
        llm, prompt="rank-r1", schedule="heapsort", window_size=20, top_k_settle=10, shuffle_groups=shuffle, seed=929,
        max_passage_words=None,
    )
    result = ranker.rerank("query", _docs(100))
    ours = [int(r.id[1:]) for r in result]
    ref, ref_calls = _reference_top10(relevance)
    truth = sorted(range(100), key=lambda i: -relevance[i])[:10]
    assert ours[:10] == ref[:10] == truth
    assert ours == ref  # the other 90 in input order, as the reference returns them
    calls = sum(len(c.prompts) for c in llm.generate_calls)
    assert calls == result.details["calls"] == ref_calls and abs(calls - 23) <= 1
    assert result.details["schedule"] == "heapsort" and result.details["settled"] == 10
    assert all(t.reasoning for t in result.traces)


def test_sliding_windows_stay_available_for_rank_r1_with_a_warning() -> None:
    relevance = [random.Random(3).random() for _ in range(100)]
    with pytest.warns(UserWarning, match="settles only the top 1"):
        ranker = ReasoningReranker(ScriptedLLM(_best_namer(relevance)), prompt="rank-r1", max_passage_words=None)
    result = ranker.rerank("query", _docs(100))
    assert result.details["settled"] == 1 and result.details["schedule"] == "sliding"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ReasoningReranker(ScriptedLLM(lambda _: "x"), prompt="rank-r1", top_k_settle=10)


def test_a_best_only_answer_naming_two_ids_moves_only_the_first() -> None:
    """A best-only prompt read leniently (no reference pattern) counts the extra ids; Rank-R1's own prompt, read
    with llm-rankers' pattern, refuses the answer (issue 21.13; tests/recipes/test_listwise_recipes.py)."""
    import dataclasses

    from rerank_plugins.prompts import get_prompt

    r1 = get_prompt("rank-r1")
    assert r1.reasoning is not None and r1.reasoning.pattern is not None
    lenient = dataclasses.replace(r1, reasoning=dataclasses.replace(r1.reasoning, pattern=None, exact_label=False))
    llm = ScriptedLLM(lambda _: "<think> both </think> <answer>[3] > [2]</answer>")
    ranker = ReasoningReranker(llm, prompt=lenient, window_size=4, stride=2, top_k_settle=1)
    result = ranker.rerank("q", _docs(4))
    assert [r.id for r in result] == ["d2", "d0", "d1", "d3"]
    assert result.traces[0].repairs["extra_ids"] == 1
    strict = ReasoningReranker(llm, prompt="rank-r1", window_size=4, stride=2, top_k_settle=1)
    with pytest.raises(ModelOutputError, match="not exactly one of the labels"):
        strict.rerank("q", _docs(4))


def test_heapsort_options_are_checked() -> None:
    with pytest.raises(ConfigError, match="best-only"):
        ReasoningReranker(ScriptedLLM(lambda _: "x"), prompt="reasonrank", schedule="heapsort")
    with pytest.raises(ConfigError, match="no passes"):
        ReasoningReranker(ScriptedLLM(lambda _: "x"), prompt="rank-r1", schedule="heapsort", num_passes=2)
    with pytest.raises(ConfigError, match="schedule"):
        ReasoningReranker(ScriptedLLM(lambda _: "x"), prompt="rank-r1", schedule="bubble")


def test_heapsort_keeps_the_node_on_an_unusable_answer_with_fallback_keep() -> None:
    ranker = ReasoningReranker(
        ScriptedLLM(lambda _: "<think> hmm"), prompt="rank-r1", schedule="heapsort", window_size=4, top_k_settle=2,
        fallback="keep",
    )
    result = ranker.rerank("q", _docs(9))
    # the heap never moves, but the selection still swaps the root out, exactly as the reference does
    ref, ref_calls = _reference_top10([0.0] * 9, num_child=3, k=2, valid=False)
    assert [int(r.id[1:]) for r in result] == ref and len(result.traces) == ref_calls
    assert all(t.failed for t in result.traces)
    with pytest.raises(ModelOutputError, match="heapsort group"):
        ReasoningReranker(ScriptedLLM(lambda _: "<think> hmm"), prompt="rank-r1", schedule="heapsort").rerank(
            "q", _docs(5)
        )


CUT = Generation("<think> 3 beats 1 </think> <answer>[3] > [1] > [", "length")


def test_partial_keeps_the_valid_prefix_and_appends_the_rest_in_input_order() -> None:
    ranker = ReasoningReranker(ScriptedLLM([CUT]), window_size=5, fallback="partial")
    result = ranker.rerank("q", _docs(5))
    assert [r.id for r in result] == ["d2", "d0", "d1", "d3", "d4"]
    (trace,) = result.traces
    assert not trace.failed and trace.repairs["partial"] == 1 and trace.reasoning == "3 beats 1"
    assert result.details["repairs"]["partial"] == 1
    # the default stays an explicit failure
    with pytest.raises(ModelOutputError, match="not closed"):
        ReasoningReranker(ScriptedLLM([CUT]), window_size=5).rerank("q", _docs(5))
    # without a closed reasoning and an <answer> there is nothing to keep: the window keeps its input order and
    # is recorded as failed, as with "keep" (no digits are scraped from the reasoning)
    failed = ReasoningReranker(ScriptedLLM([Generation("<think> [3] > [1]", "length")]), window_size=5,
                               fallback="partial").rerank("q", _docs(5))
    assert [r.id for r in failed] == [f"d{i}" for i in range(5)] and failed.traces[0].failed
    with pytest.raises(ConfigError, match="fallback"):
        from rerank_plugins.rankers.listwise import ListwiseReranker

        ListwiseReranker(ScriptedLLM(lambda _: "x"), fallback="partial")


def test_a_failed_window_keeps_its_well_formed_reasoning() -> None:
    llm = ScriptedLLM(["<think> careful thought </think> <answer> none of them </answer>"])
    result = ReasoningReranker(llm, window_size=5, fallback="keep").rerank("q", _docs(5))
    (trace,) = result.traces
    assert trace.failed and trace.reasoning == "careful thought"
    assert [r.id for r in result] == [f"d{i}" for i in range(5)]
    assert all(r.reasoning is None for r in result)  # documents only get reasoning from a parsed window
