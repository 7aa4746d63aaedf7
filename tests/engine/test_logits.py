from __future__ import annotations

import math

import pytest

from rerank_plugins.engine.logits import (
    DEFAULT_YES_NO,
    BinaryLabels,
    choose_grade_scale,
    choose_id_scheme,
    choose_yes_no_labels,
    first_order,
    graded_expectation,
    logsumexp,
    yes_probability,
)
from rerank_plugins.errors import ConfigError, ModelOutputError

NEG = -math.inf


def digits_split(label: str) -> bool:
    """A tokenizer that splits numbers into digits (Llama 3 / Qwen 2.5 style) and has every letter."""
    return len(label.strip()) == 1


def test_first_order_sorts_by_logprob_with_stable_ties() -> None:
    order, unseen = first_order([-2.0, -0.5, -2.0, -1.0])
    assert order == [1, 3, 0, 2] and unseen == 0


def test_first_order_unseen_last_in_input_order() -> None:
    order, unseen = first_order([NEG, -3.0, NEG, -1.0])
    assert order == [3, 1, 0, 2] and unseen == 2


def test_first_order_errors() -> None:
    with pytest.raises(ModelOutputError, match="no probability"):
        first_order([NEG, NEG])
    with pytest.raises(ModelOutputError, match="invalid"):
        first_order([float("nan"), -1.0])


def test_choose_id_scheme_prefers_letters_and_falls_back() -> None:
    assert choose_id_scheme(lambda s: True, 20).name == "upper"
    only_lower = choose_id_scheme(lambda s: s.islower() or s.isdigit(), 20)
    assert only_lower.name == "lower"
    assert choose_id_scheme(lambda s: s.isdigit(), 9).name == "numeric"
    with pytest.raises(ConfigError, match="numeric: '10'"):
        choose_id_scheme(lambda s: s.isdigit() and len(s) == 1, 20)  # digits split, no letters
    assert choose_id_scheme(digits_split, 40).name == "mixed"
    with pytest.raises(ConfigError, match="smaller window"):
        choose_id_scheme(digits_split, 60)


def test_yes_probability_is_softmax_of_the_two_labels() -> None:
    labels = BinaryLabels(("yes",), ("no",))
    p, lp_yes, lp_no = yes_probability([math.log(0.3), math.log(0.1)], labels)
    assert p == pytest.approx(0.75)
    assert (lp_yes, lp_no) == (pytest.approx(math.log(0.3)), pytest.approx(math.log(0.1)))
    assert yes_probability([NEG, -1.0], labels)[0] == 0.0
    assert yes_probability([-1.0, NEG], labels)[0] == 1.0
    assert yes_probability([-1000.0, 0.0], labels)[0] == pytest.approx(0.0)
    with pytest.raises(ModelOutputError):
        yes_probability([NEG, NEG], labels)


def test_yes_variants_are_summed() -> None:
    labels = BinaryLabels(("yes", " Yes"), ("no",))
    p, _, _ = yes_probability([math.log(0.2), math.log(0.2), math.log(0.4)], labels)
    assert p == pytest.approx(0.5)


def test_choose_yes_no_labels_by_single_token() -> None:
    labels = choose_yes_no_labels(lambda s: not s.startswith(" ") and s != "YES" and s != "NO")
    assert labels == BinaryLabels(("yes", "Yes"), ("no", "No"))
    assert choose_yes_no_labels(lambda s: True, {"yes": ["Relevant"], "no": ["Irrelevant"]}).yes == ("Relevant",)
    with pytest.raises(ConfigError, match="none of the no spellings"):
        choose_yes_no_labels(lambda s: "y" in s.lower())
    with pytest.raises(ConfigError, match="both yes and no"):
        BinaryLabels(("ok",), ("ok",))
    assert len(DEFAULT_YES_NO.labels) == 10


def test_graded_expectation() -> None:
    expected, dist = graded_expectation([math.log(0.5), NEG, math.log(0.5)])
    assert expected == pytest.approx(1.0) and dist == pytest.approx([0.5, 0.0, 0.5])
    # unnormalised log-probs are renormalised over the grade labels
    expected, dist = graded_expectation([-5.0] * 10 + [-5.0 + math.log(10)])
    assert sum(dist) == pytest.approx(1.0) and expected == pytest.approx((45 + 100) / 20)
    with pytest.raises(ModelOutputError):
        graded_expectation([NEG, NEG])


def test_grade_scale_rule_for_ten() -> None:
    assert choose_grade_scale(lambda s: True) == 10
    assert choose_grade_scale(digits_split) == 9  # "10" is "1" + "0": fall back to 0..9
    assert choose_grade_scale(digits_split, max_grade=5) == 5
    with pytest.raises(ConfigError, match="not single tokens"):
        choose_grade_scale(lambda s: s != "3")
    with pytest.raises(ConfigError):
        choose_grade_scale(lambda s: True, max_grade=0)


def test_logsumexp() -> None:
    assert logsumexp([]) == NEG and logsumexp([NEG]) == NEG
    assert logsumexp([0.0, 0.0]) == pytest.approx(math.log(2))
    assert logsumexp([1000.0, 1000.0]) == pytest.approx(1000 + math.log(2))
