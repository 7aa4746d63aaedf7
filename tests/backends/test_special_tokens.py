"""The special-token (BOS) policy of the transformers backend: per prompt, per backend, and the old default."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rerank_plugins.backends.base import ChatPrompt, adds_special_tokens  # noqa: E402
from rerank_plugins.backends.transformers import TransformersLLMBackend  # noqa: E402
from rerank_plugins.errors import ConfigError  # noqa: E402

CHAT = ChatPrompt.of("Rank these passages.", assistant_prefix="[")
RAW = ChatPrompt(raw="Rank these passages:")


def test_resolution_order() -> None:
    assert adds_special_tokens(CHAT) is False and adds_special_tokens(RAW) is True
    assert adds_special_tokens(CHAT, True) is True and adds_special_tokens(RAW, False) is False
    on = ChatPrompt.of("q", add_special_tokens=True)
    off = ChatPrompt(raw="q", add_special_tokens=False)
    assert adds_special_tokens(on, False) is True and adds_special_tokens(off, True) is False


def test_bos_is_added_only_when_asked(tiny_bos_llm_dir: Path) -> None:
    backend = TransformersLLMBackend(tiny_bos_llm_dir, device="cpu")
    tok = backend.tokenizer
    bos = tok.bos_token_id
    assert bos is not None
    text = backend.render(CHAT)
    plain = tok(text, add_special_tokens=False)["input_ids"]
    assert plain[0] != bos
    # default: chat prompts get no special tokens, raw prompts the tokenizer's
    assert backend.prompt_token_ids(CHAT) == plain
    assert backend.prompt_token_ids(RAW) == tok(RAW.raw)["input_ids"] and backend.prompt_token_ids(RAW)[0] == bos
    # per prompt
    with_bos = ChatPrompt(CHAT.messages, CHAT.assistant_prefix, add_special_tokens=True)
    assert backend.prompt_token_ids(with_bos) == [bos, *plain]
    raw_off = ChatPrompt(raw=RAW.raw, add_special_tokens=False)
    assert backend.prompt_token_ids(raw_off) == tok(RAW.raw, add_special_tokens=False)["input_ids"]
    assert backend.count_tokens(with_bos) == len(plain) + 1
    # the backend option fills in for prompts that leave it None, never over a prompt's own choice
    on = TransformersLLMBackend(tiny_bos_llm_dir, device="cpu", add_special_tokens=True)
    assert on.prompt_token_ids(CHAT) == [bos, *plain]
    assert on.prompt_token_ids(ChatPrompt(CHAT.messages, "[", add_special_tokens=False)) == plain
    off = TransformersLLMBackend(tiny_bos_llm_dir, device="cpu", add_special_tokens=False)
    assert off.prompt_token_ids(RAW)[0] != bos


def test_the_model_reads_the_bos_token(tiny_bos_llm_dir: Path) -> None:
    """label_logprobs and generate run on the policy's ids: with BOS they equal a forward pass over [BOS, ...]."""
    backend = TransformersLLMBackend(tiny_bos_llm_dir, device="cpu")
    with_bos = ChatPrompt(CHAT.messages, CHAT.assistant_prefix, add_special_tokens=True)
    ids = backend.prompt_token_ids(with_bos)
    with torch.inference_mode():
        logits = backend.model(torch.tensor([ids])).logits[0, -1].float()
    expected = torch.log_softmax(logits, -1)
    label = "1"
    tid = backend.label_token_id(backend.render(with_bos), label)
    got = backend.label_logprobs([with_bos], [label])[0][0]
    assert got == pytest.approx(float(expected[tid]), abs=1e-5)
    without = backend.label_logprobs([CHAT], [label])[0][0]
    assert without != pytest.approx(got, abs=1e-6)
    gen = backend.generate([with_bos], max_new_tokens=2)[0]
    assert gen.prompt_tokens == len(ids)


def test_double_bos_warns_once(tiny_bos_llm_dir: Path) -> None:
    backend = TransformersLLMBackend(tiny_bos_llm_dir, device="cpu", add_special_tokens=True)
    p = ChatPrompt(raw="<s>already has one")
    with pytest.warns(UserWarning, match="two"):
        backend.count_tokens(p)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        backend.count_tokens(p)


def test_option_is_validated(tiny_bos_llm_dir: Path) -> None:
    with pytest.raises(ConfigError, match="add_special_tokens"):
        TransformersLLMBackend(tiny_bos_llm_dir, device="cpu", add_special_tokens="yes")  # type: ignore[arg-type]


def test_openai_backend_sends_the_token_ids_the_transformers_backend_reads(tiny_bos_llm_dir: Path) -> None:
    """With ``tokenizer=`` the completions prompt is sent as token ids, BOS as the policy says, equal to the
    in-process ids, so a server that reads ids (vLLM, SGLang, llama-server) adds nothing of its own."""
    from _support.http_stub import Reply, StubHTTPServer

    from rerank_plugins.backends.openai import OpenAIBackend

    hf = TransformersLLMBackend(tiny_bos_llm_dir, device="cpu")
    prompts = [
        ChatPrompt.of("Rank these.", system="You rank.", assistant_prefix="["),
        ChatPrompt.of("Rank these.", assistant_prefix="[", add_special_tokens=True),
        ChatPrompt(raw="raw prompt"),
        ChatPrompt(raw="raw prompt", add_special_tokens=False),
    ]
    reply = Reply(200, {"choices": [{"index": 0, "text": "1]", "finish_reason": "stop"}], "usage": {}})
    with StubHTTPServer([reply] * len(prompts)) as stub:
        client = OpenAIBackend("m", base_url=stub.url, endpoint="completions", chat_template=str(tiny_bos_llm_dir),
                               tokenizer=str(tiny_bos_llm_dir), backoff=0.0)
        for p in prompts:
            client.generate([p], max_new_tokens=2)
        client.close()
    sent = [r.body["prompt"] for r in stub.requests]
    assert sent == [hf.prompt_token_ids(p) for p in prompts]
    bos = hf.tokenizer.bos_token_id
    assert [ids[0] == bos for ids in sent] == [False, True, True, False]
    assert all("add_special_tokens" not in r.body for r in stub.requests)
