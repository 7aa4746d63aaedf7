"""load_llm_backend: pass-through, dispatch, and the process-wide cache (one load per model and device)."""

from __future__ import annotations

from pathlib import Path

import pytest

from rerank_plugins.backends.loader import cached_llm_backends, clear_llm_backend_cache, load_llm_backend
from rerank_plugins.errors import ConfigError, ModelNotFoundError
from rerank_plugins.testing import ScriptedLLM


def test_backend_instances_pass_through() -> None:
    fake = ScriptedLLM(outputs=["[1]"])
    assert load_llm_backend(fake) is fake
    assert load_llm_backend(fake, device=None) is fake
    with pytest.raises(ConfigError, match="already built"):
        load_llm_backend(fake, device="cpu")


def test_unknown_backend_and_missing_model() -> None:
    with pytest.raises(ConfigError, match="unknown LLM backend"):
        load_llm_backend("x/y", backend="onnx")
    with pytest.raises(ModelNotFoundError):
        load_llm_backend("/no/such/folder")


def test_transformers_backends_are_cached_per_model_device_dtype(tiny_llm_dir: Path) -> None:
    pytest.importorskip("torch")
    clear_llm_backend_cache()
    try:
        a = load_llm_backend(str(tiny_llm_dir))
        b = load_llm_backend(tiny_llm_dir, device="cpu", dtype="float32")  # the same once resolved
        assert a is b
        assert cached_llm_backends() == [a]
        c = load_llm_backend(tiny_llm_dir, dtype="bfloat16")
        assert c is not a and str(c.dtype) == "torch.bfloat16"  # type: ignore[attr-defined]
        d = load_llm_backend(tiny_llm_dir, batch_size=2)
        assert d is not a
        assert load_llm_backend(tiny_llm_dir, cache=False) is not a
    finally:
        clear_llm_backend_cache()
    assert cached_llm_backends() == []


def test_openai_dispatch_is_lazy_and_passes_the_name() -> None:
    pytest.importorskip("httpx")
    backend = load_llm_backend("served-model", backend="openai", base_url="http://127.0.0.1:9/v1")
    assert type(backend).__name__ == "OpenAIBackend"
    assert backend.model_id == "openai:served-model"
    backend.close()


def test_backend_modules_import_without_torch() -> None:
    import subprocess
    import sys

    code = (
        "import sys, rerank_plugins\n"
        "import rerank_plugins.backends.loader, rerank_plugins.backends.transformers, rerank_plugins.backends.vllm\n"
        "rerank_plugins.load_llm_backend\n"
        "assert 'torch' not in sys.modules and 'transformers' not in sys.modules and 'vllm' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
