"""Token-budget, length-sorted batching with order restoration and out-of-memory back-off.

Pure Python (no torch import): the caller passes the token length of every item and a function that runs one
batch. Items are sorted by length so each batch pads little; a batch holds at most ``max_batch_size`` items and
at most ``max_tokens`` padded tokens (``len(batch) * longest item``); a single item longer than the budget
forms a batch of its own. Results come back in input order.

When a batch raises an out-of-memory error (CUDA, MPS, or a ``MemoryError``), it is split in two and each half
retried; the split continues down to one item, which then raises :class:`~rerank_plugins.errors.BackendError`.
Later batches start from the smaller size that worked, so a memory-starved device does not hit the error over
and over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from typing import TypeVar

from ..errors import BackendError

__all__ = ["is_out_of_memory", "padding_share", "plan_batches", "run_batched"]

T = TypeVar("T")
logger = logging.getLogger(__name__)


def plan_batches(
    lengths: Sequence[int],
    *,
    max_batch_size: int = 32,
    max_tokens: int | None = None,
    sort: bool = True,
) -> list[list[int]]:
    """Group item indices into batches, longest first when ``sort`` (ties keep input order).

    ``max_tokens`` bounds ``len(batch) * max(lengths in batch)`` (the padded size of the batch).
    """
    if max_batch_size < 1:
        raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i]) if sort else list(range(len(lengths)))
    batches: list[list[int]] = []
    current: list[int] = []
    longest = 0
    for i in order:
        new_longest = max(longest, lengths[i])
        too_many = len(current) + 1 > max_batch_size
        too_big = max_tokens is not None and (len(current) + 1) * new_longest > max_tokens
        if current and (too_many or too_big):
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches


def padding_share(lengths: Sequence[int], batches: Sequence[Sequence[int]]) -> float:
    """Fraction of padded positions in ``batches`` (0.0 means no padding)."""
    real = sum(lengths[i] for b in batches for i in b)
    padded = sum(len(b) * max(lengths[i] for i in b) for b in batches if b)
    return 0.0 if padded == 0 else 1.0 - real / padded


def is_out_of_memory(exc: BaseException) -> bool:
    """True for CUDA / MPS out-of-memory errors and ``MemoryError``."""
    if isinstance(exc, MemoryError):
        return True
    if type(exc).__name__ == "OutOfMemoryError":  # torch.cuda.OutOfMemoryError, without importing torch
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


def _free_cached_memory() -> None:
    import sys

    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_available():
        torch.cuda.empty_cache()


def run_batched(
    lengths: Sequence[int],
    fn: Callable[[list[int]], Sequence[T]],
    *,
    max_batch_size: int = 32,
    max_tokens: int | None = None,
    sort: bool = True,
    progress: bool = False,
    desc: str = "batches",
) -> list[T]:
    """Run ``fn`` over length-sorted batches of indices and return its results in input order.

    ``fn(indices)`` must return one result per index, in the order given.
    """
    n = len(lengths)
    results: list[T | None] = [None] * n
    done = [False] * n
    limit = max_batch_size
    pending = plan_batches(lengths, max_batch_size=max_batch_size, max_tokens=max_tokens, sort=sort)
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=n, desc=desc, unit="item")
    try:
        while pending:
            batch = pending.pop(0)
            if len(batch) > limit:
                pending[:0] = [batch[k : k + limit] for k in range(0, len(batch), limit)]
                continue
            try:
                out = fn(batch)
            except Exception as exc:
                if not is_out_of_memory(exc):
                    raise
                _free_cached_memory()
                if len(batch) == 1:
                    raise BackendError(
                        f"out of memory on a single item of length {lengths[batch[0]]}; "
                        "lower max_length or use a smaller model / dtype"
                    ) from exc
                limit = max(1, len(batch) // 2)
                logger.warning("out of memory on a batch of %d; retrying with batches of %d", len(batch), limit)
                pending[:0] = [batch[:limit], batch[limit:]]
                continue
            if len(out) != len(batch):
                raise BackendError(f"batch function returned {len(out)} results for {len(batch)} items")
            for i, r in zip(batch, out):
                results[i] = r
                done[i] = True
            if bar is not None:
                bar.update(len(batch))
    finally:
        if bar is not None:
            bar.close()
    assert all(done)
    return results  # type: ignore[return-value]
