"""rerank_plugins.integration: the host-independent pieces the three adapters share (issue 13, issue 15 item 3)."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from rerank_plugins import ConfigError
from rerank_plugins.integration import (
    affixed,
    build_reranker,
    check_limits,
    document_text,
    host_options,
    model_name,
)
from rerank_plugins.testing.rerankers import KeywordReranker


def test_llm_strategies_get_loading_conventions_in_backend_options() -> None:
    out = host_options("some/model", "first", {"window_size": 4}, device="cpu", batch_size=2, token="hf_x")
    assert out == {
        "window_size": 4,
        "backend_options": {
            "device": "cpu", "batch_size": 2, "model_kwargs": {"token": "hf_x"}, "tokenizer_kwargs": {"token": "hf_x"},
        },
    }


def test_encoders_take_them_directly_and_scale_score_false_is_raw() -> None:
    out = host_options("some/model", "cross-encoder", None, device="cuda:1", model_kwargs={"revision": "r1"},
                       token="hf_x", scale_score=False)
    assert out == {"device": "cuda:1", "model_kwargs": {"token": "hf_x", "revision": "r1"},
                   "tokenizer_kwargs": {"token": "hf_x"}, "activation": "raw"}
    assert host_options("some/model", "cross-encoder", None, scale_score=True) == {}  # its default is scaled
    assert host_options("some/model", "embedding", {"batch_size": 8}, batch_size=8) == {"batch_size": 8}


def test_sentence_transformers_loading_arguments_issue_21() -> None:
    """Issue 21 items 17-18: ``trust_remote_code`` given itself or inside ``model_kwargs`` becomes the strategy's
    (or the LLM backend's) keyword, never a second ``from_pretrained`` keyword; ``config_kwargs`` join
    ``model_kwargs``; ``runtime`` (sentence-transformers' ``backend``) ``"onnx"`` is the cross-encoder's ONNX path."""
    out = host_options("m", "cross-encoder", None, model_kwargs={"trust_remote_code": True, "revision": "r"})
    assert out == {"model_kwargs": {"revision": "r"}, "trust_remote_code": True}
    assert host_options("m", "embedding", None, trust_remote_code=True) == {"trust_remote_code": True}
    assert host_options("m", "first", None, model_kwargs={"trust_remote_code": True}) == {
        "backend_options": {"model_kwargs": {}, "trust_remote_code": True}
    }
    assert host_options("fusion", None, None, trust_remote_code=False) == {}
    assert host_options("m", "cross-encoder", None, config_kwargs={"hidden_act": "relu"}, model_kwargs={"a": 1}) == {
        "model_kwargs": {"a": 1, "hidden_act": "relu"}
    }
    assert host_options("m", "cross-encoder", None, runtime="onnx") == {"quantize": "onnx"}
    assert host_options("m", "cross-encoder", {"quantize": "onnx-int8"}, runtime="onnx") == {"quantize": "onnx-int8"}
    assert host_options("m", "cross-encoder", None, runtime="torch") == {}


@pytest.mark.parametrize(
    ("kind", "conventions", "message"),
    [
        ("cross-encoder", {"trust_remote_code": False, "model_kwargs": {"trust_remote_code": True}}, "disagree"),
        ("cross-encoder", {"model_kwargs": {"trust_remote_code": "yes"}}, "must be a bool"),
        ("cross-encoder", {"config_kwargs": {"a": 1}, "model_kwargs": {"a": 2}}, "config_kwargs and model_kwargs"),
        ("cross-encoder", {"runtime": "openvino"}, "backend must be one of"),
        ("embedding", {"runtime": "onnx"}, "backend='onnx' applies to cross-encoders"),
        ("fusion", {"trust_remote_code": True}, "trust_remote_code does not apply"),
    ],
)
def test_loading_arguments_that_cannot_apply(kind, conventions, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        host_options("m", kind, None, **conventions)


def test_token_is_skipped_where_no_hugging_face_model_is_loaded() -> None:
    assert host_options("fusion", None, {"method": "rrf"}, token="hf_x") == {"method": "rrf"}
    assert host_options("m", "first", {"backend": "openai"}, token="hf_x") == {"backend": "openai"}


@pytest.mark.parametrize(
    ("kind", "options", "conventions", "message"),
    [
        ("fusion", None, {"batch_size": 4}, "batch_size does not apply"),
        ("embedding", None, {"scale_score": False}, "scale_score=False"),
        ("cross-encoder", {"device": "cpu"}, {"device": "cuda"}, "device is given twice"),
        ("first", {"backend_options": {"batch_size": 1}}, {"batch_size": 2}, "batch_size is given twice"),
        ("cross-encoder", {"activation": "sigmoid"}, {"scale_score": False}, "activation"),
    ],
)
def test_conflicts_and_conventions_that_cannot_apply(kind, options, conventions, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(ConfigError, match=message):
        host_options("some/model", kind, options, **conventions)


def test_bundled_names_and_recipes_resolve_their_strategy_without_loading() -> None:
    assert host_options("minilm", None, None, batch_size=4) == {"batch_size": 4}
    assert host_options("smollm2-135m", None, None, batch_size=4) == {"backend_options": {"batch_size": 4}}


def test_document_text_is_haystack_s_rule() -> None:
    meta = {"title": "T", "year": 1999, "none": None}
    assert document_text("body", meta, meta_fields=["title", "none", "missing", "year"], separator=" | ",
                         prefix="P: ", suffix=" S") == "P: T | 1999 | body S"
    assert document_text(None, meta, meta_fields=["title"]) == "T\n"
    assert document_text(None) == "" and affixed("q", "a ", " b") == "a q b"
    with pytest.raises(ConfigError, match="prefix"):
        affixed("q", None)  # type: ignore[arg-type]


@pytest.mark.parametrize("top_k", [-1, 2.5, True, "3"])
def test_check_limits_refuses_bad_top_k(top_k: object) -> None:
    with pytest.raises(ConfigError, match="top_k"):
        check_limits(top_k, None)


@pytest.mark.parametrize("threshold", ["high", math.nan, False])
def test_check_limits_refuses_bad_thresholds(threshold: object) -> None:
    with pytest.raises(ConfigError, match="score_threshold"):
        check_limits(None, threshold)


def test_check_limits_accepts_none_zero_and_numbers() -> None:
    for top_k, threshold in [(None, None), (0, 0.0), (5, -1), (1, 0.5)]:
        check_limits(top_k, threshold)


def test_model_name_and_instruction_passthrough(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rerank_plugins import models

    spec = models.StrategySpec("keyword", "rerank_plugins.testing.rerankers:KeywordReranker", "test",
                               needs_model=False)
    monkeypatch.setitem(models._STRATEGIES, "keyword", spec)
    assert model_name(tmp_path) == str(tmp_path) and model_name(KeywordReranker()) == "keyword"
    built = build_reranker("keyword", options={"offset": 1.0}, instruction="judge")
    assert isinstance(built, KeywordReranker) and built.instruction == "judge" and built.offset == 1.0
    with pytest.raises(ConfigError, match="twice"):
        build_reranker("keyword", options={"instruction": "a"}, instruction="b")
    with pytest.raises(ConfigError, match="already-built"):
        build_reranker(KeywordReranker(), instruction="judge")
