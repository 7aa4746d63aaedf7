from __future__ import annotations

import math

import pytest

from rerank_plugins.backends.base import ChatPrompt, Generation
from rerank_plugins.testing.fake_llm import ScriptedLLM, fake_tokenize, render_prompt


def test_fake_tokenizer_single_tokens() -> None:
    assert fake_tokenize("[3] > [1]") == ["[", "3", "]", " >", " [", "1", "]"]
    llm = ScriptedLLM()
    assert llm.single_token("A") and llm.single_token(" yes") and llm.single_token("10")
    assert not llm.single_token("[1]")
    assert ScriptedLLM(single_tokens={"a"}).single_token("a") is True
    assert ScriptedLLM(single_tokens=lambda s: len(s) == 2).single_token("ab") is True


def test_generate_sequence_callable_truncation_and_stop() -> None:
    llm = ScriptedLLM(["one two three four", lambda text: "saw:" + text.split("\n")[0], Generation("x", "length")])
    p = ChatPrompt.of("hello", system="sys")
    out = llm.generate([p, p], max_new_tokens=2)
    assert out[0].text == "one two" and out[0].finish_reason == "length"
    assert out[1].text == "saw:" and out[1].finish_reason == "length"  # "saw", ":" are two tokens
    out = llm.generate([p], max_new_tokens=5)
    assert out[0] == Generation("x", "length")
    with pytest.raises(AssertionError, match="ran out"):
        llm.generate([p], max_new_tokens=5)
    stopper = ScriptedLLM(lambda _: "answer</answer> extra")
    g = stopper.generate([p], max_new_tokens=50, stop=["</answer>"])[0]
    assert g.text == "answer" and g.finish_reason == "stop"


def test_records_calls_and_forward_passes() -> None:
    llm = ScriptedLLM(lambda _: "a b c", logprobs={"A": -0.1, "B": -2.0})
    p = ChatPrompt.of("q", assistant_prefix="[")
    assert render_prompt(p).endswith("assistant: [")
    llm.generate([p], max_new_tokens=10)
    assert llm.forward_passes == 3
    lp = llm.label_logprobs([p, p], ["A", "B", "C"])
    assert lp[0][:2] == [-0.1, -2.0] and math.isinf(lp[0][2])
    assert llm.forward_passes == 5
    assert [c.kind for c in llm.calls] == ["generate", "label_logprobs"]
    assert len(llm.logprob_calls) == 1 and len(llm.generate_calls) == 1
    assert llm.logprob_calls[0].labels == ("A", "B", "C")
    assert len(llm.prompts_seen) == 3


def test_logprob_callable_and_sequence() -> None:
    llm = ScriptedLLM(logprobs=[{"x": 0.0}, lambda text, labels: [-1.0] * len(labels)])
    p = ChatPrompt.of("q")
    assert llm.label_logprobs([p, p], ["x"]) == [[0.0], [-1.0]]
    with pytest.raises(AssertionError, match="ran out"):
        llm.label_logprobs([p], ["x"])
    with pytest.raises(AssertionError, match="no outputs"):
        llm.generate([p], max_new_tokens=1)
