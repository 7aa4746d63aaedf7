"""Session fixtures: tiny random models saved once per session, and the real bundled MiniLM loaded once."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def _needs_hf() -> None:
    # Per fixture, not at module level: other test modules in this folder need neither torch nor
    # sentence-transformers and must still run without them.
    pytest.importorskip("torch")
    pytest.importorskip("sentence_transformers")


@pytest.fixture(scope="session")
def tiny_ce_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _needs_hf()
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce-1"), num_labels=1)


@pytest.fixture(scope="session")
def tiny_ce2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _needs_hf()
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("tiny-ce-2"), num_labels=2)


@pytest.fixture(scope="session")
def tiny_st_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _needs_hf()
    from rerank_plugins.testing.tiny_models import build_tiny_sentence_transformer

    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("tiny-st"))


@pytest.fixture(scope="session")
def minilm_reranker() -> Any:
    """The real bundled MiniLM embedding reranker (tests using it are marked ``slow``)."""
    _needs_hf()
    from rerank_plugins import load_reranker

    return load_reranker("minilm")


@pytest.fixture(scope="session")
def tiny_llama_backend(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A transformers backend on a tiny random Llama with SmolLM2's byte-level BPE tokenizer (built once)."""
    _needs_hf()
    from rerank_plugins.backends.transformers import TransformersLLMBackend
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm, save_smollm2_tokenizer

    tok = save_smollm2_tokenizer(tmp_path_factory.mktemp("tok"))
    path: Path = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny-llama"), tok, arch="llama")
    return TransformersLLMBackend(path, device="cpu")
