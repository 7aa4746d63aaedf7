"""Pairwise preferences, all-pairs aggregation and top-k sorting passes on hand-computed examples."""

from __future__ import annotations

import itertools

import pytest

from rerank_plugins.engine.pairwise import (
    allpairs,
    allpairs_scores,
    heap_top_k,
    pair_preference,
    run_sort,
    sliding_top_k,
)
from rerank_plugins.errors import ConfigError, ModelOutputError


def test_pair_preference_cancels_position_bias() -> None:
    assert pair_preference(0.9, 0.3) == pytest.approx((0.9 + 0.7) / 2)
    assert pair_preference(0.8, 0.8) == 0.5  # pure position bias: no preference
    assert pair_preference(0.25) == 0.25
    with pytest.raises(ModelOutputError, match="probability"):
        pair_preference(1.5, 0.2)


def test_allpairs_borda_and_copeland_hand_computed() -> None:
    assert allpairs(3) == [(0, 1), (0, 2), (1, 2)]
    prefs = {(0, 1): 0.8, (0, 2): 0.4, (1, 2): 0.5}
    # borda: 0 -> .8 + .4 = 1.2, 1 -> .2 + .5 = .7, 2 -> .6 + .5 = 1.1 ; divided by n - 1 = 2
    assert allpairs_scores(3, prefs, "borda") == pytest.approx([0.6, 0.35, 0.55])
    # copeland: 0 beats 1, loses to 2; 1 and 2 tie -> 0: 0, 1: -1, 2: +1 ; / 2
    assert allpairs_scores(3, prefs, "copeland") == pytest.approx([0.0, -0.5, 0.5])
    assert allpairs_scores(1, {}, "borda") == [0.5]
    with pytest.raises(ValueError, match="missing"):
        allpairs_scores(3, {(0, 1): 0.5}, "borda")
    with pytest.raises(ConfigError, match="aggregation"):
        allpairs_scores(2, {(0, 1): 0.5}, "kemeny")


def true_order_compare(values: list[float], log: list[tuple[int, int]]):  # type: ignore[no-untyped-def]
    def compare(x: int, y: int) -> float:
        log.append((x, y))
        return 1.0 if values[x] > values[y] else 0.0 if values[x] < values[y] else 0.5

    return compare


def test_sliding_one_pass_bubbles_the_best_to_the_top() -> None:
    values = [3.0, 1.0, 4.0, 1.5, 9.0, 2.0]
    log: list[tuple[int, int]] = []
    order = run_sort(sliding_top_k(range(6), 1), true_order_compare(values, log))
    assert order[0] == 4 and len(log) == 5  # n - 1 comparisons
    # the bottom-up pass: 5 vs 4 (no swap), 4 vs 3 (swap), 4 vs 2, 4 vs 1, 4 vs 0
    assert log == [(5, 4), (4, 3), (4, 2), (4, 1), (4, 0)]
    assert order == [4, 0, 1, 2, 3, 5]


def test_sliding_and_heap_settle_the_top_k_on_random_lists() -> None:
    import random

    rng = random.Random(7)
    for n, k in itertools.product((1, 2, 5, 9, 20), (1, 3, 10)):
        values = [rng.random() for _ in range(n)]
        truth = sorted(range(n), key=lambda i: -values[i])
        for algo in (sliding_top_k, heap_top_k):
            log: list[tuple[int, int]] = []
            order = run_sort(algo(range(n), k), true_order_compare(values, log))
            assert sorted(order) == list(range(n)), algo.__name__
            assert order[: min(k, n)] == truth[: min(k, n)], (algo.__name__, n, k)
        if n == 20 and k == 3:
            assert len(log) <= 2 * 20 + 2 * 3 * 5  # heap: 2n to build + 2 log2(n) per extraction, vs 190 pairs


def test_heap_keeps_input_order_below_the_top_and_ties_stable() -> None:
    values = [1.0, 5.0, 2.0, 5.0, 0.0]
    order = run_sort(heap_top_k(range(5), 1), true_order_compare(values, []))
    assert order[0] in (1, 3) and order[1:] == [i for i in range(5) if i != order[0]]
    equal = [1.0] * 4
    assert run_sort(heap_top_k(range(4), 4), true_order_compare(equal, [])) == [0, 1, 2, 3]
    assert run_sort(sliding_top_k(range(4), 4), true_order_compare(equal, [])) == [0, 1, 2, 3]


def test_top_k_validation() -> None:
    with pytest.raises(ConfigError, match="top_k_settle"):
        run_sort(heap_top_k(range(3), 0), lambda x, y: 0.5)
    assert run_sort(heap_top_k([], 3), lambda x, y: 0.5) == []
