"""Argument checks shared by every layer: ints, numbers, choices, and optional values (``None`` = not given).

Pure Python, imports nothing but :mod:`rerank_plugins.errors`, so the engine, the backends and the rankers all
use it. ``bool`` is never accepted as a number (``True`` is an ``int`` in Python, never a window size), and NaN
never passes a bound. Each check returns the value it was given (typed as given), so it can be assigned
directly::

    self.batch_size = check_int("batch_size", batch_size, 1)
    self.max_words = check_int("max_passage_words", max_passage_words, 1, optional=True)
    self.temperature = float(check_number("temperature", temperature, above=0))
    self.mode = check_choice("mode", mode, ("generate", "first"))

Errors are :class:`~rerank_plugins.errors.ConfigError` by default (a constructor option); per-call arguments
(``top_k``, ``score_threshold``) pass ``error=InvalidInputError``. The message names the argument, what it must
be and what it got: ``window_size must be an int >= 2, got 1``.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Iterable, Mapping
from typing import TypeGuard, TypeVar

from .errors import ConfigError

__all__ = [
    "check_api_keys", "check_bool", "check_choice", "check_instance", "check_int", "check_mapping", "check_number",
    "check_stop", "check_strings", "check_that", "check_url", "is_number",
]

_T = TypeVar("_T")


def is_number(value: object) -> TypeGuard[int | float]:
    """``int`` or ``float`` and not ``bool``."""
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _bounds(minimum: float | None, maximum: float | None, above: float | None) -> str:
    parts = []
    if above is not None:
        parts.append(f"> {above}")
    if minimum is not None:
        parts.append(f">= {minimum}")
    if maximum is not None:
        parts.append(f"<= {maximum}")
    return (" " + " and ".join(parts)) if parts else ""


def _within(value: float, minimum: float | None, maximum: float | None, above: float | None) -> bool:
    return (
        (above is None or value > above)
        and (minimum is None or value >= minimum)
        and (maximum is None or value <= maximum)
    )


def check_int(
    name: str,
    value: _T,
    minimum: int | None = None,
    maximum: int | None = None,
    *,
    optional: bool = False,
    error: type[Exception] = ConfigError,
) -> _T:
    """``value`` when it is an ``int`` (not ``bool``) within ``[minimum, maximum]``; ``None`` too if ``optional``."""
    if value is None and optional:
        return value
    if isinstance(value, bool) or not isinstance(value, int) or not _within(value, minimum, maximum, None):
        raise error(f"{name} must be an int{_bounds(minimum, maximum, None)}{' or None' if optional else ''}, "
                    f"got {value!r}")
    return value


def check_number(
    name: str,
    value: _T,
    minimum: float | None = None,
    maximum: float | None = None,
    *,
    above: float | None = None,
    finite: bool = False,
    optional: bool = False,
    error: type[Exception] = ConfigError,
) -> _T:
    """``value`` when it is an ``int``/``float`` (not ``bool``, never NaN) within the bounds (``above``: strictly
    greater); ``finite`` also rejects infinities; ``None`` passes when ``optional``."""
    if value is None and optional:
        return value
    ok = is_number(value) and not math.isnan(value) and _within(value, minimum, maximum, above)
    if not ok or (finite and not math.isfinite(value)):  # type: ignore[arg-type]
        what = "a finite number" if finite else "a number"
        raise error(f"{name} must be {what}{_bounds(minimum, maximum, above)}{' or None' if optional else ''}, "
                    f"got {value!r}")
    return value


def check_choice(
    name: str, value: _T, choices: Iterable[str], *, optional: bool = False, error: type[Exception] = ConfigError
) -> _T:
    """``value`` when it is one of ``choices`` (``None`` too if ``optional``)."""
    options = list(choices)
    if (value is None and optional) or (isinstance(value, str) and value in options):
        return value
    raise error(f"{name} must be one of {options}{' or None' if optional else ''}, got {value!r}")


def check_bool(name: str, value: _T, *, optional: bool = False, error: type[Exception] = ConfigError) -> _T:
    """``value`` when it is a ``bool`` (``None`` too if ``optional``); ``0`` / ``"yes"`` are refused."""
    if (value is None and optional) or isinstance(value, bool):
        return value
    raise error(f"{name} must be a bool{' or None' if optional else ''}, got {value!r}")


def check_strings(name: str, value: object, *, optional: bool = False,
                  error: type[Exception] = ConfigError) -> tuple[str, ...]:
    """One string or several as a tuple: a ``str`` is ONE item, a list, tuple or set of ``str`` is several (``None``:
    none, when ``optional``); bytes, numbers or a list holding them are refused."""
    if value is None and optional:
        return ()
    if isinstance(value, str):
        return (value,)
    if (isinstance(value, Collection) and not isinstance(value, (bytes, Mapping))
            and all(isinstance(s, str) for s in value)):
        return tuple(value)
    raise error(f"{name} must be a string or a list of strings{' or None' if optional else ''}, got {value!r}")


def check_stop(name: str, value: object, *, error: type[Exception] = ConfigError) -> tuple[str, ...]:
    """Stop sequences as a tuple (:func:`check_strings`): a ``str`` is ONE stop sequence (``"\\n\\n"`` stops at a
    blank line, never at each ``"\\n"``), a list of ``str`` is several, ``None`` is none. Empty strings stop
    nothing and are dropped."""
    return tuple(s for s in check_strings(name, value, optional=True, error=error) if s)


def check_mapping(name: str, value: _T, *, optional: bool = False, error: type[Exception] = ConfigError) -> _T:
    """``value`` when it is a mapping (a ``dict`` of options such as ``model_kwargs``; ``None`` too if
    ``optional``)."""
    if (value is None and optional) or isinstance(value, Mapping):
        return value
    raise error(f"{name} must be a dict{' or None' if optional else ''}, got {value!r}")


def check_url(name: str, value: _T, *, error: type[Exception] = ConfigError) -> _T:
    """``value`` when it is an ``http://`` or ``https://`` URL with a host."""
    if isinstance(value, str) and value.startswith(("http://", "https://")) and value.split("//", 1)[1].strip("/"):
        return value
    raise error(f"{name} must be an http(s) URL, got {value!r}")


def check_that(name: str, value: _T, ok: bool, what: str, *, error: type[Exception] = ConfigError) -> _T:
    """``value`` when ``ok`` (a test the caller made, e.g. ``callable(value)``); else the error saying that
    ``name`` must be ``what`` (``"a path, a hub id or a tokenizer object"``)."""
    if ok:
        return value
    raise error(f"{name} must be {what}, got {value!r}")


# ----------------------------------------------------------------------------------------------------------------
# The service's checks (rerank_plugins/serve/*; kept in their own block, apart from the checks above)


def check_instance(name: str, value: _T, types: type | tuple[type, ...], what: str, *,
                   error: type[Exception] = ConfigError) -> _T:
    """``value`` when it is an instance of ``types``; ``what`` says what was expected (``"a Reranker or a name"``)."""
    if not isinstance(value, types):
        raise error(f"{name} must be {what}, got {type(value).__name__}")
    return value


def check_api_keys(name: str, keys: str | Iterable[str] | None, *, error: type[Exception] = ConfigError) -> list[str]:
    """API keys as a list: one key or several, each a non-empty ``str`` without whitespace (``None``: none)."""
    if keys is None:
        return []
    items = [keys] if isinstance(keys, str) else list(keys)
    for key in items:
        if not isinstance(key, str) or not key.strip():
            raise error(f"{name} must be non-empty strings, got {key!r}")
        if any(c.isspace() for c in key):
            raise error(f"{name} must not contain whitespace")
    return items
