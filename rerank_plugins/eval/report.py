"""What a loader found wrong with its data: every problem is counted and described, never silently dropped."""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass, field

from .._warnings import caller_stacklevel
from ..errors import InvalidInputError

__all__ = ["DataFormatError", "DataWarning", "LoadReport"]


class DataFormatError(InvalidInputError):
    """A data file is malformed and the loader runs in strict mode (or the problem cannot be skipped)."""


class DataWarning(UserWarning):
    """Emitted (once per loader call and problem kind) when data was skipped or looks wrong."""


@dataclass
class LoadReport:
    """Counts of what was read and of every problem met while reading a data set, run or qrels file.

    ``counts`` holds both volume counters (``documents``, ``queries``, ``judgments``, ...) and problem counters
    (``bad_qrels_lines``, ``queries_without_judgments``, ``unknown_doc_ids`` ...); ``problems`` lists the
    problem kinds met. ``warnings`` keeps the first ``max_messages`` messages per problem kind (the counts stay
    exact). In ``strict`` mode the first problem raises :class:`DataFormatError`.
    """

    source: str
    strict: bool = False
    max_messages: int = 20
    counts: Counter[str] = field(default_factory=Counter)
    problems: Counter[str] = field(default_factory=Counter)
    warnings: list[str] = field(default_factory=list)

    def count(self, key: str, n: int = 1) -> None:
        """Add ``n`` to a volume counter (not a problem)."""
        self.counts[key] += n

    def problem(self, kind: str, message: str) -> None:
        """Record one problem of ``kind``; raises in strict mode."""
        if self.strict:
            raise DataFormatError(f"{self.source}: {message}")
        self.problems[kind] += 1
        self.counts[kind] += 1
        if self.problems[kind] <= self.max_messages:
            self.warnings.append(f"{kind}: {message}")

    @property
    def ok(self) -> bool:
        return not self.problems

    def merge(self, other: LoadReport) -> None:
        """Add another report's counts and messages into this one."""
        self.counts.update(other.counts)
        self.problems.update(other.problems)
        self.warnings.extend(f"[{other.source}] {w}" for w in other.warnings)

    def emit(self, stacklevel: int | None = None) -> None:
        """Issue one :class:`DataWarning` summarising the problems (no-op when there are none), attributed to the
        caller's line outside this package unless ``stacklevel`` is given."""
        if self.problems:
            level = caller_stacklevel() if stacklevel is None else stacklevel
            warnings.warn(self.summary(), DataWarning, stacklevel=level)

    def summary(self) -> str:
        if not self.problems:
            return f"{self.source}: no problems"
        parts = ", ".join(f"{n} {kind}" for kind, n in sorted(self.problems.items()))
        first = "; ".join(self.warnings[:3])
        return f"{self.source}: {parts} (first: {first})"

    def to_dict(self) -> dict[str, object]:
        return {
            "source": self.source,
            "counts": dict(self.counts),
            "problems": dict(self.problems),
            "warnings": list(self.warnings),
        }
