"""One generation contract (issue 24): ``LLMBackend.generate`` normalises its arguments once into a
:class:`GenerationRequest`, and every backend (transformers, vLLM, OpenAI-compatible HTTP, the scripted fake)
receives that same request, whether ``stop`` is given as a string or as a list; each backend's translation of the
request (the HTTP body, ``SamplingParams``, ``GenerationConfig``) carries one stop sequence per stop string.

vLLM is not installed here: its backend is built without ``__init__`` around a fake engine, which exercises the
real ``_generate`` and :func:`~rerank_plugins.backends.vllm.sampling_kwargs` (the mapping to ``SamplingParams``).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from _support.http_stub import Reply, StubHTTPServer

from rerank_plugins.backends.base import ChatPrompt, Generation, GenerationRequest, LLMBackend
from rerank_plugins.backends.openai import OpenAIBackend
from rerank_plugins.backends.transformers import BackendStats, TransformersLLMBackend
from rerank_plugins.backends.vllm import VLLMBackend
from rerank_plugins.errors import ConfigError
from rerank_plugins.testing.fake_llm import ScriptedLLM

pytestmark = pytest.mark.server

PROMPTS = [ChatPrompt(raw="Rank: [1] a [2] b\n")]
EXPECTED = GenerationRequest(max_new_tokens=6, temperature=0.0, seed=None, stop=("\n\n",))


def recording(cls: type[LLMBackend]) -> type[Any]:
    """``cls`` with its ``_generate`` hook recording the request it receives (the real hook still runs)."""

    class Recording(cls):  # type: ignore[misc,valid-type]
        def _generate(self, prompts: Any, request: GenerationRequest) -> list[Generation]:
            self.received = [*getattr(self, "received", []), request]
            return super()._generate(prompts, request)  # type: ignore[no-any-return]

    return Recording


# ------------------------------------------------------------------------------------------- the backends
class FakeVLLMEngine:
    """Stands for ``vllm.LLM``: keeps the ``SamplingParams`` keyword arguments it is given."""

    def __init__(self) -> None:
        self.params: list[dict[str, Any]] = []

    def generate(self, inputs: list[dict[str, Any]], params: dict[str, Any], use_tqdm: bool) -> list[Any]:
        self.params.append(params)
        out = SimpleNamespace(text="[1] > [2]", token_ids=[1, 2], finish_reason="stop", stop_reason="\n\n")
        return [SimpleNamespace(outputs=[out], prompt_token_ids=i["prompt_token_ids"]) for i in inputs]


def vllm_backend(tokenizer: Any) -> Any:
    backend = object.__new__(recording(VLLMBackend))
    backend._vllm = SimpleNamespace(SamplingParams=lambda **kwargs: kwargs)
    backend.llm = FakeVLLMEngine()
    backend.tokenizer = tokenizer
    backend.model_id, backend.add_special_tokens, backend.stats = "fake-vllm", None, BackendStats()
    backend.progress = False
    return backend


@pytest.fixture(scope="module")
def stub() -> Iterator[StubHTTPServer]:
    reply = Reply(200, {"choices": [{"index": 0, "text": "[1] > [2]", "finish_reason": "stop"}],
                        "usage": {"prompt_tokens": 9, "completion_tokens": 4}})
    with StubHTTPServer(lambda rec: reply) as server:
        yield server


@pytest.fixture(scope="module")
def built(tiny_llm_dir: Path, stub: StubHTTPServer) -> dict[str, Any]:
    transformers = recording(TransformersLLMBackend)(tiny_llm_dir, device="cpu")
    return {
        "transformers": transformers,
        "vllm": vllm_backend(transformers.tokenizer),
        "openai": recording(OpenAIBackend)(model="m", base_url=stub.url + "/v1", backoff=0.0),
        "scripted": recording(ScriptedLLM)(lambda text: "[1] > [2]"),
    }


@pytest.fixture()
def backends(built: dict[str, Any]) -> dict[str, Any]:
    """The backends with nothing recorded yet."""
    for backend in built.values():
        backend.received = []
    built["transformers"].stats.reset()
    built["vllm"].llm.params.clear()
    built["scripted"].reset()
    return built


def translated(name: str, backend: Any, stub: StubHTTPServer) -> list[str]:
    """The stop sequences the backend's own translation of the last request carries."""
    if name == "openai":
        return list(stub.requests[-1].body["stop"])
    if name == "vllm":
        return list(backend.llm.params[-1]["stop"])
    if name == "transformers":
        return list(backend._generation_config(backend.received[-1]).stop_strings)
    return list(backend.calls[-1].stop)


# ------------------------------------------------------------------------------------------- the tests
@pytest.mark.parametrize("stop", ["\n\n", ["\n\n"], ("\n\n", ""), ["\n\n", ""]], ids=["str", "list", "tuple", "empty"])
def test_every_backend_receives_the_same_normalised_request(
    backends: dict[str, Any], stub: StubHTTPServer, stop: Any
) -> None:
    for name, backend in backends.items():
        out = backend.generate(PROMPTS, max_new_tokens=6, temperature=0, stop=stop)
        assert len(out) == 1 and isinstance(out[0], Generation), name
        assert backend.received == [EXPECTED], name
        # one stop string is one stop sequence: OpenAIBackend sent ["\n", "\n"] for "\n\n" before
        assert translated(name, backend, stub) == ["\n\n"], name


def test_sampling_settings_reach_every_backend_alike(backends: dict[str, Any], stub: StubHTTPServer) -> None:
    want = GenerationRequest(3, temperature=0.5, seed=7, stop=("]", "\n"))
    for name, backend in backends.items():
        backend.generate(PROMPTS, max_new_tokens=3, temperature=0.5, seed=7, stop=("]", "\n"))
        assert backend.received == [want] and isinstance(backend.received[0].temperature, float), name
        assert translated(name, backend, stub) == ["]", "\n"], name
    body = stub.requests[-1].body
    assert (body["max_tokens"], body["temperature"], body["seed"]) == (3, 0.5, 7)
    params = backends["vllm"].llm.params[-1]
    assert (params["max_tokens"], params["temperature"], params["seed"]) == (3, 0.5, 7)
    config = backends["transformers"]._generation_config(want)
    assert (config.max_new_tokens, config.do_sample, config.temperature) == (3, True, 0.5)


def test_the_async_form_passes_the_same_request(backends: dict[str, Any], stub: StubHTTPServer) -> None:
    async def run(backend: Any) -> list[Generation]:
        return await backend.agenerate(PROMPTS, max_new_tokens=6, stop="\n\n")  # type: ignore[no-any-return]

    for name in ("transformers", "scripted", "vllm"):  # _generate in a worker thread
        backend = backends[name]
        asyncio.run(run(backend))
        assert backend.received == [EXPECTED], name
    openai = backends["openai"]  # natively async: its own _agenerate hook, same request, same body
    asyncio.run(run(openai))
    assert stub.requests[-1].body["stop"] == ["\n\n"] and stub.requests[-1].body["max_tokens"] == 6


BAD: list[tuple[dict[str, Any], str]] = [
    ({"max_new_tokens": 0}, "max_new_tokens"),
    ({"max_new_tokens": "8"}, "max_new_tokens"),
    ({"max_new_tokens": True}, "max_new_tokens"),
    ({"max_new_tokens": 4, "temperature": -0.1}, "temperature"),
    ({"max_new_tokens": 4, "temperature": float("nan")}, "temperature"),
    ({"max_new_tokens": 4, "temperature": float("inf")}, "temperature"),
    ({"max_new_tokens": 4, "seed": 1.5}, "seed"),
    ({"max_new_tokens": 4, "stop": [1]}, "stop"),
    ({"max_new_tokens": 4, "stop": b"\n"}, "stop"),
]


@pytest.mark.parametrize(("kwargs", "name"), BAD, ids=[f"{n}-{i}" for i, (_, n) in enumerate(BAD)])
def test_bad_arguments_are_one_config_error_before_any_work(
    backends: dict[str, Any], stub: StubHTTPServer, kwargs: dict[str, Any], name: str
) -> None:
    sent = len(stub.requests)
    for label, backend in backends.items():
        with pytest.raises(ConfigError, match=name):
            backend.generate(PROMPTS, **kwargs)
        assert getattr(backend, "received", []) == [], label
    assert len(stub.requests) == sent
    assert backends["transformers"].stats.generate_calls == 0 and backends["vllm"].llm.params == []


def test_a_backend_implements_the_hook_not_generate() -> None:
    """``generate`` is written once (``typing.final``); a backend that only overrides it is incomplete."""

    class OldStyle(LLMBackend):
        def generate(self, prompts: Any, **kwargs: Any) -> list[Generation]:  # type: ignore[misc]
            return []

        def label_logprobs(self, prompts: Any, labels: Any) -> list[list[float]]:
            return []

        def single_token(self, label: str) -> bool:
            return True

    with pytest.raises(TypeError, match="_generate"):
        OldStyle()  # type: ignore[abstract]


def test_request_normalisation_rules() -> None:
    of: Callable[..., GenerationRequest] = GenerationRequest.of
    assert of(max_new_tokens=2, stop="\n\n").stop == ("\n\n",)
    assert of(max_new_tokens=2, stop=None).stop == of(max_new_tokens=2, stop="").stop == ()
    assert of(max_new_tokens=2, stop=["a", "", "b"]).stop == ("a", "b")
    assert of(max_new_tokens=2, temperature=1).temperature == 1.0
    assert not of(max_new_tokens=2).sampled and of(max_new_tokens=2, temperature=0.1).sampled
    assert GenerationRequest(2, stop="x").stop == ("x",)  # type: ignore[arg-type]
