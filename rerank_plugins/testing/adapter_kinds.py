"""Every core reranker kind through one framework adapter: the same order, scores, reasoning and window traces
as the bare engine. Shared by the LlamaIndex, Haystack and LangChain adapter tests (needs pytest).

Subclass :class:`AdapterKindsSuite` in a ``Test*`` class and implement :meth:`~AdapterKindsSuite.build` (the
adapter over a built reranker or a model path) and :meth:`~AdapterKindsSuite.run` (rerank the sample candidates
through it and return ``(id, score, metadata)`` per returned document, best first):

.. code-block:: python

    class TestKinds(AdapterKindsSuite):
        def build(self, model, *, kind=None, top_n=None):
            return RerankPluginsCompressor(model=model, kind=kind, top_n=top_n)

        def run(self, adapter, query, candidates, asynchronous):
            ...
"""

from __future__ import annotations

import abc
import asyncio
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..base import Reranker
from ..types import Candidate, RankedList
from .conformance import sample_candidates
from .kinds import LLM_KINDS, scripted_reranker

__all__ = ["AdapterKindsSuite", "run_maybe_async"]

_T = TypeVar("_T")

QUERY = "What causes shock waves around supersonic aircraft?"
#: kinds that rerank in windows (their traces reach the adapter's metadata)
WINDOWED = {"listwise", "first", "reasoning"}
Returned = list[tuple[str, float, Mapping[str, Any]]]
_TINY_DIRS: dict[str, dict[str, Path]] = {}


def run_maybe_async(asynchronous: bool, sync: Callable[[], _T], coroutine: Callable[[], Coroutine[Any, Any, _T]]) -> _T:
    """``asyncio.run(coroutine())`` when ``asynchronous``, else ``sync()``."""
    return asyncio.run(coroutine()) if asynchronous else sync()


class AdapterKindsSuite(abc.ABC):
    """Parity of every LLM kind (scripted fake LLM) and of the cross-encoder and embedding kinds (tiny random models,
    configured by name) between the bare engine and the adapter, sync and async."""

    @abc.abstractmethod
    def build(self, model: Reranker | str, *, kind: str | None = None, top_n: int | None = None) -> Any:
        """The adapter over ``model`` (a built reranker, or a path loaded with ``kind``), keeping ``top_n``."""

    @abc.abstractmethod
    def run(self, adapter: Any, query: str, candidates: Sequence[Candidate], asynchronous: bool) -> Returned:
        """Rerank ``candidates`` (as host documents) through ``adapter``; ``(id, score, metadata)`` best first."""

    @pytest.fixture
    def tiny_dirs(self, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
        pytest.importorskip("sentence_transformers")
        key = str(tmp_path_factory.getbasetemp())
        if key not in _TINY_DIRS:  # built once per test session
            from .tiny_models import build_tiny_cross_encoder, build_tiny_sentence_transformer

            _TINY_DIRS[key] = {
                "cross-encoder": build_tiny_cross_encoder(tmp_path_factory.mktemp("adapter-ce")),
                "embedding": build_tiny_sentence_transformer(tmp_path_factory.mktemp("adapter-st")),
            }
        return _TINY_DIRS[key]

    @staticmethod
    def check(bare: RankedList, out: Returned) -> None:
        assert [i for i, _, _ in out] == bare.ids
        assert [s for _, s, _ in out] == pytest.approx(bare.scores, abs=1e-6)
        for (_, _, meta), r in zip(out, bare.results):
            assert meta["rerank_rank"] == r.rank
            assert meta.get("rerank_reasoning") == r.reasoning
            windows = [t for t in bare.traces if r.id in t.input_ids]
            assert [w["output_ids"] for w in meta.get("rerank_windows", [])] == [list(t.output_ids) for t in windows]

    @pytest.mark.parametrize("asynchronous", [False, True])
    @pytest.mark.parametrize("kind", LLM_KINDS)
    def test_llm_kinds_match_the_bare_engine(self, kind: str, asynchronous: bool) -> None:
        # small windows, so a list of six needs several overlapping windows
        reranker = scripted_reranker(kind, **({"window_size": 4, "stride": 2} if kind in WINDOWED else {}))
        bare = reranker.rerank(QUERY, sample_candidates(), top_k=5)
        out = self.run(self.build(reranker, top_n=5), QUERY, sample_candidates(), asynchronous)
        self.check(bare, out)
        if kind == "reasoning":
            assert out[0][2].get("rerank_reasoning")
        if kind in WINDOWED:
            assert len(bare.traces) > 1

    @pytest.mark.parametrize("asynchronous", [False, True])
    @pytest.mark.parametrize("kind", ["cross-encoder", "embedding"])
    def test_model_kinds_by_name_match_the_bare_engine(
        self, kind: str, asynchronous: bool, tiny_dirs: dict[str, Path]
    ) -> None:
        from ..models import load_reranker

        bare = load_reranker(str(tiny_dirs[kind]), kind=kind).rerank(QUERY, sample_candidates(), top_k=5)
        out = self.run(self.build(str(tiny_dirs[kind]), kind=kind, top_n=5), QUERY, sample_candidates(), asynchronous)
        self.check(bare, out)
