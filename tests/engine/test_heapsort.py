"""The setwise heapsort schedule against ielab's own heapsort (llm-rankers 0.0.2, llmrankers/setwise.py), driven by
a scripted model that names the truly best passage of every group."""

from __future__ import annotations

import random

import pytest

from rerank_plugins.engine.windows import HeapsortSchedule
from rerank_plugins.errors import ConfigError


def _ours(relevance: list[float], num_child: int, k: int, answer=None) -> tuple[list[int], int]:
    sched = HeapsortSchedule(len(relevance), num_child=num_child, k=k)
    while (group := sched.next_group()) is not None:
        best = answer(group) if answer else max(range(len(group)), key=lambda j: relevance[group[j]])
        sched.feed(best)
    return sched.order(), sched.calls


def _reference(relevance: list[float], num_child: int, k: int) -> tuple[list[int], int]:
    setwise = pytest.importorskip("llmrankers.setwise")
    rankers = pytest.importorskip("llmrankers.rankers")

    class Scripted(setwise.SetwiseLlmRanker):
        def __init__(self) -> None:  # no model: compare() is the scripted model
            self.num_child, self.k, self.method, self.num_permutation = num_child, k, "heapsort", 1

        def compare(self, query, docs):
            self.total_compare += 1
            best = max(range(len(docs)), key=lambda j: relevance[int(docs[j].docid)])
            return self.CHARACTERS[best]

    ranker = Scripted()
    ranking = [rankers.SearchResult(docid=str(i), score=0.0, text=f"p{i}") for i in range(len(relevance))]
    out = ranker.rerank("q", ranking)
    return [int(r.docid) for r in out], ranker.total_compare


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_top10_of_100_equals_the_reference_with_its_call_count(seed: int) -> None:
    rng = random.Random(seed)
    relevance = [rng.random() for _ in range(100)]
    ours, calls = _ours(relevance, 19, 10)
    ref, ref_calls = _reference(relevance, 19, 10)
    truth = sorted(range(100), key=lambda i: -relevance[i])[:10]
    assert ours[:10] == truth == ref[:10]
    assert ours == ref  # the rest in input order, as the reference returns it
    assert calls == ref_calls and abs(calls - 23) <= 1


@pytest.mark.parametrize(("n", "num_child", "k"), [(20, 3, 10), (7, 2, 10), (50, 4, 5), (1, 3, 1), (2, 19, 1)])
def test_other_shapes_match_the_reference(n: int, num_child: int, k: int) -> None:
    rng = random.Random(n)
    relevance = [rng.random() for _ in range(n)]
    assert _ours(relevance, num_child, k) == _reference(relevance, num_child, k)


def test_an_answer_outside_the_group_keeps_the_node_and_range_is_respected() -> None:
    sched = HeapsortSchedule(30, num_child=3, k=2, rank_start=5, rank_end=25)
    seen = []
    while (group := sched.next_group()) is not None:
        seen.extend(group)
        sched.feed(99)  # never a valid index: the heap never moves
    assert min(seen) >= 5 and max(seen) < 25
    order = sched.order()
    assert sorted(order) == list(range(30)) and order[:5] == list(range(5)) and order[25:] == list(range(25, 30))
    with pytest.raises(ValueError):
        sched.feed(0)
    with pytest.raises(ConfigError):
        HeapsortSchedule(10, num_child=0)
