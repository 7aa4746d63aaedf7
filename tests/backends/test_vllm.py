"""vLLM backend: the translation to and from vLLM objects (no vLLM needed), the missing-extra error, and a GPU
test against the transformers backend."""

from __future__ import annotations

import math
from pathlib import Path
from types import SimpleNamespace

import pytest

from rerank_plugins._optional import is_available
from rerank_plugins.backends.base import GenerationRequest
from rerank_plugins.backends.vllm import (
    VLLMBackend,
    generation_from_output,
    label_logprobs_from_output,
    sampling_kwargs,
)
from rerank_plugins.errors import BackendError, ConfigError, MissingDependencyError


def test_sampling_kwargs_greedy_and_seeded() -> None:
    greedy = sampling_kwargs(GenerationRequest(5, seed=3, stop=("]", "")))
    assert greedy["temperature"] == 0.0 and "seed" not in greedy and greedy["max_tokens"] == 5
    assert greedy["stop"] == ["]"] and greedy["repetition_penalty"] == 1.0
    sampled = sampling_kwargs(GenerationRequest(5, temperature=0.7, seed=3))
    assert sampled["seed"] == 3 and sampled["temperature"] == 0.7
    assert sampling_kwargs(GenerationRequest(1), logprobs=20)["logprobs"] == 20
    with pytest.raises(ConfigError):
        GenerationRequest(0)
    with pytest.raises(ConfigError):
        GenerationRequest(1, temperature=-0.1)


def _request(text: str = "[2] > [1]", reason: str | None = "length", logprobs: object = None) -> SimpleNamespace:
    out = SimpleNamespace(text=text, token_ids=[5, 6, 7], finish_reason=reason, stop_reason=None, logprobs=logprobs)
    return SimpleNamespace(outputs=[out], prompt_token_ids=[1, 2, 3, 4])


def test_generation_from_output() -> None:
    g = generation_from_output(_request())
    assert (g.text, g.finish_reason, g.prompt_tokens, g.completion_tokens) == ("[2] > [1]", "length", 4, 3)
    assert generation_from_output(_request(reason="stop")).finish_reason == "stop"
    with pytest.raises(BackendError, match="abort"):
        generation_from_output(_request(reason="abort"))
    with pytest.raises(BackendError):
        generation_from_output(SimpleNamespace(outputs=[]))


def test_label_logprobs_from_output_reads_the_first_position() -> None:
    first = {10: SimpleNamespace(logprob=-0.5, rank=1), 11: SimpleNamespace(logprob=-1.5, rank=2)}
    second = {10: SimpleNamespace(logprob=-9.0, rank=1)}
    got = label_logprobs_from_output(_request(logprobs=[first, second]), [11, 10, 99])
    assert got[:2] == [-1.5, -0.5] and got[2] == -math.inf
    assert label_logprobs_from_output(_request(logprobs=[{3: -0.25}]), [3]) == [-0.25]
    with pytest.raises(BackendError, match="no logprobs"):
        label_logprobs_from_output(_request(logprobs=None), [3])


@pytest.mark.skipif(is_available("vllm"), reason="vllm is installed")
def test_missing_extra_names_it() -> None:
    with pytest.raises(MissingDependencyError) as info:
        VLLMBackend("some/model")
    assert info.value.extra == "vllm" and "rerank-plugins[vllm]" in str(info.value)


@pytest.mark.gpu
def test_vllm_matches_transformers_on_a_tiny_model(tiny_llm_dir: Path) -> None:
    from rerank_plugins.backends.base import ChatPrompt
    from rerank_plugins.backends.transformers import TransformersLLMBackend

    prompts = [ChatPrompt.of("Is the sky blue?"), ChatPrompt.of("Rank these.", assistant_prefix="[")]
    v = VLLMBackend(tiny_llm_dir, dtype="float32", max_logprobs=50000)
    t = TransformersLLMBackend(tiny_llm_dir, device="cuda", dtype="float32")
    lv = v.label_logprobs(prompts, ["A", "1"])
    lt = t.label_logprobs(prompts, ["A", "1"])
    assert lv == pytest.approx(lt, abs=1e-3)
    gv = v.generate(prompts, max_new_tokens=4)
    gt = t.generate(prompts, max_new_tokens=4)
    assert [g.text for g in gv] == [g.text for g in gt]
    assert v.stats.forward_prompts == 2 and v.stats.generate_calls == 1


def test_token_inputs_follow_the_special_token_policy_like_transformers(tiny_bos_llm_dir: Path) -> None:
    """The ids vLLM is sent are built by ``token_prompt_inputs``: with a tokenizer that adds ``<s>`` they equal the
    transformers backend's for every policy (prompt, backend default, old default), so both read the same tokens."""
    pytest.importorskip("torch")
    from rerank_plugins.backends.base import ChatPrompt
    from rerank_plugins.backends.transformers import TransformersLLMBackend
    from rerank_plugins.backends.vllm import token_prompt_inputs

    prompts = [
        ChatPrompt.of("Rank these.", system="You rank.", assistant_prefix="["),
        ChatPrompt.of("Rank these.", add_special_tokens=True),
        ChatPrompt(raw="raw prompt"),
        ChatPrompt(raw="raw prompt", add_special_tokens=False),
    ]
    for default in (None, True, False):
        hf = TransformersLLMBackend(tiny_bos_llm_dir, device="cpu", add_special_tokens=default)
        texts, inputs = token_prompt_inputs(hf.tokenizer, prompts, add_special_tokens=default)
        assert texts == [hf.render(p) for p in prompts]
        assert [i["prompt_token_ids"] for i in inputs] == [hf.prompt_token_ids(p) for p in prompts]
    bos = hf.tokenizer.bos_token_id
    _, inputs = token_prompt_inputs(hf.tokenizer, prompts)
    assert [i["prompt_token_ids"][0] == bos for i in inputs] == [False, True, True, False]
    with pytest.raises(ConfigError, match="10-token context"):
        token_prompt_inputs(hf.tokenizer, prompts[:1], reserve=5, context_length=10)


def test_pre_tokenised_prompts_go_to_vllm_as_they_are(tiny_bos_llm_dir: Path) -> None:
    """A model recipe's prompt (``ChatPrompt.token_ids``) reaches vLLM as exactly those ids, as in transformers."""
    pytest.importorskip("torch")
    from rerank_plugins.backends.base import ChatPrompt
    from rerank_plugins.backends.transformers import TransformersLLMBackend
    from rerank_plugins.backends.vllm import token_prompt_inputs

    hf = TransformersLLMBackend(tiny_bos_llm_dir, device="cpu")
    ids = (hf.tokenizer.bos_token_id, *hf.tokenize_text("Query: q\nDocument: d\nRelevant:"))
    prompt = ChatPrompt(raw="Query: q\nDocument: d\nRelevant:", token_ids=ids, add_special_tokens=True)
    _, inputs = token_prompt_inputs(hf.tokenizer, [prompt, prompt], add_special_tokens=False)
    assert [i["prompt_token_ids"] for i in inputs] == [list(ids)] * 2 == [hf.prompt_token_ids(prompt)] * 2
