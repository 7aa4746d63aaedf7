"""Pairwise preferences and the ways to turn them into a ranking (pure Python, no model).

A judge compares two passages ``i`` and ``j`` for a query and answers ``A`` (the first shown) or ``B``. LLM judges
favour a position, so each pair is asked in both orders and the two answers are averaged (PRP, Qin et al. 2024):

    P(i > j) = ( P(A | i shown first) + 1 - P(A | j shown first) ) / 2        (:func:`pair_preference`)

A judge with a pure position bias (same ``P(A)`` whatever the passages) then gives exactly 0.5.

Aggregation
    * all pairs (``n (n - 1) / 2`` comparisons), :func:`allpairs_scores`:
      ``"borda"`` - the mean win probability against the others (PRP-allpair's score sum, scaled to [0, 1]);
      ``"copeland"`` - (wins - losses) / (n - 1), a win being ``P(i > j) > 0.5`` (ties count for neither);
    * sorting passes that settle only the top ``k`` (PRP-sorting), as generators that yield the pairs to compare
      and receive ``P(first > second)`` for each:
      :func:`sliding_top_k` - ``k`` bubble passes from the bottom of the list to the top (PRP-sliding-k,
      ``O(k n)`` comparisons); :func:`heap_top_k` - a max-heap built over the list, then ``k`` extractions
      (``O(n + k log n)`` comparisons). Below the top ``k`` the sliding passes leave the order they reached and
      the heap keeps the input order. An exact tie (0.5) never swaps / goes to the earlier item, so equal
      passages keep input order.

Generator protocol: ``pairs = next(gen)`` / ``pairs = gen.send(prefs)``; each ``pairs`` is a list of ``(x, y)``
item indices and ``prefs`` the list of ``P(x > y)``; the final order (item indices, best first) is the
``StopIteration`` value. :func:`run_sort` drives one with a plain comparison function (for tests and callers that
do not batch).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Mapping, Sequence

from ..errors import ModelOutputError
from ..validation import check_choice, check_int

__all__ = [
    "AGGREGATIONS",
    "Comparisons",
    "allpairs",
    "allpairs_scores",
    "heap_top_k",
    "pair_preference",
    "run_sort",
    "sliding_top_k",
]

AGGREGATIONS = ("borda", "copeland")
Comparisons = Generator[list[tuple[int, int]], list[float], list[int]]


def _check_probability(p: float, what: str) -> float:
    f = float(p)
    if math.isnan(f) or not 0.0 <= f <= 1.0:
        raise ModelOutputError(f"{what} must be a probability in [0, 1], got {p!r}")
    return f


def pair_preference(p_first: float, p_swapped: float | None = None) -> float:
    """``P(i > j)`` from ``P(A)`` with ``i`` shown as A (``p_first``) and, when asked, ``P(A)`` with ``j`` shown as
    A (``p_swapped``); with one order only, ``p_first`` as is."""
    a = _check_probability(p_first, "P(A) with the first passage shown first")
    if p_swapped is None:
        return a
    b = _check_probability(p_swapped, "P(A) with the second passage shown first")
    return 0.5 + (a - b) / 2.0  # = (a + 1 - b) / 2, written so that a == b gives exactly 0.5


def allpairs(n: int) -> list[tuple[int, int]]:
    """Every unordered pair ``(i, j)``, ``i < j``, of ``n`` items."""
    return [(i, j) for i in range(n) for j in range(i + 1, n)]


def allpairs_scores(n: int, prefs: Mapping[tuple[int, int], float], aggregation: str = "borda") -> list[float]:
    """Scores of ``n`` items from ``P(i > j)`` for every pair ``i < j`` (see the module docstring)."""
    check_choice("aggregation", aggregation, AGGREGATIONS)
    if n == 1:
        return [0.5] if aggregation == "borda" else [0.0]
    wins = [0.0] * n
    for i, j in allpairs(n):
        if (i, j) not in prefs:
            raise ValueError(f"missing the preference of pair {(i, j)}")
        p = _check_probability(prefs[(i, j)], f"P({i} > {j})")
        if aggregation == "borda":
            wins[i] += p
            wins[j] += 1.0 - p
        elif p > 0.5:
            wins[i] += 1.0
            wins[j] -= 1.0
        elif p < 0.5:
            wins[j] += 1.0
            wins[i] -= 1.0
    return [w / (n - 1) for w in wins]


def _check_k(k: int, n: int) -> int:
    return min(check_int("top_k_settle", k, 1), n)


def sliding_top_k(order: Sequence[int], k: int) -> Comparisons:
    """``k`` bubble passes from the bottom up (PRP-sliding-k): the top ``k`` of the result are settled."""
    current = list(order)
    n = len(current)
    for settled in range(_check_k(k, n) if n else 0):
        for pos in range(n - 2, settled - 1, -1):
            lower, upper = current[pos + 1], current[pos]
            (p,) = yield [(lower, upper)]
            if p > 0.5:
                current[pos], current[pos + 1] = lower, upper
    return current


def heap_top_k(order: Sequence[int], k: int) -> Comparisons:
    """Max-heap over ``order``, then ``k`` extractions: the best ``k`` first, then the rest in input order.

    An exact tie (0.5) goes to the item earlier in ``order``, so equal items come out in input order.
    """
    heap = list(order)
    n = len(heap)
    if n == 0:
        return []
    k = _check_k(k, n)
    position = {item: i for i, item in enumerate(heap)}

    def beats(p: float, x: int, y: int) -> bool:
        return p > 0.5 or (p == 0.5 and position[x] < position[y])

    def sift_down(root: int, end: int) -> Comparisons:
        while True:
            child = 2 * root + 1
            if child >= end:
                return []
            right = child + 1
            if right < end:
                (p,) = yield [(heap[right], heap[child])]
                if beats(p, heap[right], heap[child]):
                    child = right
            (p,) = yield [(heap[child], heap[root])]
            if not beats(p, heap[child], heap[root]):
                return []
            heap[root], heap[child] = heap[child], heap[root]
            root = child

    for start in range(n // 2 - 1, -1, -1):
        yield from sift_down(start, n)
    top: list[int] = []
    end = n
    for _ in range(k):
        top.append(heap[0])
        end -= 1
        heap[0] = heap[end]
        if end > 0:
            yield from sift_down(0, end)
    chosen = set(top)
    return top + [i for i in order if i not in chosen]


def run_sort(gen: Comparisons, compare: Callable[[int, int], float]) -> list[int]:
    """Drive a sorting generator with ``compare(x, y) = P(x > y)``; returns the final order."""
    try:
        pairs = next(gen)
        while True:
            pairs = gen.send([compare(x, y) for x, y in pairs])
    except StopIteration as stop:
        return list(stop.value)
