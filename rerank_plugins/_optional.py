"""Lazy imports of optional dependencies with errors that name the extra to install."""

from __future__ import annotations

import importlib
from types import ModuleType

from .errors import MissingDependencyError

__all__ = ["is_available", "require"]


def require(module: str, extra: str, *, purpose: str | None = None) -> ModuleType:
    """Import ``module`` or raise :class:`MissingDependencyError` naming the ``extra`` that provides it.

    The original ``ImportError`` is kept as ``__cause__``.
    """
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        what = f" for {purpose}" if purpose else ""
        raise MissingDependencyError(
            f"{module!r} is needed{what} but could not be imported ({exc}). "
            f"Install it with: pip install 'rerank-plugins[{extra}]'",
            extra=extra,
            module=module,
        ) from exc


def is_available(module: str) -> bool:
    """True when ``module`` can be imported (without importing it if it is not loaded yet)."""
    import importlib.util
    import sys

    if module in sys.modules:
        return True
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False
