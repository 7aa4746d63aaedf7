"""rerank_plugins.validation: the one set of argument checks (ints, numbers, choices, optional values)."""

from __future__ import annotations

import math

import pytest

from rerank_plugins.errors import ConfigError, InvalidInputError
from rerank_plugins.validation import check_choice, check_int, check_number, is_number


def test_check_int_accepts_ints_in_range_and_names_what_it_wanted() -> None:
    assert check_int("window_size", 2, 2) == 2
    assert check_int("n", 5, 1, 5) == 5
    assert check_int("n", None, 1, optional=True) is None
    with pytest.raises(ConfigError, match=r"^window_size must be an int >= 2, got 1$"):
        check_int("window_size", 1, 2)
    with pytest.raises(ConfigError, match=r"^top_logprobs must be an int >= 1 and <= 20, got 21$"):
        check_int("top_logprobs", 21, 1, 20)
    with pytest.raises(ConfigError, match=r"^depth must be an int >= 1 or None, got 'x'$"):
        check_int("depth", "x", 1, optional=True)
    with pytest.raises(ConfigError, match="got None"):
        check_int("batch_size", None, 1)


@pytest.mark.parametrize("bad", [True, False, 2.0, 2.5, "2", float("nan"), [2]])
def test_check_int_rejects_bools_floats_and_strings(bad: object) -> None:
    with pytest.raises(ConfigError):
        check_int("x", bad, 0)


def test_check_number_bounds_nan_infinity_and_optional() -> None:
    assert check_number("t", 0, 0) == 0 and check_number("t", 3, 0) == 3 and check_number("t", 2.5, 0) == 2.5
    assert check_number("w", 1, 0, 1) == 1.0
    assert check_number("x", math.inf) == math.inf
    assert check_number("x", None, optional=True) is None
    with pytest.raises(ConfigError, match=r"^temperature must be a number > 0, got 0$"):
        check_number("temperature", 0, above=0)
    with pytest.raises(ConfigError, match=r"^k must be a finite number >= 0, got inf$"):
        check_number("k", math.inf, 0, finite=True)
    with pytest.raises(ConfigError, match=r"^w must be a number >= 0 and <= 1, got 1.5$"):
        check_number("w", 1.5, 0, 1)
    for bad in (True, "1", float("nan"), None):
        with pytest.raises(ConfigError):
            check_number("x", bad)


def test_check_choice_and_error_types() -> None:
    assert check_choice("mode", "first", ("generate", "first")) == "first"
    assert check_choice("mode", None, ("a",), optional=True) is None
    with pytest.raises(ConfigError, match=r"^mode must be one of \['generate', 'first'\], got 'fist'$"):
        check_choice("mode", "fist", ("generate", "first"))
    with pytest.raises(ConfigError):
        check_choice("mode", ["first"], ("first",))  # unhashable: still a ConfigError, never a TypeError
    with pytest.raises(InvalidInputError, match="top_k"):
        check_int("top_k", -1, 0, error=InvalidInputError)
    with pytest.raises(ValueError, match="max_entries"):
        check_int("max_entries", 0, 1, error=ValueError)


def test_is_number() -> None:
    assert is_number(1) and is_number(1.5) and is_number(math.nan)
    assert not is_number(True) and not is_number("1") and not is_number(None)
