"""OpenAIBackend.count_tokens (issue 21 item 15): the given tokenizer, else the server's own tokenize endpoint, else
characters / 4 with one warning; ``token_counter`` says which, and the listwise details report it. Before, the
backend counted characters / 4 even with ``tokenizer=`` (rank_llm's budget over HTTP then cut passages to other
lengths than in process). The real llama.cpp server check is in test_openai_llama_server.py."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import pytest
from _support.http_stub import Recorded, Reply, StubHTTPServer

from rerank_plugins.backends.base import ChatPrompt
from rerank_plugins.backends.openai import OpenAIBackend
from rerank_plugins.rankers.listwise import ListwiseReranker
from rerank_plugins.types import Candidate

pytestmark = pytest.mark.server

TEMPLATE = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }} </s>\n{% endfor %}<assistant>"
TEXT = "Supersonic flow over a wedge produces an oblique shock wave attached to its tip."
PROMPTS = [
    ChatPrompt(raw=TEXT),
    ChatPrompt(raw=TEXT, add_special_tokens=True),
    ChatPrompt.of(TEXT, system="Rank the passages."),
    ChatPrompt.of(TEXT, assistant_prefix="["),
]


def words(text: str) -> list[int]:
    """The stub servers' tokenizer: one token per whitespace-separated word."""
    return list(range(len(text.split())))


def chat_reply(text: str) -> Reply:
    choice = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
    return Reply(200, {"choices": [choice], "usage": {"prompt_tokens": 1, "completion_tokens": 1}})


def vllm_server(rec: Recorded) -> Reply:
    """vLLM's /tokenize: TokenizeCompletionRequest (prompt) and TokenizeChatRequest (messages); BOS id 99."""
    if rec.path == "/tokenize":
        body = rec.body
        if "messages" in body:
            text = " ".join(f"<{m['role']}> {m['content']} </s>" for m in body["messages"])
            tokens = words(text) + ([] if body.get("continue_final_message") else [7])  # the generation prompt
        else:
            tokens = words(body["prompt"])
        tokens = [99, *tokens] if body.get("add_special_tokens") else tokens
        return Reply(200, {"count": len(tokens), "max_model_len": 4096, "tokens": tokens})
    if rec.path == "/v1/chat/completions":
        return chat_reply("[2] > [1]")
    return Reply(404, {"detail": "Not Found"})


def llama_server(rec: Recorded) -> Reply:
    """llama-server's /tokenize: a body without "content" gets no tokens (not an error), as llama.cpp answers;
    /props reports the chat template."""
    if rec.path == "/tokenize":
        content = rec.body.get("content")
        tokens = [] if content is None else words(content)
        return Reply(200, {"tokens": [1, *tokens] if content is not None and rec.body.get("add_special") else tokens})
    if rec.path == "/props":
        return Reply(200, {"chat_template": TEMPLATE, "bos_token": "<s>", "eos_token": "</s>"})
    return Reply(404, {"detail": "Not Found"})


def backend(stub: StubHTTPServer, **kw: Any) -> OpenAIBackend:
    return OpenAIBackend("m", base_url=stub.url + "/v1", backoff=0.0, **kw)


# ------------------------------------------------------------------------------------------- tokenizer=
def test_counts_with_the_given_tokenizer_equal_the_tokenizers(smollm2_tokenizer_dir: Path) -> None:
    from transformers import AutoTokenizer

    tok = AutoTokenizer.from_pretrained(smollm2_tokenizer_dir)
    with StubHTTPServer([]) as stub:
        b = backend(stub, tokenizer=smollm2_tokenizer_dir)
        assert b.token_counter == "tokenizer"
        assert b.count_tokens(TEXT) == len(tok(TEXT, add_special_tokens=False)["input_ids"]) != len(TEXT) // 4
        raw, raw_bos, chat, prefixed = (b.count_tokens(p) for p in PROMPTS)
        assert raw == raw_bos == len(tok(TEXT)["input_ids"])  # a raw prompt: the tokenizer's special tokens
        rendered = tok.apply_chat_template([dict(m) for m in PROMPTS[2].messages], add_generation_prompt=True,
                                           tokenize=False)
        assert chat == len(tok(rendered, add_special_tokens=False)["input_ids"])
        rendered = tok.apply_chat_template([{"role": "user", "content": TEXT}], add_generation_prompt=True,
                                           tokenize=False)
        assert prefixed == len(tok(rendered + "[", add_special_tokens=False)["input_ids"])
        with_template = backend(stub, tokenizer=tok, chat_template=TEMPLATE)  # a given template wins
        assert with_template.count_tokens(PROMPTS[3]) == len(tok(
            f"<user> {TEXT} </s>\n<assistant>[", add_special_tokens=False)["input_ids"])
        b.close()
        with_template.close()
    assert stub.requests == []  # nothing asked of the server


# ------------------------------------------------------------------------------------------- the server
def test_counts_come_from_a_vllm_servers_tokenize_endpoint() -> None:
    with StubHTTPServer(vllm_server) as stub:
        b = backend(stub)
        assert b.token_counter == "server"
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert b.count_tokens(TEXT) == len(TEXT.split())
            assert [b.count_tokens(p) for p in PROMPTS] == [
                len(TEXT.split()) + 1,  # a raw prompt: the tokenizer's special tokens (BOS) unless it says otherwise
                len(TEXT.split()) + 1,
                len(f"<system> Rank the passages. </s> <user> {TEXT} </s>".split()) + 1,  # server's template
                len(f"<user> {TEXT} </s> <assistant> [ </s>".split()),  # the prefix continued, no generation prompt
            ]
        b.close()
    chat = [r.body for r in stub.requests if r.path == "/tokenize" and "messages" in r.body]
    assert chat[0]["add_generation_prompt"] is True and chat[0]["add_special_tokens"] is False
    assert chat[1]["continue_final_message"] is True and chat[1]["add_generation_prompt"] is False
    assert chat[1]["messages"][-1] == {"role": "assistant", "content": "["}


def test_counts_come_from_llama_server_which_answers_a_vllm_body_with_no_tokens() -> None:
    with StubHTTPServer(llama_server) as stub:
        b = backend(stub)
        assert b.token_counter == "server"
        assert b.count_tokens(TEXT) == len(TEXT.split())
        assert b.count_tokens(PROMPTS[1]) == len(TEXT.split()) + 1
        # the template from /props renders the chat prompt, as requests render it
        assert b.count_tokens(PROMPTS[3]) == len(f"<user> {TEXT} </s>\n<assistant>[".split())
        assert b.single_token("yes") and not b.single_token("yes please")  # the probe found the llama.cpp form
        b.close()
    probes = [r.body for r in stub.requests if r.path == "/tokenize"]
    assert "prompt" in probes[0] and all("content" in body for body in probes[1:])


def test_without_tokenizer_or_endpoint_the_estimate_warns_once() -> None:
    with StubHTTPServer([], default=Reply(404, {"detail": "Not Found"})) as stub:
        b = backend(stub)
        assert b.token_counter == "estimate"
        with pytest.warns(UserWarning, match="characters / 4") as caught:
            assert b.count_tokens(TEXT) == len(TEXT) // 4
            b.count_tokens(PROMPTS[2])
        assert len([w for w in caught if "characters / 4" in str(w.message)]) == 1
        assert caught[0].filename == __file__  # the warning points at the caller
        b.close()


def test_listwise_fitting_over_http_uses_and_reports_the_servers_counts() -> None:
    with StubHTTPServer(vllm_server) as stub:
        ranker = ListwiseReranker(backend(stub), window_size=2, context_size=4096)
        result = ranker.rerank("what makes a shock wave?", [Candidate(id="a", text=TEXT), Candidate(id="b", text="x")])
        ranker.close()
    assert result.ids == ["b", "a"]
    assert result.details["token_counter"] == "server"
    sent = next(r.body for r in stub.requests if r.path == "/v1/chat/completions")
    counted = [r.body for r in stub.requests if r.path == "/tokenize" and r.body.get("messages") == sent["messages"]]
    assert counted and result.details["max_prompt_tokens"] == vllm_server(
        Recorded("POST", "/tokenize", counted[-1], {})).body["count"]
