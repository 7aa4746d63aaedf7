"""Every backend constructor argument is checked by a rerank_plugins.validation helper (issue 24): a wrong type or
value is a ConfigError naming the argument, raised before anything is loaded (no model, no tokenizer, no vLLM
import, no HTTP request). Before, ``TransformersLLMBackend(..., batch_size="8")`` raised a bare ``TypeError`` from
``"8" < 1`` and ``VLLMBackend(..., max_logprobs="8")`` the missing-extra error first."""

from __future__ import annotations

from typing import Any

import pytest

from rerank_plugins.backends import transformers as transformers_backend
from rerank_plugins.backends.openai import OpenAIBackend
from rerank_plugins.backends.transformers import TransformersLLMBackend
from rerank_plugins.backends.vllm import VLLMBackend
from rerank_plugins.errors import ConfigError


@pytest.fixture(autouse=True)
def nothing_is_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("a model was loaded before the arguments were checked")

    monkeypatch.setattr(transformers_backend, "load_causal_lm", refuse)
    monkeypatch.setattr(transformers_backend, "resolve_model", refuse)
    monkeypatch.setattr("rerank_plugins.backends.vllm.resolve_model", refuse)
    monkeypatch.setattr("rerank_plugins.backends.openai._load_tokenizer", refuse)


TRANSFORMERS = [
    {"batch_size": "8"}, {"batch_size": 0}, {"batch_size": True}, {"max_batch_tokens": 0.5},
    {"context_length": "4096"}, {"trust_remote_code": "yes"}, {"cache_conversion": 1}, {"progress": None},
    {"generation_kwargs": ["top_p"]}, {"model_kwargs": "dtype=auto"}, {"tokenizer_kwargs": 3},
    {"add_special_tokens": "yes"},
]
VLLM = [
    {"max_logprobs": "8"}, {"tensor_parallel_size": 0}, {"gpu_memory_utilization": 1.5},
    {"gpu_memory_utilization": 0}, {"max_model_len": "8k"}, {"seed": 1.0}, {"trust_remote_code": 1},
    {"progress": "no"}, {"llm_kwargs": [("enforce_eager", True)]}, {"add_special_tokens": 0},
]
OPENAI = [
    {"top_logprobs": "8"}, {"top_logprobs": 0}, {"endpoint": "responses"}, {"prefix_mode": "prefill"},
    {"label_match": "fuzzy"}, {"token_prompts": "bytes"}, {"bos_token_id": -1}, {"context_length": 0},
    {"extra_body": [1]}, {"render_body": "x"}, {"headers": ["Authorization"]}, {"single_tokens": 5},
    {"single_tokens": [1]}, {"model": 5}, {"base_url": "127.0.0.1:8000"}, {"base_url": "http://"},
    {"timeout": "60"}, {"max_concurrency": 0}, {"max_retries": -1}, {"add_special_tokens": "no"},
    {"tokenizer": 5},
]


def _id(kwargs: dict[str, Any]) -> str:
    return ",".join(f"{k}={v!r}" for k, v in kwargs.items())


@pytest.mark.parametrize("kwargs", TRANSFORMERS, ids=_id)
def test_transformers_backend_arguments(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        TransformersLLMBackend("smollm2-135m", **kwargs)


@pytest.mark.parametrize("kwargs", VLLM, ids=_id)
def test_vllm_backend_arguments_are_checked_before_vllm_is_imported(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        VLLMBackend("smollm2-135m", **kwargs)


@pytest.mark.parametrize("kwargs", OPENAI, ids=_id)
def test_openai_backend_arguments(kwargs: dict[str, Any]) -> None:
    options = {"base_url": "http://127.0.0.1:9/v1", **kwargs}
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        OpenAIBackend(**options)


def test_the_message_names_the_argument_what_it_must_be_and_what_it_got() -> None:
    with pytest.raises(ConfigError, match=r"batch_size must be an int >= 1, got '8'"):
        TransformersLLMBackend("smollm2-135m", batch_size="8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"top_logprobs must be an int >= 1, got '8'"):
        OpenAIBackend(base_url="http://127.0.0.1:9", top_logprobs="8")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"max_logprobs must be an int >= 1, got '8'"):
        VLLMBackend("smollm2-135m", max_logprobs="8")  # type: ignore[arg-type]


def test_valid_openai_options_still_pass() -> None:
    backend = OpenAIBackend(base_url="http://127.0.0.1:9/v1", single_tokens={"A", "B"}, context_length=4096,
                            extra_body={"top_k": 1}, headers={"X-Test": "1"}, bos_token_id=1)
    assert backend.single_token("A") and not backend.single_token("C") and backend.context_length == 4096
    backend.close()
