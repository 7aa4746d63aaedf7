from __future__ import annotations

from pathlib import Path

import pytest

from rerank_plugins.engine.permutation import parse_permutation
from rerank_plugins.errors import ConfigError
from rerank_plugins.prompts import PromptTemplate, clean_passage, get_prompt, list_prompts, load_prompt_file

EXPECTED = {"rankgpt", "rankzephyr", "first", "rank-r1", "reasonrank", "yes-no", "graded"}


def test_all_bundled_prompts_load() -> None:
    prompts = list_prompts()
    assert set(prompts) >= EXPECTED
    for name in EXPECTED:
        p = get_prompt(name)
        assert p.source and p.name == name
        assert get_prompt(name, p.version) is p
        assert get_prompt(name, 1).version == "1"


def test_rankzephyr_renders_the_original_wording() -> None:
    prompt = get_prompt("rankzephyr").render_listwise("what is a shock wave", ["first text", "second text"])
    system, user = prompt.messages
    assert system["content"].startswith("You are RankLLM")
    assert "each indicated by a numerical identifier []" in user["content"]
    assert "[1] first text\n[2] second text\nSearch Query: what is a shock wave." in user["content"]
    assert "e.g., [2] > [1]," in user["content"]
    assert prompt.assistant_prefix == ""


def test_first_uses_letters_and_forces_bracket() -> None:
    prompt = get_prompt("first").render_listwise("q", ["a", "b", "c"])
    assert "[A] a\n[B] b\n[C] c\n" in prompt.messages[1]["content"]
    assert "alphabetical identifier" in prompt.messages[1]["content"]
    assert "e.g., [B] > [A]" in prompt.messages[1]["content"]
    assert prompt.assistant_prefix == "["
    # the scheme can be overridden per window (when letters are not single tokens)
    numeric = get_prompt("first").render_listwise("q", ["a", "b"], "numeric")
    assert "[1] a" in numeric.messages[1]["content"] and "numerical identifier" in numeric.messages[1]["content"]


def test_rankgpt_is_multi_turn() -> None:
    prompt = get_prompt("rankgpt").render_listwise("q", ["a", "b"])
    roles = [m["role"] for m in prompt.messages]
    assert roles == ["system", "user", "assistant", "user", "assistant", "user", "assistant", "user"]
    assert prompt.messages[3]["content"] == "[1] a"
    assert prompt.messages[4]["content"] == "Received passage [1]."
    assert prompt.messages[-1]["content"].startswith("Search Query: q.")


def test_reasoning_prompts_carry_their_format() -> None:
    r1 = get_prompt("rank-r1")
    assert r1.output_format == "best" and r1.reasoning is not None and r1.reasoning.answer_open == "<answer>"
    text = r1.render_listwise("q", ["x", "y"]).messages[1]["content"]
    assert '"q", which of the following documents is most relevant?\n[1] x\n[2] y\nAfter completing' in text
    assert get_prompt("reasonrank").reasoning is not None


def test_pointwise_prompts() -> None:
    yn = get_prompt("yes-no").render_pointwise("q?", "doc text")
    assert "Query: q?\nDocument: doc text\nOutput:" in yn.messages[-1]["content"]
    graded = get_prompt("graded").render_pointwise("q", "d", max_grade=9)
    assert "From a scale of 0 to 9" in graded.messages[-1]["content"]
    with pytest.raises(ConfigError, match="not listwise"):
        get_prompt("yes-no").render_listwise("q", ["a"])
    with pytest.raises(ConfigError, match="not pointwise"):
        get_prompt("first").render_pointwise("q", "a")


def test_passage_text_cannot_imitate_identifiers() -> None:
    text, cut = clean_passage("see [3] and  [B]\nfor\tdetails", max_words=None)
    assert text == "see (3) and (B) for details" and not cut
    text, cut = clean_passage("one two three four", max_words=2)
    assert text == "one two" and cut
    rendered = get_prompt("rankzephyr").render_listwise("q", [clean_passage("cites [2] > [1]")[0], "b"])
    answer_like = rendered.messages[1]["content"].split("{query}.\n".format(query="q"), 1)[1].split("Search Query")[0]
    assert parse_permutation(answer_like, 2)[0] == [0, 1]  # only the real [1], [2] labels are bracketed


def test_braces_in_user_text_are_safe() -> None:
    prompt = get_prompt("rankzephyr").render_listwise("{query} {0}", ["{text} {num}"])
    assert "{text} {num}" in prompt.messages[1]["content"]


def test_custom_prompt_file_and_validation(tmp_path: Path) -> None:
    good = tmp_path / "mine.toml"
    good.write_text(
        'name = "mine"\nversion = "2"\nkind = "pointwise"\noutput_format = "yes_no"\n'
        'user = "Q: {query} D: {text} relevant?"\n'
    )
    p = get_prompt(str(good))
    assert isinstance(p, PromptTemplate) and p.key == "mine@2"
    bad = tmp_path / "bad.toml"
    head = 'name = "b"\nversion = "1"\n'
    for text, match in [
        (head + 'kind = "pointwise"\noutput_format = "yes_no"\nuser = "{query} {oops}"\n', "oops"),
        (head + 'kind = "listwise"\noutput_format = "permutation"\nuser = "{query}"\n', "passages"),
        (head + 'kind = "listwise"\noutput_format = "yes_no"\nuser = "{passages}"\n', "does not fit"),
        ("not toml [", "TOML"),
    ]:
        bad.write_text(text)
        with pytest.raises(ConfigError, match=match):
            load_prompt_file(bad)
    with pytest.raises(ConfigError, match="unknown prompt"):
        get_prompt("no-such-prompt")
    with pytest.raises(ConfigError, match="no version"):
        get_prompt("rankzephyr", version="9")
