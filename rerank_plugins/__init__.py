"""rerank-plugins: research-grade rerankers as drop-in components for RAG pipelines.

``import rerank_plugins`` is light: it never imports torch or transformers. Strategies are loaded on first use,
through :func:`load_reranker` or by attribute access (``rerank_plugins.CrossEncoderReranker``).
"""

from __future__ import annotations

import importlib
from typing import Any

from .base import Reranker, Scores, ScoresLike, scores_from_order
from .errors import (
    BackendError,
    ConfigError,
    InvalidInputError,
    MissingDependencyError,
    ModelNotFoundError,
    ModelOutputError,
    RerankError,
)
from .models import (
    ModelRef,
    bundled_models,
    load_reranker,
    register_model,
    register_strategy,
    strategies,
)
from .types import Candidate, Query, RankedList, ScoredCandidate, WindowTrace

__version__ = "0.1.0"

# Heavy classes, imported on first attribute access (PEP 562).
_LAZY: dict[str, str] = {
    "CrossEncoderReranker": "rerank_plugins.rankers.cross_encoder",
    "EmbeddingReranker": "rerank_plugins.rankers.embedding",
    "ScoreCache": "rerank_plugins.engine.cache",
    "FusionReranker": "rerank_plugins.rankers.fusion",
    "CascadeReranker": "rerank_plugins.rankers.cascade",
    "VectorPRFReranker": "rerank_plugins.rankers.prf_vector",
    "TextPRFReranker": "rerank_plugins.rankers.prf_text",
    "E2RankReranker": "rerank_plugins.rankers.e2rank",
    "InsertRankReranker": "rerank_plugins.rankers.insertrank",
    "PairwiseReranker": "rerank_plugins.rankers.pairwise",
    "RatingJudgeReranker": "rerank_plugins.rankers.pairwise",
    # the module is private (_classify): a public submodule named "classify" would shadow the function of that
    # name once anything imported it (the import system binds a submodule as an attribute of its package)
    "LabelClassifier": "rerank_plugins._classify",
    "classify": "rerank_plugins._classify",
    "Classification": "rerank_plugins._classify",
    "LabelScore": "rerank_plugins._classify",
    "ListwiseReranker": "rerank_plugins.rankers.listwise",
    "FirstReranker": "rerank_plugins.rankers.listwise",
    "ReasoningReranker": "rerank_plugins.rankers.reasoning",
    "PointwiseLLMReranker": "rerank_plugins.rankers.pointwise_llm",
    "YesNoLLMReranker": "rerank_plugins.rankers.pointwise_llm",
    "GradedLLMReranker": "rerank_plugins.rankers.pointwise_llm",
    "VisionYesNoReranker": "rerank_plugins.rankers.vision_yes_no",
    "VisionReasoningReranker": "rerank_plugins.rankers.vision_reasoning",
    "ClipReranker": "rerank_plugins.rankers.clip",
    "load_llm_backend": "rerank_plugins.backends.loader",
    "TransformersLLMBackend": "rerank_plugins.backends.transformers",
    "OpenAIBackend": "rerank_plugins.backends.openai",
    "RemoteReranker": "rerank_plugins.rankers.remote",
    "ImageLimits": "rerank_plugins.images",
}

__all__ = [
    "__version__",
    "Reranker",
    "Scores",
    "ScoresLike",
    "scores_from_order",
    "Query",
    "Candidate",
    "ScoredCandidate",
    "RankedList",
    "WindowTrace",
    "RerankError",
    "ConfigError",
    "InvalidInputError",
    "ModelNotFoundError",
    "MissingDependencyError",
    "BackendError",
    "ModelOutputError",
    "ModelRef",
    "load_reranker",
    "register_strategy",
    "register_model",
    "strategies",
    "bundled_models",
    *_LAZY,
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'rerank_plugins' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
