"""Test helpers shipped with the library, for testing code built on it: the conformance suites every reranker
and adapter must pass (:mod:`.conformance`, :mod:`.adapter_kinds`; these two need pytest), a scripted fake LLM
backend (:mod:`.fake_llm`), scripted rerankers of every LLM kind (:mod:`.kinds`), a keyword reranker
(:mod:`.rerankers`) and tiny random models (:mod:`.tiny_models`, :mod:`.tiny_llm`, :mod:`.tiny_encoders`,
:mod:`.tiny_vision`, with page screenshots in :mod:`.pages`).

Importing this package needs nothing beyond the library: ``RerankerConformance`` (which needs pytest) is loaded
on first use, so ``from rerank_plugins.testing import ScriptedLLM`` works without pytest installed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .fake_llm import ScriptedLLM

if TYPE_CHECKING:
    from .conformance import RerankerConformance

__all__ = ["RerankerConformance", "ScriptedLLM"]


def __getattr__(name: str) -> Any:
    if name == "RerankerConformance":
        from .conformance import RerankerConformance

        return RerankerConformance
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
