"""Texts and helpers shared by the long-document tests of each strategy (issue 20): a needle sentence among
filler, short passages that fit every model, and results by candidate id."""

from __future__ import annotations

from typing import Any

QUERY = "why do shock waves form?"
FILLER = "boiling pasta in salted water takes ten minutes. "
NEEDLE = "Shock waves form when an aircraft exceeds the speed of sound. "
SHORT = ["lift on a wing", "drag near mach one"]


def by_id(result: Any) -> dict[str, Any]:
    """A ranked list's results keyed by candidate id."""
    return {r.id: r for r in result.results}
