"""OpenAIBackend against a scripted loopback HTTP server: request shapes, logprob parsing, retries, timeouts,
bounded concurrency. The real-server tests (llama.cpp) are in test_openai_llama_server.py."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest
from _support.http_stub import Recorded, Reply, StubHTTPServer
from _support.llama_server import free_port

from rerank_plugins.backends.base import ChatPrompt
from rerank_plugins.backends.openai import OpenAIBackend, match_labels
from rerank_plugins.errors import BackendError, ConfigError

pytestmark = pytest.mark.server

TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>{% endif %}"
)


def chat_reply(text: str = "ok", finish: str = "stop", top: dict[str, float] | None = None) -> Reply:
    choice: dict = {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}
    if top is not None:
        first = next(iter(top))
        choice["logprobs"] = {
            "content": [
                {
                    "token": first,
                    "logprob": top[first],
                    "top_logprobs": [{"token": t, "logprob": v} for t, v in top.items()],
                }
            ]
        }
    return Reply(200, {"choices": [choice], "usage": {"prompt_tokens": 7, "completion_tokens": 3}})


def completion_reply(text: str = "ok", finish: str = "length", top: dict[str, float] | None = None) -> Reply:
    choice: dict = {"index": 0, "text": text, "finish_reason": finish, "logprobs": None}
    if top is not None:
        first = next(iter(top))
        choice["logprobs"] = {"tokens": [first], "token_logprobs": [top[first]], "top_logprobs": [top]}
    return Reply(200, {"choices": [choice], "usage": {"prompt_tokens": 5, "completion_tokens": 1}})


def backend(stub: StubHTTPServer, **kw) -> OpenAIBackend:
    kw.setdefault("model", "m")
    kw.setdefault("backoff", 0.0)
    return OpenAIBackend(base_url=stub.url + "/v1", **kw)


# ----------------------------------------------------------------------------------------------- requests
def test_generate_chat_request_and_finish_reason():
    def reply(rec: Recorded) -> Reply:
        return chat_reply("No.", "stop") if rec.body["messages"][-1]["content"] == "q1" else chat_reply("a b", "length")

    with StubHTTPServer(reply) as stub:
        b = backend(stub, api_key="secret")
        prompts = [ChatPrompt.of("q1", system="sys"), ChatPrompt.of("q2")]
        out = b.generate(prompts, max_new_tokens=5, seed=3, stop=["\n"])
        b.close()
    assert [(g.text, g.finish_reason) for g in out] == [("No.", "stop"), ("a b", "length")]
    by_prompt = {r.body["messages"][-1]["content"]: r for r in stub.requests}
    req = by_prompt["q1"]
    assert req.path == "/v1/chat/completions"
    assert req.body["messages"] == [{"role": "system", "content": "sys"}, {"role": "user", "content": "q1"}]
    assert req.body["max_tokens"] == 5 and req.body["temperature"] == 0.0
    assert req.body["seed"] == 3 and req.body["stop"] == ["\n"] and req.body["model"] == "m"
    assert req.headers.get("Authorization") == "Bearer secret"
    assert all(g.prompt_tokens == 7 and g.completion_tokens == 3 for g in out)


def test_results_follow_prompt_order_under_concurrency():
    def reply(rec: Recorded) -> Reply:
        text = rec.body["messages"][-1]["content"]
        return Reply(200, {"choices": [{"message": {"content": text.upper()}, "finish_reason": "stop"}]},
                     delay=0.05 * (3 - int(text[1])))

    with StubHTTPServer(reply) as stub:
        b = backend(stub, max_concurrency=4)
        out = b.generate([ChatPrompt.of(f"q{i}") for i in range(4)], max_new_tokens=2)
        b.close()
    assert [g.text for g in out] == ["Q0", "Q1", "Q2", "Q3"]


def test_assistant_prefix_is_rendered_client_side_when_a_template_is_known():
    with StubHTTPServer([completion_reply("1] > [2]")]) as stub:
        b = backend(stub, chat_template=TEMPLATE)
        out = b.generate([ChatPrompt.of("rank", assistant_prefix="[")], max_new_tokens=9)
        b.close()
    (req,) = stub.requests
    assert req.path == "/v1/completions"
    assert req.body["prompt"] == "<|user|>rank<|end|>\n<|assistant|>["
    assert req.body["add_special_tokens"] is False
    assert out[0].text == "1] > [2]" and out[0].finish_reason == "length"


def _no_props(reply: Reply):  # type: ignore[no-untyped-def]
    """A server without /props (llama-cpp-python, vLLM): 404 there, ``reply`` everywhere else."""
    return lambda r: Reply(404, {"detail": "Not Found"}) if r.path == "/props" else reply


def test_assistant_prefix_continues_the_final_message_without_a_template():
    with StubHTTPServer(_no_props(chat_reply("1]"))) as stub:
        b = backend(stub)
        with pytest.warns(UserWarning, match="serves none at /props") as record:
            b.generate([ChatPrompt.of("rank", assistant_prefix="[")], max_new_tokens=9)
        b.generate([ChatPrompt.of("rank", assistant_prefix="[")], max_new_tokens=9)  # asked and warned once
        b.close()
    assert record[0].filename == __file__
    assert [r.path for r in stub.requests] == ["/props", "/v1/chat/completions", "/v1/chat/completions"]
    body = stub.requests[1].body
    assert body["messages"][-1] == {"role": "assistant", "content": "["}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False


def test_prefix_mode_continue_asks_nothing_and_warns_nothing(recwarn: pytest.WarningsRecorder):
    with StubHTTPServer([chat_reply("1]")]) as stub:
        b = backend(stub, prefix_mode="continue")
        b.generate([ChatPrompt.of("rank", assistant_prefix="[")], max_new_tokens=9)
        b.close()
    assert [r.path for r in stub.requests] == ["/v1/chat/completions"] and not recwarn.list


def test_chat_template_is_read_from_llama_server_props():
    """llama.cpp's llama-server reports the GGUF's template at GET /props: the prompt is rendered client side,
    with the server's BOS text, and sent to /v1/completions (as with chat_template= given)."""
    template = "{{ bos_token }}{% for m in messages %}<|{{ m.role }}|>{{ m.content }}<|end|>\n{% endfor %}<|assistant|>"
    props = Reply(200, {"chat_template": template, "bos_token": "<s>", "eos_token": "</s>", "total_slots": 1})

    def replies(r: Recorded) -> Reply:
        return props if r.path == "/props" else completion_reply("1] > [2]")

    with StubHTTPServer(replies) as stub:
        b = backend(stub)
        out = b.generate([ChatPrompt.of("rank", assistant_prefix="[")], max_new_tokens=9)
        asyncio.run(b.agenerate([ChatPrompt.of("again", assistant_prefix="[")], max_new_tokens=9))
        b.close()
    assert b.chat_template_source == "server"
    assert [r.path for r in stub.requests] == ["/props", "/v1/completions", "/v1/completions"]
    assert stub.requests[1].body["prompt"] == "<s><|user|>rank<|end|>\n<|assistant|>["
    assert stub.requests[2].body["prompt"] == "<s><|user|>again<|end|>\n<|assistant|>["
    assert out[0].text == "1] > [2]"


def test_raw_prompt_goes_to_completions():
    with StubHTTPServer([completion_reply("x")]) as stub:
        b = backend(stub)
        b.generate([ChatPrompt(raw="Question: 2+2=", assistant_prefix=" ")], max_new_tokens=1)
        b.close()
    assert stub.requests[0].path == "/v1/completions"
    assert stub.requests[0].body["prompt"] == "Question: 2+2= "
    assert "add_special_tokens" not in stub.requests[0].body


def test_special_token_policy_is_sent_when_set_and_only_then():
    """Policy None: requests as before. Set on the prompt or the backend: ``add_special_tokens`` on every request
    (vLLM reads it on completions and chat; llama.cpp servers and OpenAI ignore it)."""
    prompts = [
        ChatPrompt(raw="Q:", add_special_tokens=True),
        ChatPrompt.of("rank", assistant_prefix="[", add_special_tokens=True),
        ChatPrompt.of("plain"),
        ChatPrompt(raw="Q:"),
    ]
    with StubHTTPServer([completion_reply(), completion_reply(), chat_reply(), completion_reply()]) as stub:
        b = backend(stub, chat_template=TEMPLATE)
        for p in prompts:
            b.generate([p], max_new_tokens=1)
        b.close()
    bodies = [r.body for r in stub.requests]
    assert [r.path for r in stub.requests] == ["/v1/completions", "/v1/completions", "/v1/chat/completions",
                                               "/v1/completions"]
    assert bodies[0]["add_special_tokens"] is True
    assert bodies[1]["add_special_tokens"] is True  # the policy wins over render_body's default False
    assert "add_special_tokens" not in bodies[2] and "add_special_tokens" not in bodies[3]
    with StubHTTPServer([completion_reply(), chat_reply(), completion_reply()]) as stub:
        b = backend(stub, add_special_tokens=False)
        b.generate([ChatPrompt(raw="Q:")], max_new_tokens=1)
        b.generate([ChatPrompt.of("plain")], max_new_tokens=1)
        b.generate([ChatPrompt(raw="Q:", add_special_tokens=True)], max_new_tokens=1)
        b.close()
    assert [r.body["add_special_tokens"] for r in stub.requests] == [False, False, True]
    with pytest.raises(ConfigError, match="add_special_tokens"):
        OpenAIBackend(base_url="http://127.0.0.1:1/v1", add_special_tokens=1)


def test_completions_endpoint_without_template_is_a_clear_error():
    with StubHTTPServer([]) as stub:
        b = backend(stub, endpoint="completions")
        with pytest.raises(ConfigError, match="chat_template"):
            b.generate([ChatPrompt.of("q")], max_new_tokens=1)
        b.close()


def test_model_name_is_read_from_the_server_when_not_given():
    replies = [Reply(200, {"data": [{"id": "served-model", "max_model_len": 4096}]}), chat_reply("hi")]
    with StubHTTPServer(replies) as stub:
        b = OpenAIBackend(base_url=stub.url, backoff=0.0)
        b.generate([ChatPrompt.of("q")], max_new_tokens=1)
        assert b.context_length is None or b.context_length == 4096
        b.close()
    assert stub.requests[0].method == "GET" and stub.requests[0].path == "/v1/models"
    assert stub.requests[1].body["model"] == "served-model"


# ----------------------------------------------------------------------------------------------- logprobs
def test_label_logprobs_chat_exact_matching():
    top = {"No": -0.5, "Yes": -1.5, " yes": -2.0, "The": -3.0}
    with StubHTTPServer([chat_reply("No", "length", top)]) as stub:
        b = backend(stub, top_logprobs=5)
        (lps,) = b.label_logprobs([ChatPrompt.of("q")], ["Yes", "No", " yes", "Maybe"])
        b.close()
    assert lps[:3] == [-1.5, -0.5, -2.0]
    assert lps[3] == float("-inf")
    body = stub.requests[0].body
    assert body["max_tokens"] == 1 and body["logprobs"] is True and body["top_logprobs"] == 5
    assert body["temperature"] == 0.0


def test_label_logprobs_completions_and_strip_matching():
    top = {" Yes": -1.0, "Yes": -2.0, " no": -0.7}
    with StubHTTPServer([completion_reply(" no", top=top)]) as stub:
        b = backend(stub, endpoint="completions", chat_template=TEMPLATE, label_match="strip", top_logprobs=3)
        (lps,) = b.label_logprobs([ChatPrompt.of("q")], ["Yes", "No", "no"])
        b.close()
    assert lps[0] == pytest.approx(math.log(math.exp(-1.0) + math.exp(-2.0)))
    assert lps[1] == float("-inf")  # case is not ignored
    assert lps[2] == pytest.approx(-0.7)
    assert stub.requests[0].body["logprobs"] == 3


def test_match_labels_rules():
    alts = {"A": -0.1, " A": -2.0, "B": -3.0}
    assert match_labels(alts, ["A", " A", "C"]) == [-0.1, -2.0, float("-inf")]
    assert match_labels(alts, [" A "], "strip")[0] == pytest.approx(math.log(math.exp(-0.1) + math.exp(-2.0)))


@pytest.mark.parametrize("logprobs", [None, {"content": []}, {"content": None}])
def test_missing_logprobs_is_a_backend_error(logprobs):
    reply = Reply(200, {"choices": [{"message": {"content": "No"}, "finish_reason": "length", "logprobs": logprobs}]})
    with StubHTTPServer([reply]) as stub:
        b = backend(stub)
        with pytest.raises(BackendError, match="no logprobs"):
            b.label_logprobs([ChatPrompt.of("q")], ["Yes", "No"])
        b.close()


def test_server_without_logprobs_support_fails_at_once():
    msg = {"error": {"message": "logprobs is not supported for models created with logits_all=False"}}
    with StubHTTPServer([], default=Reply(500, msg)) as stub:
        b = backend(stub, max_retries=3)
        with pytest.raises(BackendError, match=r"cannot return logprobs.*logits_all=False"):
            b.label_logprobs([ChatPrompt.of("q")], ["Yes"])
        b.close()
    assert len(stub.requests) == 1


# ----------------------------------------------------------------------------------------------- retries
def test_500_then_200_is_retried():
    with StubHTTPServer([Reply(500, {"error": {"message": "boom"}}), chat_reply("fine")]) as stub:
        b = backend(stub, max_retries=2)
        out = b.generate([ChatPrompt.of("q")], max_new_tokens=2)
        b.close()
    assert out[0].text == "fine"
    assert len(stub.requests) == 2


def test_429_with_retry_after_is_retried():
    with StubHTTPServer([Reply(429, {"error": "slow down"}, headers={"Retry-After": "0"}), chat_reply("ok")]) as stub:
        b = backend(stub, max_retries=1)
        assert b.generate([ChatPrompt.of("q")], max_new_tokens=2)[0].text == "ok"
        b.close()


def test_retries_are_bounded_and_the_error_names_the_cause():
    with StubHTTPServer([], default=Reply(503, {"error": {"message": "overloaded"}})) as stub:
        b = backend(stub, max_retries=2)
        with pytest.raises(BackendError, match=r"after 3 attempt\(s\).*503.*overloaded"):
            b.generate([ChatPrompt.of("q")], max_new_tokens=2)
        b.close()
    assert len(stub.requests) == 3


def test_client_errors_are_not_retried():
    with StubHTTPServer([Reply(400, {"error": {"message": "top_logprobs must be <= 20"}})]) as stub:
        b = backend(stub, max_retries=3)
        with pytest.raises(BackendError, match="top_logprobs must be <= 20"):
            b.label_logprobs([ChatPrompt.of("q")], ["A"])
        b.close()
    assert len(stub.requests) == 1


def test_timeout_is_retried_then_succeeds():
    with StubHTTPServer([Reply(200, {"choices": []}, delay=3.0), chat_reply("late but ok")]) as stub:
        b = backend(stub, timeout=0.3, max_retries=1)
        assert b.generate([ChatPrompt.of("q")], max_new_tokens=2)[0].text == "late but ok"
        b.close()


def test_timeouts_exhaust_retries():
    with StubHTTPServer([], default=Reply(200, {"choices": []}, delay=3.0)) as stub:
        b = backend(stub, timeout=0.2, max_retries=1)
        with pytest.raises(BackendError, match="Timeout"):
            b.generate([ChatPrompt.of("q")], max_new_tokens=2)
        b.close()


def test_connection_refused_is_a_backend_error():
    b = OpenAIBackend("m", base_url=f"http://127.0.0.1:{free_port()}/v1", max_retries=1, backoff=0.0)
    with pytest.raises(BackendError, match="ConnectError"):
        b.generate([ChatPrompt.of("q")], max_new_tokens=2)
    b.close()


# ----------------------------------------------------------------------------------------------- async
async def test_async_requests_run_concurrently_within_the_bound():
    in_flight = 0
    peak = 0
    lock = threading.Lock()

    def reply(rec: Recorded) -> Reply:
        nonlocal in_flight, peak
        with lock:
            in_flight += 1
            peak = max(peak, in_flight)
        time.sleep(0.15)
        with lock:
            in_flight -= 1
        return chat_reply("No", "length", {"No": -0.1, "Yes": -2.5})

    with StubHTTPServer(reply) as stub:
        b = backend(stub, max_concurrency=2)
        out = await b.alabel_logprobs([ChatPrompt.of(f"q{i}") for i in range(6)], ["Yes", "No"])
        gens = await b.agenerate([ChatPrompt.of("g")], max_new_tokens=1)
        await b.aclose()
    assert out == [[-2.5, -0.1]] * 6
    assert gens[0].text == "No"
    assert peak == 2


async def test_async_retry_after_500():
    with StubHTTPServer([Reply(502, "bad gateway"), chat_reply("ok")]) as stub:
        b = backend(stub)
        out = await b.agenerate([ChatPrompt.of("q")], max_new_tokens=1)
        await b.aclose()
    assert out[0].text == "ok" and len(stub.requests) == 2


def test_closed_backend_refuses_work():
    with StubHTTPServer([]) as stub:
        b = backend(stub)
        b.close()
        b.close()
        with pytest.raises(BackendError, match="closed"):
            b.generate([ChatPrompt.of("q")], max_new_tokens=1)


def test_async_client_of_a_finished_loop_is_closed_by_close():
    with StubHTTPServer([chat_reply("a")]) as stub:
        b = backend(stub)
        loop = asyncio.new_event_loop()
        try:
            loop.run_until_complete(b.agenerate([ChatPrompt.of("q")], max_new_tokens=1))
            state = next(iter(b._http._astates.values()))
            b.close()
            assert state.client.is_closed
        finally:
            loop.close()


# ----------------------------------------------------------------------------------------------- tokens
def test_single_token_via_tokenize_endpoint_subtracts_added_specials():
    def reply(rec: Recorded) -> Reply:
        if rec.path == "/tokenize":
            return Reply(404, {"detail": "Not Found"})
        text = rec.body["input"]
        return Reply(200, {"tokens": [1, *range(10, 10 + len(text.split("|")) if text else 10)]})

    with StubHTTPServer(reply) as stub:
        b = backend(stub)
        assert b.single_token("yes") is True
        assert b.single_token("a|b") is False
        b.close()
    paths = [r.path for r in stub.requests]
    assert "/extras/tokenize" in paths and paths.count("/tokenize") == 2  # vLLM and llama-server forms probed


def test_single_token_assumption_without_endpoint():
    with StubHTTPServer([], default=Reply(404, {"detail": "Not Found"})) as stub:
        b = backend(stub)
        assert [b.single_token(x) for x in ["A", " yes", "7", "[1]", "maybe", "10"]] == [
            True, True, True, False, False, False
        ]
        b.close()
    explicit = OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", single_tokens={"[1]"})
    assert explicit.single_token("[1]") and not explicit.single_token("A")


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"endpoint": "messages"}, "endpoint"),
        ({"top_logprobs": 0}, "top_logprobs"),
        ({"timeout": -1}, "timeout"),
        ({"prefix_mode": "render"}, "chat_template"),
        ({"label_match": "fuzzy"}, "label_match"),
    ],
)
def test_bad_options(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        OpenAIBackend("m", base_url="http://127.0.0.1:9/v1", **kwargs)


def test_bad_base_url():
    with pytest.raises(ConfigError, match="base_url"):
        OpenAIBackend("m", base_url="127.0.0.1:8000")


def test_deep_copies_and_pickles_talk_to_the_same_server():
    """Frameworks deep-copy and pickle components holding a backend: copies get their own connections."""
    import copy
    import pickle

    def reply(rec: Recorded) -> Reply:
        return chat_reply(rec.body["messages"][-1]["content"].upper())

    with StubHTTPServer(reply) as stub:
        b = backend(stub, api_key="secret")
        assert b.generate([ChatPrompt.of("warm")], max_new_tokens=2)[0].text == "WARM"
        for other in (copy.deepcopy(b), pickle.loads(pickle.dumps(b))):
            assert other is not b
            assert other.generate([ChatPrompt.of("copy")], max_new_tokens=2)[0].text == "COPY"
            assert asyncio.run(other.agenerate([ChatPrompt.of("async")], max_new_tokens=2))[0].text == "ASYNC"
            other.close()
        assert b.generate([ChatPrompt.of("still")], max_new_tokens=2)[0].text == "STILL"  # the original is open
        b.close()
    assert all(r.headers.get("Authorization") == "Bearer secret" for r in stub.requests)
