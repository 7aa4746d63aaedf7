"""Test helpers shipped with the library: the conformance suite every reranker and adapter must pass, and a
scripted fake LLM backend."""

from .conformance import RerankerConformance
from .fake_llm import ScriptedLLM

__all__ = ["RerankerConformance", "ScriptedLLM"]
