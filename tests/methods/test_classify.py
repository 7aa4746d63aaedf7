"""Label ranking: softmax for single-label, independent scores for multi-label, thresholds, templates."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
from methods_toys import OverlapReranker, TableReranker

from rerank_plugins import ConfigError, InvalidInputError, LabelClassifier, classify


def test_single_label_softmax_hand_computed() -> None:
    table = TableReranker({"sport": 2.0, "politics": 0.0, "science": 1.0})
    out = classify("text", ["sport", "politics", "science"], reranker=table)
    z = math.e**2 + 1 + math.e
    assert out.as_dict() == pytest.approx({"sport": math.e**2 / z, "science": math.e / z, "politics": 1 / z})
    assert [s.label for s in out.labels] == ["sport", "science", "politics"]
    assert [s.raw_score for s in out.labels] == [2.0, 1.0, 0.0]
    assert out.predicted == ("sport",) and out.top == "sport"
    assert sum(s.score for s in out.labels) == pytest.approx(1.0)
    assert not out.multi_label


def test_temperature_sharpens() -> None:
    table = TableReranker({"a": 0.2, "b": 0.1})
    soft = classify("t", ["a", "b"], reranker=table).as_dict()["a"]
    sharp = classify("t", ["a", "b"], reranker=table, temperature=0.05).as_dict()["a"]
    assert soft == pytest.approx(1 / (1 + math.exp(-0.1)))
    assert sharp == pytest.approx(1 / (1 + math.exp(-2.0)))


def test_single_label_threshold_can_predict_nothing() -> None:
    table = TableReranker({"a": 0.0, "b": 0.0})
    out = classify("t", ["a", "b"], reranker=table, threshold=0.6)
    assert out.predicted == () and out.top is None
    assert out.as_dict() == {"a": 0.5, "b": 0.5}


def test_multi_label_keeps_raw_scores_and_threshold() -> None:
    table = TableReranker({"a": 0.9, "b": 0.2, "c": 0.7})
    out = classify("t", ["a", "b", "c"], reranker=table, multi_label=True, threshold=0.5)
    assert out.as_dict() == {"a": 0.9, "c": 0.7, "b": 0.2}
    assert out.predicted == ("a", "c")
    everything = classify("t", ["a", "b", "c"], reranker=table, multi_label=True)
    assert everything.predicted == ("a", "c", "b")
    zero = classify("t", ["a", "b", "c"], reranker=table, multi_label=True, threshold=0.0)
    assert zero.predicted == ("a", "c", "b")


def test_infinite_scores_in_softmax() -> None:
    table = TableReranker({"a": float("-inf"), "b": 0.0})
    assert classify("t", ["a", "b"], reranker=table).as_dict() == {"b": 1.0, "a": 0.0}


def test_descriptions_and_template_reach_the_reranker() -> None:
    overlap = OverlapReranker()
    clf = LabelClassifier(overlap, template="about {description}")
    out = clf.classify("shock waves in supersonic flow", {"aero": "supersonic flow", "food": "pasta"})
    assert out.top == "aero"
    assert overlap.queries == ["shock waves in supersonic flow"]


def test_batch_and_overrides() -> None:
    table = TableReranker({"a": 1.0, "b": 0.0})
    clf = LabelClassifier(table, multi_label=True, threshold=0.5)
    outs = clf.classify_batch(["x", "y"], ["a", "b"])
    assert [o.predicted for o in outs] == [("a",), ("a",)]
    single = clf.classify("x", ["a", "b"], multi_label=False)
    assert single.predicted == ("a",) and single.as_dict()["a"] == pytest.approx(1 / (1 + math.exp(-1)))


def test_validation() -> None:
    table = TableReranker({})
    with pytest.raises(InvalidInputError, match="duplicate label"):
        classify("t", ["a", "a"], reranker=table)
    with pytest.raises(InvalidInputError, match="empty"):
        classify("t", [], reranker=table)
    with pytest.raises(InvalidInputError, match="labels must be"):
        classify("t", "a", reranker=table)
    with pytest.raises(ConfigError, match="temperature"):
        classify("t", ["a"], reranker=table, temperature=0)
    with pytest.raises(ConfigError, match="threshold"):
        classify("t", ["a"], reranker=table, threshold=float("nan"))
    with pytest.raises(ConfigError, match="template"):
        LabelClassifier(table, template="no placeholder")
    with pytest.raises(InvalidInputError, match="empty"):
        classify("   ", ["a"], reranker=table)


@pytest.mark.parametrize("order", ["classify, LabelClassifier", "LabelClassifier, classify"])
def test_public_classify_is_the_function_in_any_import_order(order: str) -> None:
    """The submodule used to shadow the lazy export: ``from rerank_plugins import LabelClassifier, classify``
    gave the module (``'module' object is not callable``)."""
    code = (
        f"from rerank_plugins import {order}\n"
        "import rerank_plugins, rerank_plugins._classify\n"
        "assert callable(classify) and isinstance(LabelClassifier, type), classify\n"
        "assert rerank_plugins.classify is classify\n"
        "from rerank_plugins import classify as again\n"
        "assert again is classify\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
