"""ScoreCache: LRU eviction, hit/miss counters, hashed keys, thread safety, option coercion."""

from __future__ import annotations

import threading

import pytest

from rerank_plugins.engine.cache import ScoreCache, make_cache


def test_get_put_and_counters() -> None:
    cache = ScoreCache()
    assert cache.get("m", "q", "d") is None
    cache.put("m", "q", "d", 0.5)
    assert cache.get("m", "q", "d") == 0.5
    stats = cache.stats()
    assert (stats.hits, stats.misses, stats.size) == (1, 1, 1)
    assert stats.hit_rate == 0.5


def test_zero_score_is_a_hit() -> None:
    cache = ScoreCache()
    cache.put("m", "q", "d", 0.0)
    assert cache.get("m", "q", "d") == 0.0
    assert cache.hits == 1


def test_keys_separate_model_query_and_document() -> None:
    cache = ScoreCache()
    cache.put("m", "ab", "c", 1.0)
    assert cache.get("m", "a", "bc") is None
    assert cache.get("other", "ab", "c") is None
    assert cache.get("m", "c", "ab") is None
    assert ("m", "ab", "c") in cache


def test_texts_are_not_stored() -> None:
    cache = ScoreCache()
    secret = "a confidential document " * 10
    cache.put("m", "q", secret, 1.0)
    for key in cache._data:
        assert isinstance(key, bytes) and len(key) == 16


def test_lru_eviction_keeps_recently_used() -> None:
    cache = ScoreCache(max_entries=2)
    cache.put("m", "q", "a", 1.0)
    cache.put("m", "q", "b", 2.0)
    assert cache.get("m", "q", "a") == 1.0  # a is now most recent
    cache.put("m", "q", "c", 3.0)  # evicts b
    assert len(cache) == 2
    assert cache.get("m", "q", "b") is None
    assert cache.get_many("m", [("q", "a"), ("q", "c")]) == [1.0, 3.0]


def test_put_many_checks_lengths() -> None:
    with pytest.raises(ValueError, match="pairs"):
        ScoreCache().put_many("m", [("q", "d")], [1.0, 2.0])


def test_clear_resets() -> None:
    cache = ScoreCache()
    cache.put("m", "q", "d", 1.0)
    cache.get("m", "q", "d")
    cache.clear()
    assert len(cache) == 0 and cache.hits == 0 and cache.misses == 0


def test_thread_safety() -> None:
    cache = ScoreCache(max_entries=500)

    def work(t: int) -> None:
        for i in range(300):
            cache.put("m", f"q{t}", f"d{i}", float(i))
            cache.get("m", f"q{t}", f"d{i // 2}")

    threads = [threading.Thread(target=work, args=(t,)) for t in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert len(cache) == 500
    assert cache.hits + cache.misses == 4 * 300


@pytest.mark.parametrize("bad", [0, -1, 1.5, True])
def test_bad_size_rejected(bad: object) -> None:
    with pytest.raises(ValueError):
        ScoreCache(max_entries=bad)  # type: ignore[arg-type]


def test_make_cache() -> None:
    assert make_cache(None) is None
    assert make_cache(False) is None
    assert isinstance(make_cache(True), ScoreCache)
    shared = ScoreCache()
    assert make_cache(shared) is shared
    with pytest.raises(TypeError):
        make_cache("yes")  # type: ignore[arg-type]
