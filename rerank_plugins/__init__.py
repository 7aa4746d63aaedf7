"""rerank-plugins: research-grade rerankers as drop-in components for RAG pipelines.

``import rerank_plugins`` is light: it never imports torch or transformers. Strategies are loaded on first use,
through :func:`load_reranker` or by attribute access (``rerank_plugins.CrossEncoderReranker``).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from .base import BatchedReranker, Reranker, Scores, ScoresLike, scores_from_order
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

if TYPE_CHECKING:
    # What a type checker reads: the names of _LAZY below, imported for real only on first attribute access
    # (tests/test_public_api.py checks that these imports, _LAZY and __all__ agree).
    from ._classify import (
        Classification,
        LabelClassifier,
        LabelScore,
        classify,
    )
    from .backends.loader import load_llm_backend
    from .backends.openai import OpenAIBackend
    from .backends.transformers import TransformersLLMBackend
    from .engine.cache import ScoreCache
    from .images import ImageLimits
    from .rankers.cascade import CascadeReranker
    from .rankers.clip import ClipReranker
    from .rankers.cross_encoder import CrossEncoderReranker
    from .rankers.e2rank import E2RankReranker
    from .rankers.embedding import EmbeddingReranker
    from .rankers.fusion import FusionReranker
    from .rankers.insertrank import InsertRankReranker
    from .rankers.late_interaction import ColBERTReranker
    from .rankers.listwise import FirstReranker, ListwiseReranker
    from .rankers.pairwise import PairwiseReranker, RatingJudgeReranker
    from .rankers.pointwise_llm import (
        GradedLLMReranker,
        PointwiseLLMReranker,
        YesNoLLMReranker,
    )
    from .rankers.prf_text import TextPRFReranker
    from .rankers.prf_vector import VectorPRFReranker
    from .rankers.reasoning import ReasoningReranker
    from .rankers.remote import RemoteReranker
    from .rankers.seq2seq import DuoT5Reranker, MonoT5Reranker
    from .rankers.vision_reasoning import VisionReasoningReranker
    from .rankers.vision_yes_no import VisionYesNoReranker

__version__ = "0.1.0"

# Heavy classes, imported on first attribute access (PEP 562).
_LAZY: dict[str, str] = {
    "CrossEncoderReranker": "rerank_plugins.rankers.cross_encoder",
    "EmbeddingReranker": "rerank_plugins.rankers.embedding",
    "MonoT5Reranker": "rerank_plugins.rankers.seq2seq",
    "DuoT5Reranker": "rerank_plugins.rankers.seq2seq",
    "ColBERTReranker": "rerank_plugins.rankers.late_interaction",
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
    "BackendError",
    "BatchedReranker",
    "Candidate",
    "CascadeReranker",
    "Classification",
    "ClipReranker",
    "ColBERTReranker",
    "ConfigError",
    "CrossEncoderReranker",
    "DuoT5Reranker",
    "E2RankReranker",
    "EmbeddingReranker",
    "FirstReranker",
    "FusionReranker",
    "GradedLLMReranker",
    "ImageLimits",
    "InsertRankReranker",
    "InvalidInputError",
    "LabelClassifier",
    "LabelScore",
    "ListwiseReranker",
    "MissingDependencyError",
    "ModelNotFoundError",
    "ModelOutputError",
    "ModelRef",
    "MonoT5Reranker",
    "OpenAIBackend",
    "PairwiseReranker",
    "PointwiseLLMReranker",
    "Query",
    "RankedList",
    "RatingJudgeReranker",
    "ReasoningReranker",
    "RemoteReranker",
    "RerankError",
    "Reranker",
    "ScoreCache",
    "ScoredCandidate",
    "Scores",
    "ScoresLike",
    "TextPRFReranker",
    "TransformersLLMBackend",
    "VectorPRFReranker",
    "VisionReasoningReranker",
    "VisionYesNoReranker",
    "WindowTrace",
    "YesNoLLMReranker",
    "__version__",
    "bundled_models",
    "classify",
    "load_llm_backend",
    "load_reranker",
    "register_model",
    "register_strategy",
    "scores_from_order",
    "strategies",
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
