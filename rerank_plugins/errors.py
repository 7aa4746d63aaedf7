"""Exception hierarchy of rerank-plugins.

Every error the library raises on purpose derives from :class:`RerankError`, and each also derives from the
built-in exception a caller would naturally catch (``ValueError`` for bad input, ``ImportError`` for a missing
optional dependency, ``FileNotFoundError`` for a model path that does not exist).
"""

from __future__ import annotations

__all__ = [
    "BackendError",
    "ConfigError",
    "InvalidInputError",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ModelOutputError",
    "RerankError",
]


class RerankError(Exception):
    """Base class of every error raised by rerank-plugins."""


class ConfigError(RerankError, ValueError):
    """A reranker was configured with an invalid option (unknown name, bad window size, ...)."""


class InvalidInputError(RerankError, ValueError):
    """The query or the candidates given to ``rerank`` are invalid (empty query, wrong types, duplicate ids)."""


class ModelNotFoundError(ConfigError, FileNotFoundError):
    """A model name, hub id or local path could not be resolved to weights."""


class MissingDependencyError(RerankError, ImportError):
    """An optional dependency is not installed; the message names the extra that provides it."""

    def __init__(self, message: str, *, extra: str | None = None, module: str | None = None) -> None:
        super().__init__(message)
        self.extra = extra
        self.module = module


class BackendError(RerankError, RuntimeError):
    """A model backend failed (server unreachable, out of memory after back-off, ...)."""


class ModelOutputError(RerankError):
    """A model produced output that cannot be used (garbage, truncated reasoning, empty answer).

    ``raw_text`` keeps the model's full output so the caller can inspect it.
    """

    def __init__(self, message: str, *, raw_text: str | None = None) -> None:
        super().__init__(message)
        self.raw_text = raw_text
