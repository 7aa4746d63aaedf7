"""InsertRank: scores in the prompt (raw / min-max / percent), both modes, missing scores, conformance."""

from __future__ import annotations

import pytest
from methods_toys import score_reading_llm, shown_scores

from rerank_plugins import Candidate, ConfigError, InvalidInputError
from rerank_plugins.rankers.insertrank import InsertRankReranker, format_scores
from rerank_plugins.testing import RerankerConformance

# text overlap with the query says d0 first; the first-stage scores say d2 > d1 > d0
CANDS = [
    Candidate(id="d0", text="supersonic shock waves", score=2.0),
    Candidate(id="d1", text="wing flutter", score=4.0),
    Candidate(id="d2", text="heat transfer", score=12.3456),
]


def test_format_scores_hand_computed() -> None:
    assert format_scores([12.3456, None, 3.0]) == ["12.35", None, "3.00"]
    assert format_scores([2.0, 4.0, 3.0], "minmax") == ["0.00", "1.00", "0.50"]
    assert format_scores([2.0, 4.0, 3.0], "percent") == ["0", "100", "50"]
    assert format_scores([2.0, None, 4.0], "minmax", decimals=1) == ["0.0", None, "1.0"]
    assert format_scores([5.0, 5.0], "percent") == ["0", "0"]
    with pytest.raises(InvalidInputError, match="finite"):
        format_scores([float("inf")])
    with pytest.raises(ConfigError, match="score_scale"):
        format_scores([1.0], "log")


def test_generate_mode_writes_scores_and_the_model_uses_them() -> None:
    llm = score_reading_llm()
    out = InsertRankReranker(llm, window_size=3).rerank("supersonic shock waves", CANDS)
    assert out.ids == ["d2", "d1", "d0"]
    prompt = llm.prompts_seen[0]
    assert "[1] supersonic shock waves (BM25 score: 2.00)" in prompt
    assert "[3] heat transfer (BM25 score: 12.35)" in prompt
    assert "BM25 score from the first-stage keyword search" in prompt
    assert out.details["prompt"] == "insertrank@1" and out.details["score_scale"] == "raw"
    assert len(llm.generate_calls) == 1 and not llm.logprob_calls


def test_first_mode_one_forward_pass_per_window() -> None:
    llm = score_reading_llm()
    ranker = InsertRankReranker(llm, mode="first", window_size=2, stride=1, num_passes=2, score_scale="percent")
    out = ranker.rerank("supersonic shock waves", CANDS)
    assert out.ids == ["d2", "d1", "d0"]
    windows = len(out.traces)
    assert windows >= 3 and not llm.generate_calls and len(llm.logprob_calls) == windows
    assert all(c.prompts[0].assistant_prefix == "[" for c in llm.logprob_calls)
    # normalised over the whole list, so a passage shows the same number in every window
    seen = {}
    for text in llm.prompts_seen:
        for _, score in shown_scores(text):
            seen.setdefault(score, 0)
    assert set(seen) == {0.0, 19.0, 100.0}  # (4 - 2) / (12.3456 - 2) = 0.193
    assert out.details["prompt"] == "insertrank-first@1"
    assert ranker.name.startswith("insertrank-first:")


def test_missing_scores() -> None:
    cands = [*CANDS, Candidate(id="d3", text="no score here")]
    llm = score_reading_llm()
    out = InsertRankReranker(llm, window_size=4).rerank("q", cands)
    assert out.details["unscored_passages"] == 1
    assert "[4] no score here\n" in llm.prompts_seen[0]
    assert out.ids[-1] == "d3"
    with pytest.raises(InvalidInputError, match="without a first-stage score"):
        InsertRankReranker(score_reading_llm(), missing="raise").rerank("q", cands)


def test_configuration_errors() -> None:
    with pytest.raises(ConfigError, match="score_scale"):
        InsertRankReranker(score_reading_llm(), score_scale="zscore")
    with pytest.raises(ConfigError, match="missing"):
        InsertRankReranker(score_reading_llm(), missing="zero")
    with pytest.raises(ConfigError, match="score_label"):
        InsertRankReranker(score_reading_llm(), score_label=" ")
    with pytest.raises(ConfigError, match="decimals"):
        InsertRankReranker(score_reading_llm(), decimals=-1)


def test_registered_kind() -> None:
    from rerank_plugins import strategies

    assert strategies()["insertrank"].load_class() is InsertRankReranker


class TestInsertRankGenerateConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> InsertRankReranker:
        return InsertRankReranker(score_reading_llm(), window_size=4, stride=2)


class TestInsertRankFirstConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> InsertRankReranker:
        return InsertRankReranker(score_reading_llm(), mode="first", window_size=4, stride=2, score_scale="minmax")


def test_each_mode_reader_carries_its_prompt() -> None:
    """The prompt of a mode comes from its answer reader (as in listwise.py), not from a switch on ``self.mode``."""
    readers = InsertRankReranker.answers
    assert {m: r.default_prompt for m, r in readers.items()} == {"first": "insertrank-first", "generate": "insertrank"}
    for mode, prompt in (("first", "insertrank-first"), ("generate", "insertrank")):
        ranker = InsertRankReranker(score_reading_llm(), mode=mode)
        assert ranker.answer is readers[mode] and ranker.template.name == prompt
