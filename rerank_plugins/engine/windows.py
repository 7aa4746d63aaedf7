"""Back-to-front sliding windows for listwise reranking (RankGPT, RankZephyr, FIRST), and their merge.

One pass over the rank range ``[rank_start, rank_end)`` visits windows of ``window_size`` positions from the
back of the list to the front, each ``stride`` positions before the previous one, exactly as rank_llm does:
``end = min(rank_end, n)``, ``start = max(end - window_size, rank_start)``, then both move back by ``stride``
(``start`` clamped to ``rank_start``) until a window has started at ``rank_start``. 100 candidates with
window 20 and stride 10 give 9 windows: ``[80, 100), [70, 90), ..., [0, 20)``. Windows of fewer than two
positions are skipped (there is nothing to order).

Merging (:func:`apply_window`): the model's order of a window replaces the window's positions; everything
outside the window keeps its place.

Early stop once the top-k is settled (``top_k``)
------------------------------------------------
Let ``m = window_size - stride`` be the *carry*: the positions each window hands to the next one. Assume the
model ranks consistently (one total order, applied the same way in every window). Then one pass over a range
``[a, e)`` leaves the ``m`` best passages of that range at ``[a, a + m)``, in order: by induction over the
windows, the best ``m`` passages seen so far always sit in the first ``m`` positions of the current window,
which are exactly the positions the next window overlaps, and every window but the last holds ``w``
positions (the last holds more than ``m``). A pass whose single window covers the whole range sorts it all.

So with ``top_k = k`` the planner runs pass ``p`` (0-based) over ``[rank_start + p*m, rank_end)``: the prefix
settled by earlier passes is never sent to the model again, and planning stops as soon as
``p*m >= k`` (the top ``k`` are settled) or a pass fits in one window (everything is settled). That needs
``ceil(k / m)`` passes and, for 100 candidates, window 20, stride 10: 9 windows for the top 10, 17 for the top
20 and 45 for the full order of 100 (instead of 90 for ten full passes). ``num_passes`` caps the number of
passes; :attr:`WindowPlan.settled` tells how many leading positions the plan guarantees, so a caller can warn
when the cap leaves the top ``k`` unsettled. Without ``top_k`` every pass covers the full range (rank_llm's
behaviour) and only the first ``m`` positions are guaranteed; in both cases a range that fits in one window is
ranked once, since that window sorts all of it.

The rule needs ``m >= 1`` (``stride < window_size``); with disjoint windows no number of passes settles
anything and :class:`~rerank_plugins.errors.ConfigError` is raised.

Answers that order only their first ``r`` passages (``ordered=r``; Rank-R1 names only the best, ``r = 1``,
and the rest keep their input order) carry only ``min(m, r)`` reliable positions, so each pass settles
``min(m, r)`` (a single window covering the range settles ``r``), and the planner shrinks the range by that
much per pass: with ``r = 1`` this is the setwise bubble / selection pass, ``k`` passes for the top ``k``.

Setwise heapsort (:class:`HeapsortSchedule`)
--------------------------------------------
For answers that name only the best passage of a group (Rank-R1), the reference selects the top ``k`` with a
``num_child``-ary max-heap whose comparisons are model calls (ielab/llm-rankers ``llmrankers/setwise.py``,
``SetwiseLlmRanker.heapify`` / ``heapSort``, PyPI ``llm-rankers==0.0.2`` and GitHub commit ``b36517b``): a group
is a node and its ``num_child`` children (``[i] + [c*i + 1, ..., c*i + c]``), the heap is built bottom-up from
node ``n // c`` down to 0, then the root is swapped to the end and the heap repaired, ``k`` times. Which group
comes next depends on the previous answer, so the schedule is a small state machine, still free of any model:
:meth:`HeapsortSchedule.next_group` gives the positions to compare, :meth:`HeapsortSchedule.feed` takes the index
(inside that group) of the passage the model named, and :meth:`HeapsortSchedule.order` is the result: the ``k``
selected best first, then every other position in its input order, as the reference's ``rerank`` returns it.
With ``num_child=19`` (groups of 20, Rank-R1's setting) the top 10 of 100 take about 23 model calls.
"""

from __future__ import annotations

from collections.abc import Generator, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ..errors import ConfigError
from ..validation import check_int as _check_int

__all__ = [
    "HeapsortSchedule", "Window", "WindowPlan", "apply_window", "count_windows", "pass_windows", "plan_windows",
]

T = TypeVar("T")


@dataclass(frozen=True)
class Window:
    """One window of the plan: positions ``[start, end)`` of the running order, in pass ``pass_index``."""

    pass_index: int
    start: int
    end: int

    @property
    def size(self) -> int:
        return self.end - self.start


@dataclass(frozen=True)
class WindowPlan:
    """The full schedule for one list: windows in execution order, the number of passes, and how many leading
    positions (from ``rank_start``) are guaranteed settled under the consistency assumption."""

    windows: tuple[Window, ...]
    passes: int
    settled: int
    rank_start: int
    rank_end: int

    def __len__(self) -> int:
        return len(self.windows)


def _check(window_size: int, stride: int) -> None:
    _check_int("window_size", window_size, 2)
    _check_int("stride", stride, 1)
    if stride > window_size:
        raise ConfigError(
            f"stride ({stride}) must not exceed window_size ({window_size}): windows would leave gaps"
        )


def _range(n: int, rank_start: int, rank_end: int | None) -> tuple[int, int]:
    _check_int("rank_start", rank_start, 0)
    if rank_end is not None:
        _check_int("rank_end", rank_end, 1)
        if rank_end <= rank_start:
            raise ConfigError(f"rank_end ({rank_end}) must be greater than rank_start ({rank_start})")
    end = n if rank_end is None else min(rank_end, n)
    return rank_start, max(end, rank_start)


def pass_windows(
    n: int, *, window_size: int = 20, stride: int = 10, rank_start: int = 0, rank_end: int | None = None
) -> list[tuple[int, int]]:
    """The ``(start, end)`` windows of one back-to-front pass over ``[rank_start, min(rank_end, n))``."""
    _check(window_size, stride)
    a, e = _range(n, rank_start, rank_end)
    windows: list[tuple[int, int]] = []
    end = e
    start = max(end - window_size, a)
    previous_start: int | None = None
    while end > start and previous_start != a:
        if end - start >= 2:
            windows.append((start, end))
        previous_start = start
        end -= stride
        start = max(start - stride, a)
    return windows


def count_windows(
    n: int, *, window_size: int = 20, stride: int = 10, rank_start: int = 0, rank_end: int | None = None
) -> int:
    """Number of windows in one pass (rank_llm's ``_count_windows``)."""
    return len(pass_windows(n, window_size=window_size, stride=stride, rank_start=rank_start, rank_end=rank_end))


def plan_windows(
    n: int,
    *,
    window_size: int = 20,
    stride: int = 10,
    num_passes: int | None = None,
    top_k: int | None = None,
    rank_start: int = 0,
    rank_end: int | None = None,
    ordered: int | None = None,
) -> WindowPlan:
    """Plan every window for a list of ``n`` candidates (see the module docstring for the exact rule).

    ``num_passes`` defaults to 1 without ``top_k`` and to "as many as needed" with it. ``ordered`` is how many
    leading positions of a window's answer are reliably ordered (``None``: all of them, a full permutation).
    """
    _check(window_size, stride)
    a, e = _range(n, rank_start, rank_end)
    carry = window_size - stride
    reliable = window_size if ordered is None else _check_int("ordered", ordered, 1)
    if num_passes is not None:
        _check_int("num_passes", num_passes, 1)
    if top_k is not None:
        _check_int("top_k", top_k, 1)
        if carry < 1:
            raise ConfigError(
                f"top_k early stop needs overlapping windows (stride < window_size); got window_size={window_size}, "
                f"stride={stride}"
            )
    max_passes = num_passes if num_passes is not None else (1 if top_k is None else None)

    windows: list[Window] = []
    passes = 0
    settled = 0
    start = a
    while max_passes is None or passes < max_passes:
        if e - start < 2:
            settled = e - a
            break
        for s, t in pass_windows(n, window_size=window_size, stride=stride, rank_start=start, rank_end=e):
            windows.append(Window(passes, s, t))
        passes += 1
        single = e - start <= window_size
        if single and reliable >= e - start:  # one window covered the remaining range: all of it is sorted
            settled = e - a
            break
        gained = min(reliable, e - start) if single else min(carry, reliable)
        settled = max(settled, min(start + gained, e) - a)
        if top_k is None:
            continue  # full-range passes: the guarantee stays the first `gained` positions
        start += gained
        if settled >= top_k:
            break
    return WindowPlan(tuple(windows), passes, settled, a, e)


def apply_window(order: Sequence[T], start: int, end: int, local_order: Sequence[int]) -> list[T]:
    """Reorder ``order[start:end]`` by ``local_order`` (0-based positions inside the window, best first).

    Returns a new list; raises ``ValueError`` when ``local_order`` is not a permutation of the window.
    """
    if not 0 <= start <= end <= len(order):
        raise ValueError(f"window [{start}, {end}) is outside a list of {len(order)}")
    size = end - start
    if sorted(local_order) != list(range(size)):
        raise ValueError(f"window order {list(local_order)} is not a permutation of range({size})")
    window = order[start:end]
    return [*order[:start], *(window[i] for i in local_order), *order[end:]]


class HeapsortSchedule:
    """Setwise heapsort top-``k`` over positions ``[rank_start, rank_end)`` (see the module docstring).

    The reference's recursion is replayed exactly (an answer outside the group, or ``None``, keeps the node where
    it is, as the reference's ``best_ind = 0`` / ``IndexError`` fallbacks do). ``calls`` counts the groups asked.
    """

    def __init__(
        self, n: int, *, num_child: int = 19, k: int = 10, rank_start: int = 0, rank_end: int | None = None
    ) -> None:
        _check_int("num_child", num_child, 1)
        _check_int("k", k, 1)
        self.num_child, self.k = num_child, k
        self.rank_start, self.rank_end = _range(n, rank_start, rank_end)
        self._arr = list(range(self.rank_start, self.rank_end))
        self._n = n
        self.calls = 0
        self._pending: tuple[int, ...] | None = None
        self._gen = self._run()
        self._advance(None)

    # the reference algorithm, as a generator of groups (indices into the heap array) receiving the best index
    def _heapify(self, n: int, i: int) -> Generator[list[int], int | None, None]:
        c, arr = self.num_child, self._arr
        while c * i + 1 < n:
            inds = [i, *range(c * i + 1, min(c * (i + 1) + 1, n))]
            best = yield inds
            largest = inds[best] if best is not None and 0 <= best < len(inds) else i
            if largest == i:
                return
            arr[i], arr[largest] = arr[largest], arr[i]
            i = largest

    def _run(self) -> Generator[list[int], int | None, None]:
        arr, n = self._arr, len(self._arr)
        for i in range(n // self.num_child, -1, -1):
            yield from self._heapify(n, i)
        for ranked, i in enumerate(range(n - 1, 0, -1), start=1):
            arr[i], arr[0] = arr[0], arr[i]
            if ranked == self.k:
                break
            yield from self._heapify(i, 0)

    def _advance(self, best: int | None) -> None:
        try:
            inds = self._gen.send(best) if self._pending is not None else next(self._gen)
        except StopIteration:
            self._pending = None
            return
        self._pending = tuple(self._arr[j] for j in inds)

    def next_group(self) -> tuple[int, ...] | None:
        """Positions (of the input order) to compare next, the node first; ``None`` when the selection is done."""
        return self._pending

    def feed(self, best: int | None) -> None:
        """The model's answer for the current group: the index inside it of the best passage (None: no answer)."""
        if self._pending is None:
            raise ValueError("the heapsort schedule is finished; there is no group to answer")
        self.calls += 1
        self._advance(best)

    @property
    def done(self) -> bool:
        return self._pending is None

    def order(self) -> list[int]:
        """The full order of all ``n`` positions: untouched outside the range; inside it the selected top ``k``
        best first, then the others in input order (the reference returns exactly that)."""
        if not self.done:
            raise ValueError("the heapsort schedule is not finished")
        ranked = list(reversed(self._arr))[: self.k]
        chosen = set(ranked)
        rest = [p for p in range(self.rank_start, self.rank_end) if p not in chosen]
        return [*range(self.rank_start), *ranked, *rest, *range(self.rank_end, self._n)]

    @property
    def settled(self) -> int:
        """Leading positions of the range the selection settles: ``min(k, range length)``."""
        return min(self.k, self.rank_end - self.rank_start)
