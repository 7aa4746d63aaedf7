"""Test helpers shipped with the library: the conformance suite every reranker and adapter must pass."""

from .conformance import RerankerConformance

__all__ = ["RerankerConformance"]
