"""The three framework-free pieces every framework adapter needs (LlamaIndex, Haystack, LangChain).

An adapter converts the host's documents to :class:`~rerank_plugins.types.Candidate` objects, calls a
:class:`~rerank_plugins.base.Reranker`, and turns the :class:`~rerank_plugins.types.RankedList` back into host
documents. Everything that is not host-specific lives here, so the adapters hold no logic of their own and the
three behave the same:

* :func:`build_reranker` - a reranker from a name, path or hub id (through :func:`~rerank_plugins.load_reranker`)
  or an already-built :class:`~rerank_plugins.base.Reranker`, used as is (re-exported from
  :mod:`rerank_plugins.models`, the one implementation the service, the Ray job and the composed rankers use too);
* :func:`candidate_ids` - the host's document ids when every document has one and they are unique, else the
  positions ``"0", "1", ...`` (so duplicates in a host list are reranked, never rejected or merged);
* :func:`result_metadata` - for each result, the plain (JSON-serialisable) metadata an adapter adds to the
  document it returns: ``rerank_rank`` always; ``rerank_reasoning``, ``rerank_details`` and ``rerank_windows``
  (the listwise windows the document took part in) when the strategy produced them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from .models import build_reranker
from .types import RankedList, WindowTrace

__all__ = [
    "DETAILS_KEY",
    "RANK_KEY",
    "REASONING_KEY",
    "RESULT_KEYS",
    "WINDOWS_KEY",
    "build_reranker",
    "candidate_ids",
    "result_metadata",
]

RANK_KEY = "rerank_rank"
REASONING_KEY = "rerank_reasoning"
DETAILS_KEY = "rerank_details"
WINDOWS_KEY = "rerank_windows"
#: Every metadata key :func:`result_metadata` may set.
RESULT_KEYS = (RANK_KEY, REASONING_KEY, DETAILS_KEY, WINDOWS_KEY)


def candidate_ids(host_ids: Sequence[Any]) -> list[str]:
    """The host's ids (as ``str``) when every one is present and they are unique, else positions as ``str``."""
    ids = [None if i is None else str(i) for i in host_ids]
    if all(i is not None for i in ids) and len(set(ids)) == len(ids):
        return ids  # type: ignore[return-value]
    return [str(p) for p in range(len(ids))]


def _plain(value: Any) -> Any:
    """Read-only mappings and tuples as plain dicts and lists, recursively (hosts copy and serialise metadata)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _window(trace: WindowTrace) -> dict[str, Any]:
    return {
        "pass": trace.pass_index,
        "start": trace.start,
        "end": trace.end,
        "input_ids": list(trace.input_ids),
        "output_ids": list(trace.output_ids),
        "raw_output": trace.raw_output,
        "reasoning": trace.reasoning,
        "repairs": dict(trace.repairs),
        "failed": trace.failed,
        "error": trace.error,
    }


def result_metadata(ranked: RankedList) -> list[dict[str, Any]]:
    """One fresh metadata dict per entry of ``ranked.results`` (same order); see the module docstring."""
    windows: dict[str, list[int]] = {}
    for index, trace in enumerate(ranked.traces):
        for cid in trace.input_ids:
            windows.setdefault(cid, []).append(index)
    out: list[dict[str, Any]] = []
    for item in ranked.results:
        meta: dict[str, Any] = {RANK_KEY: item.rank}
        if item.reasoning is not None:
            meta[REASONING_KEY] = item.reasoning
        if item.details:
            meta[DETAILS_KEY] = _plain(item.details)
        if item.id in windows:
            meta[WINDOWS_KEY] = [_window(ranked.traces[i]) for i in windows[item.id]]
        out.append(meta)
    return out
