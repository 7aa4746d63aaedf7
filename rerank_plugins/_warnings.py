"""``stacklevel`` for the library's warnings: point at the user's line, never at a line of this library.

A fixed ``stacklevel=N`` is right for one call path only: the same truncation warning is reached from
``rerank``, ``rerank_batch``, ``load_reranker``, an adapter or a loader, each with a different depth, and a wrong
level makes Python echo one of our own source lines (issue 13). :func:`caller_stacklevel` walks up from the
function that calls :func:`warnings.warn` past every frame of this package and of its framework adapters and,
when the call came through an adapter, past the host framework's own frames too: a warning raised inside a
Haystack ``Pipeline.run``, a LlamaIndex query engine or a LangChain retriever points at the user's
``pipe.run(...)`` / ``engine.query(...)`` / ``retriever.invoke(...)`` line, not at the host's internals.
"""

from __future__ import annotations

import sys

__all__ = ["caller_stacklevel"]

#: Module-name prefixes whose frames a warning skips: the core and the three adapters.
INTERNAL_PREFIXES = (
    "rerank_plugins",
    "langchain_rerank_plugins",
    "llama_index.postprocessor.rerank_plugins",
    "haystack_integrations.components.rankers.rerank_plugins",
)
#: The adapters among them: past one of these, the host framework's frames are skipped as well.
ADAPTER_PREFIXES = INTERNAL_PREFIXES[1:]
#: Module-name prefixes of the host frameworks (and the instrumentation packages they call components through).
HOST_PREFIXES = (
    "haystack",
    "llama_index",
    "llama_index_instrumentation",
    "workflows",
    "langchain",
    "langchain_core",
    "langchain_classic",
    "langchain_community",
)
#: Thread-pool plumbing (``arerank`` runs the sync path in a worker): no user frame exists in that thread, so a
#: warning reached only through these is attributed past the end of the stack (``sys:1``), not to their source.
_POOL_FILES = ("concurrent/futures/thread.py", "threading.py", "asyncio/")


def _under(name: str, prefixes: tuple[str, ...]) -> bool:
    return any(name == p or name.startswith(p + ".") for p in prefixes)


def _internal(name: str) -> bool:
    return _under(name, INTERNAL_PREFIXES)


def caller_stacklevel() -> int:
    """The ``stacklevel`` that makes :func:`warnings.warn`, called by the function that calls this, report the
    first frame outside this package and its adapters (and, reached through an adapter, outside the host)."""
    frame = sys._getframe(1)  # the function that calls warnings.warn: stacklevel 1
    level = 1
    via_adapter = False
    while frame is not None:
        name = str(frame.f_globals.get("__name__", ""))
        if _internal(name):
            via_adapter = via_adapter or _under(name, ADAPTER_PREFIXES)
        elif not (via_adapter and _under(name, HOST_PREFIXES)):
            break
        frame = frame.f_back  # type: ignore[assignment]
        level += 1
    if frame is not None and frame.f_code.co_filename.replace("\\", "/").endswith(_POOL_FILES):
        while frame is not None:
            frame = frame.f_back  # type: ignore[assignment]
            level += 1
    return level
