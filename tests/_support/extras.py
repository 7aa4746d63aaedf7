"""The check every "missing optional dependency" test makes."""

from __future__ import annotations

import sys
from collections.abc import Callable

import pytest

from rerank_plugins.errors import MissingDependencyError

__all__ = ["assert_names_the_extra"]


def assert_names_the_extra(
    monkeypatch: pytest.MonkeyPatch, module: str, extra: str, build: Callable[[], object]
) -> None:
    """With ``module`` made unimportable, ``build()`` raises :class:`MissingDependencyError` naming
    ``rerank-plugins[extra]`` and carrying ``extra``."""
    monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(MissingDependencyError, match=rf"rerank-plugins\[{extra}\]") as info:
        build()
    assert info.value.extra == extra
