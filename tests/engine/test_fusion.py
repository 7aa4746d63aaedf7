"""Fusion and normalisation on hand-computed examples."""

from __future__ import annotations

import math

import pytest

from rerank_plugins.engine.fusion import (
    borda_fusion,
    comb_mnz,
    comb_sum,
    fuse,
    normalize_scores,
    rank_positions,
    reciprocal_rank_fusion,
)
from rerank_plugins.errors import ConfigError, InvalidInputError

A = [("a", 3.0), ("b", 2.0), ("c", 1.0)]
B = [("c", 0.9), ("a", 0.5)]


def as_dict(pairs: list[tuple[str, float]]) -> dict[str, float]:
    return dict(pairs)


# ---------------------------------------------------------------------------------------------- normalisation
def test_minmax() -> None:
    assert normalize_scores([2.0, 4.0, 3.0], "minmax") == [0.0, 1.0, 0.5]


def test_zscore() -> None:
    # mean 3, population std sqrt(2/3)
    std = math.sqrt(2 / 3)
    assert normalize_scores([2.0, 4.0, 3.0], "zscore") == pytest.approx([-1 / std, 1 / std, 0.0])


def test_sum_shifts_min_to_zero() -> None:
    # shifted: 0, 2, 1 -> sum 3
    assert normalize_scores([2.0, 4.0, 3.0], "sum") == pytest.approx([0.0, 2 / 3, 1 / 3])


def test_none_and_constant_runs() -> None:
    assert normalize_scores([2.0, -4.0], "none") == [2.0, -4.0]
    for method in ("minmax", "zscore", "sum"):
        assert normalize_scores([5.0, 5.0], method) == [0.0, 0.0]
    assert normalize_scores([], "minmax") == []


def test_normalisation_rejects_bad_input() -> None:
    with pytest.raises(ConfigError, match="unknown normalization"):
        normalize_scores([1.0], "max")  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="finite"):
        normalize_scores([1.0, float("-inf")], "minmax")
    with pytest.raises(InvalidInputError, match="NaN"):
        normalize_scores([float("nan")], "none")


# ---------------------------------------------------------------------------------------------- ranks
def test_rank_positions_from_mapping_and_ties() -> None:
    run = {"x": 1.0, "y": 3.0, "z": 1.0, "w": 0.0}
    assert rank_positions(run) == {"y": 1.0, "x": 2.0, "z": 3.0, "w": 4.0}
    assert rank_positions(run, ties="average") == {"y": 1.0, "x": 2.5, "z": 2.5, "w": 4.0}


# ---------------------------------------------------------------------------------------------- methods
def test_rrf_hand_computed() -> None:
    fused = reciprocal_rank_fusion([A, B], k=60)
    # a: 1/61 + 1/62, c: 1/63 + 1/61, b: 1/62
    assert [d for d, _ in fused] == ["a", "c", "b"]
    assert as_dict(fused) == pytest.approx({"a": 1 / 61 + 1 / 62, "c": 1 / 63 + 1 / 61, "b": 1 / 62})


def test_rrf_weights_and_k_zero() -> None:
    fused = reciprocal_rank_fusion([A, B], k=0, weights=[1.0, 3.0])
    # a: 1/1 + 3/2 = 2.5, b: 1/2, c: 1/3 + 3/1
    assert as_dict(fused) == pytest.approx({"a": 2.5, "b": 0.5, "c": 1 / 3 + 3})
    assert [d for d, _ in fused] == ["c", "a", "b"]


def test_rrf_depth_cuts_runs() -> None:
    fused = reciprocal_rank_fusion([A, B], k=1, depth=1)
    assert as_dict(fused) == pytest.approx({"a": 0.5, "c": 0.5})
    assert [d for d, _ in fused] == ["a", "c"]  # tie keeps universe order


def test_borda_missing_documents_share_points() -> None:
    # universe N = 3; run A: a 3, b 2, c 1; run B (2 docs): c 3, a 2, b gets (3 - 2 + 1) / 2 = 1
    fused = borda_fusion([A, B])
    assert as_dict(fused) == {"a": 5.0, "b": 3.0, "c": 4.0}
    assert [d for d, _ in fused] == ["a", "c", "b"]


def test_borda_every_run_hands_out_same_total() -> None:
    fused = borda_fusion([B])  # N = 2 (a, c): c 2, a 1
    assert as_dict(fused) == {"c": 2.0, "a": 1.0}
    fused3 = borda_fusion([A, [("d", 1.0)]])  # N = 4; run 2: d 4, others (4 - 1 + 1) / 2 = 2 each
    assert as_dict(fused3) == {"a": 4 + 2, "b": 3 + 2, "c": 2 + 2, "d": 1 + 4}
    assert sum(as_dict(fused3).values()) == 2 * (4 * 5 / 2)


def test_combsum_minmax() -> None:
    # A minmax: a 1, b .5, c 0 ; B minmax: c 1, a 0
    fused = comb_sum([A, B])
    assert as_dict(fused) == pytest.approx({"a": 1.0, "b": 0.5, "c": 1.0})
    assert [d for d, _ in fused] == ["a", "c", "b"]


def test_combmnz_multiplies_by_hits() -> None:
    fused = comb_mnz([A, B])
    # a: 1 * 2, b: .5 * 1, c: 1 * 2
    assert as_dict(fused) == pytest.approx({"a": 2.0, "b": 0.5, "c": 2.0})


def test_combsum_none_and_weights() -> None:
    fused = comb_sum([A, B], normalization="none", weights=[0.5, 2.0])
    assert as_dict(fused) == pytest.approx({"a": 1.5 + 1.0, "b": 1.0, "c": 0.5 + 1.8})


def test_mapping_runs_equal_pair_runs() -> None:
    assert fuse([dict(A), dict(B)], "rrf") == fuse([A, B], "rrf")
    assert fuse([dict(A), dict(B)], "combmnz", normalization="zscore") == comb_mnz([A, B], normalization="zscore")


def test_outputs_are_plain_floats() -> None:
    for method in ("rrf", "borda", "combsum", "combmnz"):
        out = fuse([A, B], method)  # type: ignore[arg-type]
        assert all(type(s) is float for _, s in out)
        assert sorted(d for d, _ in out) == ["a", "b", "c"]


def test_validation() -> None:
    with pytest.raises(InvalidInputError, match="at least one run"):
        fuse([], "rrf")
    with pytest.raises(ConfigError, match="unknown fusion method"):
        fuse([A], "max")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="weights"):
        fuse([A, B], "rrf", weights=[1.0])
    with pytest.raises(ConfigError, match=">= 0"):
        fuse([A, B], "rrf", weights=[1.0, -1.0])
    with pytest.raises(ConfigError, match="k must be"):
        reciprocal_rank_fusion([A], k=-1)
    with pytest.raises(ConfigError, match="depth"):
        fuse([A], "borda", depth=0)
    with pytest.raises(InvalidInputError, match="twice"):
        fuse([[("a", 1.0), ("a", 0.5)]], "rrf")
    with pytest.raises(InvalidInputError, match="NaN"):
        fuse([[("a", float("nan"))]], "rrf")
