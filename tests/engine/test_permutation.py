from __future__ import annotations

import pytest

from rerank_plugins.engine.identifiers import get_scheme
from rerank_plugins.engine.permutation import RepairCounts, format_permutation, parse_permutation
from rerank_plugins.errors import ConfigError, ModelOutputError


@pytest.mark.parametrize(
    "text",
    [
        "[3] > [1] > [2]",
        "[3]>[1]>[2]",
        "3 > 1 > 2",
        "3, 1, 2",
        "Passage 3 > Passage 1 > Passage 2",
        "passage #3, passage #1, passage #2",
        "［３］ > ［１］ > ［２］",  # full-width brackets and digits
        "[٣] > [١] > [٢]",  # Arabic-Indic digits
        "【3】 > 【1】 > 【2】",
        "(3) > (1) > (2)",
        "3 → 1 → 2",
    ],
)
def test_variants_parse_to_same_order(text: str) -> None:
    order, repairs = parse_permutation(text, 3)
    assert order == [2, 0, 1]
    assert repairs.total == 0


def test_prose_around_bracketed_answer_ignores_other_numbers() -> None:
    text = "Sure! Here is the ranking of the 3 passages for 2024:\n[3] > [1] > [2]\nHope this helps."
    order, repairs = parse_permutation(text, 3)
    assert order == [2, 0, 1]
    assert repairs.total == 0
    assert repairs.garbage_tokens == 14  # every prose word, numbers in prose included


def test_longest_chain_wins_over_numbers_in_prose() -> None:
    order, repairs = parse_permutation("Of the 4 passages, my ranking is 4 > 2 > 1 > 3.", 4)
    assert order == [3, 1, 0, 2]
    assert repairs.missing == 0


def test_letters() -> None:
    order, repairs = parse_permutation("[C] > [A] > [B]", 3, scheme="upper")
    assert order == [2, 0, 1] and repairs.total == 0
    # a single-case scheme accepts the other case
    assert parse_permutation("[c] > [a]", 3, scheme="upper")[0] == [2, 0, 1]
    assert parse_permutation("C > A > B", 3, scheme="upper")[0] == [2, 0, 1]
    assert parse_permutation("C A B", 3, scheme="upper")[0] == [2, 0, 1]
    # letters in prose are not identifiers when the answer is not letters only
    with pytest.raises(ModelOutputError):
        parse_permutation("I think a good answer is missing", 3, scheme="upper")
    # mixed scheme is case sensitive: 'a' is the 27th label
    order, repairs = parse_permutation("[a] > [B]", 3, scheme="mixed")
    assert order == [1, 0, 2] and repairs.out_of_range == 1 and repairs.missing == 2


def test_repairs_duplicates_out_of_range_missing() -> None:
    order, repairs = parse_permutation("[2] > [2] > [9] > [1] > [0]", 4)
    assert order == [1, 0, 2, 3]
    assert repairs == RepairCounts(duplicates=1, out_of_range=2, missing=2, garbage_tokens=0)
    assert repairs.total == 5
    assert repairs.as_dict()["out_of_range"] == 2


def test_incomplete_answer_not_counted_when_format_names_the_best_only() -> None:
    order, repairs = parse_permutation("[3]", 4, complete=False)
    assert order == [2, 0, 1, 3]
    assert repairs.missing == 0


def test_garbage_raises_with_raw_text() -> None:
    with pytest.raises(ModelOutputError) as info:
        parse_permutation("I cannot rank these passages.", 5)
    assert info.value.raw_text == "I cannot rank these passages."
    with pytest.raises(ModelOutputError, match=r"outside 1\.\.3"):
        parse_permutation("[7] > [9]", 3)
    with pytest.raises(ModelOutputError):
        parse_permutation("", 3)


def test_garbage_fallback_keeps_input_order() -> None:
    order, repairs = parse_permutation("no idea", 3, fallback=True)
    assert order == [0, 1, 2]
    assert repairs.missing == 3 and repairs.garbage_tokens == 2


def test_format_and_schemes() -> None:
    assert format_permutation([1, 0, 2]) == "[2] > [1] > [3]"
    assert format_permutation([1, 0], "upper") == "[B] > [A]"
    assert get_scheme("upper").example(5) == "[B] > [A]"
    assert get_scheme("lower").labels(3) == ["a", "b", "c"]
    with pytest.raises(ConfigError):
        get_scheme("upper").labels(27)
    with pytest.raises(ConfigError):
        get_scheme("roman")


def test_parse_roundtrip_random_permutations() -> None:
    import random

    rng = random.Random(0)
    for n in (1, 2, 7, 20, 100):
        for scheme in ("numeric", "upper") if n <= 26 else ("numeric",):
            perm = list(range(n))
            rng.shuffle(perm)
            order, repairs = parse_permutation(format_permutation(perm, scheme), n, scheme=scheme)
            assert order == perm and repairs == RepairCounts()
