from __future__ import annotations

import pytest

from rerank_plugins.engine.batching import is_out_of_memory, padding_share, plan_batches, run_batched
from rerank_plugins.errors import BackendError


def test_plan_sorts_longest_first_and_respects_budget() -> None:
    lengths = [5, 50, 10, 50, 7, 200]
    batches = plan_batches(lengths, max_batch_size=8, max_tokens=110)
    assert batches[0] == [5]  # 200 > budget: alone
    assert batches[1] == [1, 3]  # ties keep input order
    for b in batches:
        assert len(b) == 1 or len(b) * max(lengths[i] for i in b) <= 110
    assert sorted(i for b in batches for i in b) == list(range(len(lengths)))


def test_plan_max_batch_size_and_unsorted() -> None:
    assert plan_batches([1, 2, 3, 4, 5], max_batch_size=2, sort=False) == [[0, 1], [2, 3], [4]]
    with pytest.raises(ValueError):
        plan_batches([1], max_batch_size=0)


def test_padding_share() -> None:
    assert padding_share([4, 4], [[0, 1]]) == 0.0
    assert padding_share([2, 4], [[0, 1]]) == pytest.approx(0.25)


def test_run_batched_restores_order() -> None:
    lengths = [3, 9, 1, 7, 5]
    out = run_batched(lengths, lambda idx: [lengths[i] * 10 for i in idx], max_batch_size=2)
    assert out == [30, 90, 10, 70, 50]


class FakeOOM(RuntimeError):
    pass


def test_oom_halves_batch_and_retries() -> None:
    seen: list[int] = []

    def fn(idx: list[int]) -> list[int]:
        seen.append(len(idx))
        if len(idx) > 2:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        return list(idx)

    out = run_batched([1] * 8, fn, max_batch_size=8)
    assert out == list(range(8))
    assert seen[0] == 8 and seen[1] == 4 and max(seen[2:]) <= 2


def test_oom_on_single_item_is_backend_error() -> None:
    def fn(idx: list[int]) -> list[int]:
        raise MemoryError()

    with pytest.raises(BackendError, match="single item"):
        run_batched([10, 20], fn, max_batch_size=2)


def test_other_errors_propagate() -> None:
    def fn(idx: list[int]) -> list[int]:
        raise KeyError("boom")

    with pytest.raises(KeyError):
        run_batched([1, 2], fn)


def test_is_out_of_memory() -> None:
    class OutOfMemoryError(RuntimeError):
        pass

    assert is_out_of_memory(OutOfMemoryError("x"))
    assert is_out_of_memory(RuntimeError("MPS backend out of memory"))
    assert not is_out_of_memory(RuntimeError("shape mismatch"))
