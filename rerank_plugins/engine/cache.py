"""Opt-in score cache shared by the pointwise rankers.

A :class:`ScoreCache` maps ``(model key, query text, document text)`` to a score. Keys are 16-byte BLAKE2b
digests, so the cache never holds the texts themselves (memory stays bounded by ``max_entries`` and no document
text lingers in it). It is a least-recently-used cache guarded by a lock, safe to share between threads and
between rankers: the model key (built by each ranker from its model and every option that changes scores) keeps
their entries apart.

Rankers take ``cache=None`` (no cache, the default), ``cache=True`` (a private cache) or ``cache=ScoreCache(...)``
(a shared one); :func:`make_cache` does that coercion.
"""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from ..validation import check_int

__all__ = ["CacheStats", "ScoreCache", "make_cache"]


@dataclass(frozen=True)
class CacheStats:
    hits: int
    misses: int
    size: int
    max_entries: int

    @property
    def hit_rate(self) -> float:
        total = self.hits + self.misses
        return 0.0 if total == 0 else self.hits / total


def _digest(model_key: str, query: str, document: str) -> bytes:
    h = hashlib.blake2b(digest_size=16)
    for part in (model_key, query, document):
        data = part.encode("utf-8", "surrogatepass")
        # Length prefixes make ("ab", "c") and ("a", "bc") distinct keys.
        h.update(len(data).to_bytes(8, "little"))
        h.update(data)
    return h.digest()


class ScoreCache:
    """Thread-safe LRU cache of scores keyed by model, query and document (stored as hashes).

    ``max_entries`` bounds the number of scores kept (each costs roughly 150 bytes); the least recently used
    entry is evicted first. ``hits`` and ``misses`` count lookups since creation (or the last :meth:`clear`).
    """

    def __init__(self, max_entries: int = 100_000) -> None:
        self.max_entries = check_int("max_entries", max_entries, 1, error=ValueError)
        self._data: OrderedDict[bytes, float] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    # ------------------------------------------------------------------ single lookups
    def get(self, model_key: str, query: str, document: str) -> float | None:
        """The cached score, or ``None`` (counted as a miss)."""
        return self.get_many(model_key, [(query, document)])[0]

    def put(self, model_key: str, query: str, document: str, score: float) -> None:
        self.put_many(model_key, [(query, document)], [score])

    # ------------------------------------------------------------------ batched lookups (one lock round-trip)
    def get_many(self, model_key: str, pairs: Iterable[tuple[str, str]]) -> list[float | None]:
        """Cached scores for ``(query, document)`` pairs, ``None`` where absent."""
        keys = [_digest(model_key, q, d) for q, d in pairs]
        out: list[float | None] = []
        with self._lock:
            for key in keys:
                value = self._data.get(key)
                if value is None:
                    self.misses += 1
                else:
                    self.hits += 1
                    self._data.move_to_end(key)
                out.append(value)
        return out

    def put_many(self, model_key: str, pairs: Sequence[tuple[str, str]], scores: Sequence[float]) -> None:
        if len(pairs) != len(scores):
            raise ValueError(f"got {len(pairs)} pairs and {len(scores)} scores")
        items = [(_digest(model_key, q, d), float(s)) for (q, d), s in zip(pairs, scores)]
        with self._lock:
            for key, value in items:
                self._data[key] = value
                self._data.move_to_end(key)
            while len(self._data) > self.max_entries:
                self._data.popitem(last=False)

    # ------------------------------------------------------------------ housekeeping
    def clear(self) -> None:
        with self._lock:
            self._data.clear()
            self.hits = 0
            self.misses = 0

    def stats(self) -> CacheStats:
        with self._lock:
            return CacheStats(self.hits, self.misses, len(self._data), self.max_entries)

    def __len__(self) -> int:
        return len(self._data)

    def __contains__(self, item: object) -> bool:
        if not (isinstance(item, tuple) and len(item) == 3 and all(isinstance(x, str) for x in item)):
            return False
        with self._lock:
            return _digest(*item) in self._data

    def __repr__(self) -> str:
        s = self.stats()
        return f"ScoreCache(size={s.size}, max_entries={s.max_entries}, hits={s.hits}, misses={s.misses})"


def make_cache(cache: bool | ScoreCache | None) -> ScoreCache | None:
    """Coerce a ranker's ``cache`` option: ``None``/``False`` -> no cache, ``True`` -> a new cache."""
    if cache is None or cache is False:
        return None
    if cache is True:
        return ScoreCache()
    if isinstance(cache, ScoreCache):
        return cache
    raise TypeError(f"cache must be None, a bool or a ScoreCache, got {type(cache).__name__}")
