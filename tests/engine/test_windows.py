from __future__ import annotations

import math
import random

import pytest

from rerank_plugins.engine.windows import apply_window, count_windows, pass_windows, plan_windows
from rerank_plugins.errors import ConfigError


# ------------------------------------------------------------------ rank_llm's known counts
@pytest.mark.parametrize(
    ("n", "rank_start", "expected"),
    [
        (100, 0, 9),  # the classic RankGPT / RankZephyr setting
        (25, 0, 2),  # rank_llm test_count_windows: [5,25) then clamped [0,15)
        (30, 5, 2),  # [10,30) then clamped [5,20)
        (8, 0, 1),  # a single incomplete window
        (40, 0, 3),  # exact fit: [20,40), [10,30), [0,20)
        (20, 0, 1),
        (1, 0, 0),  # nothing to order
        (0, 0, 0),
    ],
)
def test_counts_match_rank_llm(n: int, rank_start: int, expected: int) -> None:
    assert count_windows(n, window_size=20, stride=10, rank_start=rank_start, rank_end=100) == expected


def test_windows_are_back_to_front() -> None:
    assert pass_windows(100) == [(e - 20, e) for e in range(100, 19, -10)]
    assert pass_windows(100)[:2] == [(80, 100), (70, 90)] and pass_windows(100)[-1] == (0, 20)
    assert pass_windows(25) == [(5, 25), (0, 15)]
    assert pass_windows(100, rank_end=50) == [(30, 50), (20, 40), (10, 30), (0, 20)]
    assert pass_windows(10, window_size=4, stride=4) == [(6, 10), (2, 6), (0, 2)]  # a 2-position tail is kept ...
    assert pass_windows(11, window_size=5, stride=5) == [(6, 11), (1, 6)]  # ... and a 1-position one is skipped


@pytest.mark.parametrize(
    "kwargs",
    [
        {"window_size": 1},
        {"stride": 0},
        {"stride": 21},
        {"rank_start": -1},
        {"rank_start": 5, "rank_end": 5},
        {"window_size": 2.5},
        {"num_passes": 0},
        {"top_k": 0},
        {"top_k": 5, "stride": 20},  # disjoint windows never settle anything
    ],
)
def test_invalid_config(kwargs: dict) -> None:
    with pytest.raises(ConfigError):
        plan_windows(100, **kwargs)


def test_full_passes_without_top_k() -> None:
    plan = plan_windows(100, num_passes=3)
    assert plan.passes == 3 and len(plan) == 27
    assert [w.pass_index for w in plan.windows[8:10]] == [0, 1]
    assert plan.settled == 10  # only the carry is guaranteed by full-range passes


@pytest.mark.parametrize(("k", "windows", "passes"), [(1, 9, 1), (10, 9, 1), (11, 17, 2), (20, 17, 2), (100, 45, 9)])
def test_top_k_early_stop_counts(k: int, windows: int, passes: int) -> None:
    plan = plan_windows(100, top_k=k)
    assert (len(plan), plan.passes) == (windows, passes)
    assert plan.settled >= k
    # pass p never revisits the settled prefix
    for w in plan.windows:
        assert w.start >= 10 * w.pass_index


def test_num_passes_caps_top_k() -> None:
    plan = plan_windows(100, top_k=30, num_passes=2)
    assert plan.passes == 2 and plan.settled == 20 < 30


def test_one_window_covering_the_range_settles_everything() -> None:
    plan = plan_windows(15, top_k=15)
    assert (len(plan), plan.passes, plan.settled) == (1, 1, 15)


def _sort_window(window: list[int], relevance: list[float]) -> list[int]:
    """A consistent oracle's answer: the whole window sorted by true relevance."""
    return sorted(range(len(window)), key=lambda i: -relevance[window[i]])


def _best_first(window: list[int], relevance: list[float]) -> list[int]:
    """An oracle that only names the best passage of the window (Rank-R1): the rest keep their order."""
    best = max(range(len(window)), key=lambda i: relevance[window[i]])
    return [best, *(i for i in range(len(window)) if i != best)]


def _run(plan, relevance: list[float], answer=_sort_window) -> list[int]:
    """Run a plan, each window reordered by ``answer(window, relevance)`` (the local permutation)."""
    order = list(range(len(relevance)))
    for w in plan.windows:
        window = order[w.start : w.end]
        order = apply_window(order, w.start, w.end, answer(window, relevance))
    return order


def _random_cases(seed: int, count: int, *, max_n: int, max_window: int, max_k: int | None):
    """``count`` random (n, window, stride, k, relevance) cases from ``random.Random(seed)``; k is at most ``max_k``
    (``None``: at most n)."""
    rng = random.Random(seed)
    for _ in range(count):
        n = rng.randint(2, max_n)
        window = rng.randint(2, max_window)
        stride = rng.randint(1, window - 1)
        k = rng.randint(1, n if max_k is None else min(n, max_k))
        yield n, window, stride, k, [rng.random() for _ in range(n)]


def test_top_k_rule_is_correct_for_a_consistent_model() -> None:
    for n, window, stride, k, relevance in _random_cases(7, 300, max_n=120, max_window=25, max_k=None):
        plan = plan_windows(n, window_size=window, stride=stride, top_k=k)
        order = _run(plan, relevance)
        truth = sorted(range(n), key=lambda i: -relevance[i])
        assert order[:k] == truth[:k], (n, window, stride, k)
        assert plan.passes <= math.ceil(k / (window - stride))


def test_one_full_pass_is_not_enough_beyond_the_carry() -> None:
    # the reason for the rule: a single pass settles only window - stride positions
    rng = random.Random(3)
    failures = 0
    for _ in range(50):
        relevance = [rng.random() for _ in range(100)]
        order = _run(plan_windows(100), relevance)
        truth = sorted(range(100), key=lambda i: -relevance[i])
        assert order[:10] == truth[:10]
        failures += order[:20] != truth[:20]
    assert failures > 40


def test_rank_range_leaves_outside_untouched() -> None:
    relevance = [float(i) for i in range(50)]  # reversed input: the best is last
    plan = plan_windows(50, rank_start=10, rank_end=30, top_k=20)
    order = _run(plan, relevance)
    assert order[:10] == list(range(10)) and order[30:] == list(range(30, 50))
    assert order[10:30] == list(range(29, 9, -1))


def test_apply_window() -> None:
    assert apply_window(["a", "b", "c", "d"], 1, 3, [1, 0]) == ["a", "c", "b", "d"]
    original = [1, 2, 3]
    apply_window(original, 0, 3, [2, 1, 0])
    assert original == [1, 2, 3]
    with pytest.raises(ValueError, match="permutation"):
        apply_window([1, 2, 3], 0, 2, [0, 0])
    with pytest.raises(ValueError, match="outside"):
        apply_window([1, 2, 3], 2, 5, [0, 1, 2])


def test_best_only_answers_settle_one_position_per_pass() -> None:
    for n, window, stride, k, relevance in _random_cases(11, 200, max_n=60, max_window=12, max_k=8):
        plan = plan_windows(n, window_size=window, stride=stride, top_k=k, ordered=1)
        truth = sorted(range(n), key=lambda i: -relevance[i])
        assert _run(plan, relevance, _best_first)[:k] == truth[:k], (n, window, stride, k)
        assert plan.passes <= k
    # the full-permutation rule would stop too early for best-only answers
    relevance = [0.1, 0.2, 0.3, 0.4, 0.5, 0.9, 0.8, 0.7]
    full_rule = plan_windows(8, window_size=4, stride=2, top_k=2)
    assert full_rule.passes == 1 and _run(full_rule, relevance, _best_first)[:2] != [5, 6]
    assert _run(plan_windows(8, window_size=4, stride=2, top_k=2, ordered=1), relevance, _best_first)[:2] == [5, 6]
