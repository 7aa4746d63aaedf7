"""engine/token_prompt.py on a character tokenizer (one id per character): the assembly rules, no model."""

from __future__ import annotations

import pytest

from rerank_plugins.engine.token_prompt import TokenPromptFormat, build_token_prompt
from rerank_plugins.errors import ConfigError


def enc(text: str) -> list[int]:
    return [ord(c) for c in text]


def text(ids) -> str:
    return "".join(chr(i) for i in ids if i >= 0)


JOINT = TokenPromptFormat(joint=True, prefix=("<P>",), query="I:{instruction}|Q:{query}|D:{document}",
                          suffix=("<S>",), default_instruction="task", max_length=40)
PAIR = TokenPromptFormat(bos=True, query="A:{query}", separator="\n", document="B:{document}",
                         suffix=("\n", "{instruction}"), default_instruction="ok?", max_length=20,
                         pair_budget_adds_suffix=True)


def test_joint_cuts_the_end_of_the_middle_to_the_budget() -> None:
    built = build_token_prompt(JOINT, enc, "q", "d")
    assert text(built.ids) == "<P>I:task|Q:q|D:d<S>" and not built.truncated and not built.bos_added
    long = build_token_prompt(JOINT, enc, "q", "x" * 100, instruction="T")
    assert len(long.ids) == 40 and long.truncated
    assert text(long.ids) == "<P>I:T|Q:q|D:" + "x" * (40 - 6 - len("I:T|Q:q|D:")) + "<S>"
    # the model's context lowers the budget
    assert len(build_token_prompt(JOINT, enc, "q", "x" * 100, context_length=30).ids) == 30


def test_pair_rules_bos_query_share_only_second_and_suffix_budget() -> None:
    built = build_token_prompt(PAIR, enc, "q", "d", bos_token_id=-1)
    assert built.ids[0] == -1 and built.bos_added and text(built.ids) == "A:q\nB:d\nok?"
    # query <= 20 * 3 // 4 = 15 tokens; document <= 20; pair (bos + q, sep + d) <= 20 + len(suffix) = 24
    cut = build_token_prompt(PAIR, enc, "y" * 30, "z" * 30, bos_token_id=-1)
    q_ids = cut.ids[1 : 1 + 15]
    assert text(q_ids) == "A:" + "y" * 13
    assert len(cut.ids) == 24 + 4 and cut.truncated
    assert text(cut.ids[16:]) == "\n" + "B:" + "z" * (24 - 16 - 3) + "\nok?"
    # no BOS id known: none added
    assert not build_token_prompt(PAIR, enc, "q", "d").bos_added


def test_instruction_template_and_errors() -> None:
    fmt = TokenPromptFormat(query="query: {query}", query_with_instruction="instruction: {instruction}\nquery: {query}")
    assert text(build_token_prompt(fmt, enc, "q", "d").ids) == "query: qd"
    assert text(build_token_prompt(fmt, enc, "q", "d", instruction="i").ids) == "instruction: i\nquery: qd"
    with pytest.raises(ConfigError, match="placeholder"):
        build_token_prompt(TokenPromptFormat(prefix=("{nope}",)), enc, "q", "d")
    with pytest.raises(ConfigError, match="unknown fields"):
        TokenPromptFormat.from_options({"joint": True, "colour": 1})
    with pytest.raises(ConfigError, match="document"):
        TokenPromptFormat(joint=True, query="{query}")
    with pytest.raises(ConfigError, match="max_length"):
        TokenPromptFormat(max_length=0)
