"""Passage identifier schemes for listwise prompts: ``[1] [2] ...``, ``[A] [B] ...`` or ``[a] [b] ...``.

A scheme maps the 0-based position of a passage inside a window to the label shown to the model, and back.
Listwise prompts (RankGPT, RankZephyr) use numbers; FIRST uses letters because each must be a single token so
the ranking can be read from the logits of the first generated token (:mod:`rerank_plugins.engine.logits`).
"""

from __future__ import annotations

import string
from dataclasses import dataclass

from ..errors import ConfigError

__all__ = ["SCHEMES", "IdScheme", "get_scheme"]


@dataclass(frozen=True)
class IdScheme:
    """A family of passage labels.

    ``alphabet`` is ``None`` for numbers (``"1"``, ``"2"``, ... without limit), else the ordered label
    characters. ``case_sensitive`` is False when the alphabet has a single letter case, so a model that
    answers ``[c]`` for ``[C]`` is understood.
    """

    name: str
    alphabet: str | None = None
    #: how the prompt describes the labels ("numerical", "alphabetical")
    kind: str = "numerical"

    @property
    def capacity(self) -> int | None:
        """Largest window the scheme can label (``None``: unlimited)."""
        return None if self.alphabet is None else len(self.alphabet)

    @property
    def case_sensitive(self) -> bool:
        if self.alphabet is None:
            return True
        return self.alphabet.lower() != self.alphabet and self.alphabet.upper() != self.alphabet

    def check_size(self, n: int) -> None:
        if self.capacity is not None and n > self.capacity:
            raise ConfigError(
                f"identifier scheme {self.name!r} labels at most {self.capacity} passages, but a window has {n}"
            )

    def label(self, index: int) -> str:
        """Label of the passage at 0-based ``index``."""
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        if self.alphabet is None:
            return str(index + 1)
        if index >= len(self.alphabet):
            raise ConfigError(f"identifier scheme {self.name!r} has no label for position {index}")
        return self.alphabet[index]

    def labels(self, n: int) -> list[str]:
        self.check_size(n)
        return [self.label(i) for i in range(n)]

    def index(self, token: str) -> int | None:
        """0-based position for a label as written by the model, or ``None`` when it is not a label of the
        scheme at all (out-of-range numbers still map to their index so the caller can count them)."""
        if self.alphabet is None:
            if not token.isdecimal():
                return None
            return int(token) - 1
        if len(token) != 1:
            return None
        if token in self.alphabet:
            return self.alphabet.index(token)
        if not self.case_sensitive:
            swapped = token.swapcase()
            if swapped in self.alphabet:
                return self.alphabet.index(swapped)
        return None

    def example(self, n: int) -> str:
        """The ``[2] > [1]`` style example used in prompts (RankZephyr's wording), in this scheme."""
        if n < 2:
            return f"[{self.label(0)}]"
        return f"[{self.label(1)}] > [{self.label(0)}]"


SCHEMES: dict[str, IdScheme] = {
    "numeric": IdScheme("numeric", None, "numerical"),
    "upper": IdScheme("upper", string.ascii_uppercase, "alphabetical"),
    "lower": IdScheme("lower", string.ascii_lowercase, "alphabetical"),
    "mixed": IdScheme("mixed", string.ascii_uppercase + string.ascii_lowercase, "alphabetical"),
}


def get_scheme(name: str | IdScheme) -> IdScheme:
    if isinstance(name, IdScheme):
        return name
    try:
        return SCHEMES[name]
    except KeyError:
        raise ConfigError(f"unknown identifier scheme {name!r}; known: {sorted(SCHEMES)}") from None
