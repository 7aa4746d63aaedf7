from __future__ import annotations

import pytest

from rerank_plugins.engine.permutation import parse_permutation
from rerank_plugins.engine.reasoning import THINK_ANSWER, THINK_THEN_TEXT, ReasoningFormat, split_reasoning
from rerank_plugins.errors import ModelOutputError


def test_rank_r1_format() -> None:
    text = "<think> Passage 6 matches exactly. </think>\n<answer>[6]</answer>"
    parsed = split_reasoning(text)
    assert parsed.reasoning == "Passage 6 matches exactly."
    assert parsed.answer == "[6]"


def test_missing_open_think_is_fine_and_tags_are_case_insensitive() -> None:
    parsed = split_reasoning("thinking... </THINK> <Answer> [2] > [1] </Answer> trailing text")
    assert parsed.reasoning == "thinking..."
    assert parsed.answer == "[2] > [1]"


def test_closed_answer_survives_truncation_flag() -> None:
    parsed = split_reasoning("<think>r</think><answer>[1] > [2]</answer> and then the model rambled", truncated=True)
    assert parsed.answer == "[1] > [2]"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<think> [3] > [1] > [2] is my guess but I keep thinking", "not closed"),
        ("<think> reasoning </think> [3] > [1]", "no <answer>"),
        ("<think> reasoning </think> <answer>[3] > [1]", "answer is not closed"),
        ("<think> reasoning </think> <answer>  </answer>", "empty"),
        # an answer inside the reasoning is never used
        ("<think> <answer>[2] > [1]</answer> hmm </think> nothing", "no <answer>"),
    ],
)
def test_failures_carry_raw_text(text: str, message: str) -> None:
    with pytest.raises(ModelOutputError, match=message) as info:
        split_reasoning(text)
    assert info.value.raw_text == text


def test_never_scrapes_ids_from_reasoning() -> None:
    text = "<think> I believe [3] > [1] > [2] but let me double check the details of passage"
    with pytest.raises(ModelOutputError) as info:
        split_reasoning(text, truncated=True)
    assert "token limit" in str(info.value)
    # the ids are right there in the reasoning, and still nothing is parsed
    assert parse_permutation(text, 3)[0] == [2, 0, 1]


def test_answer_after_think_without_tags() -> None:
    parsed = split_reasoning("<think>compare</think>\n\n[2] > [1]", THINK_THEN_TEXT)
    assert (parsed.reasoning, parsed.answer) == ("compare", "[2] > [1]")
    with pytest.raises(ModelOutputError, match="incomplete"):
        split_reasoning("<think>compare</think>\n[2] > ", THINK_THEN_TEXT, truncated=True)
    with pytest.raises(ModelOutputError, match="empty"):
        split_reasoning("<think>compare</think>\n\n", THINK_THEN_TEXT)


def test_custom_tags_and_validation() -> None:
    fmt = ReasoningFormat("<reason>", "</reason>", "<rank>", "</rank>")
    assert split_reasoning("<reason>x</reason><rank>[1]</rank>", fmt).answer == "[1]"
    with pytest.raises(ValueError):
        ReasoningFormat(answer_open="<a>", answer_close=None)
    assert THINK_ANSWER.answer_open == "<answer>"
