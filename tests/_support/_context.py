"""The ``with`` protocol the local test servers share: start on entry, stop on exit."""

from __future__ import annotations

from abc import ABC, abstractmethod
from types import TracebackType
from typing import TypeVar

_S = TypeVar("_S", bound="StartStop")


class StartStop(ABC):
    """A server used as ``with Server(...) as server:``; :meth:`start` returns the server, :meth:`stop` ends it."""

    @abstractmethod
    def start(self: _S) -> _S: ...

    @abstractmethod
    def stop(self) -> None: ...

    def __enter__(self: _S) -> _S:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
