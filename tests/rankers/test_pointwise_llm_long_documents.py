"""Pointwise LLM (yes/no, graded) on long passages (issue 20): the passage budget counts the model's tokens;
truncate warns once per call with the count; chunk scores token windows (identical ones once) and reports the best
window's span in the original text; short passages score the same in both modes; the word-based options are
deprecated aliases that warn at the caller's line. A tiny random Llama with SmolLM2's tokenizer (transformers
backend), its real prompts counted with a wrapper."""

from __future__ import annotations

import warnings
from typing import Any

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from long_texts import FILLER, NEEDLE, QUERY, SHORT, by_id

from rerank_plugins import Candidate, ConfigError
from rerank_plugins.engine.length_policy import TruncationWarning
from rerank_plugins.rankers.pointwise_llm import GradedLLMReranker, PointwiseLLMReranker, YesNoLLMReranker

LONG = FILLER * 12 + NEEDLE + FILLER * 3


@pytest.fixture(scope="module")
def backend(tiny_llama_backend: Any) -> Any:
    return tiny_llama_backend


class _Prompts:
    """Counts the prompts the real backend scores (a wrapper; the model computes)."""

    def __init__(self, backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
        real = backend.label_logprobs
        self.prompts: list[Any] = []

        def label_logprobs(prompts: Any, labels: Any) -> Any:
            self.prompts.extend(prompts)
            return real(prompts, labels)

        monkeypatch.setattr(backend, "label_logprobs", label_logprobs)



def _tokens(backend: Any, text: str) -> int:
    return len(backend.tokenize_text(text))


def test_truncate_counts_the_models_tokens_and_warns_once(backend: Any) -> None:
    ranker = YesNoLLMReranker(backend, max_document_tokens=40)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ranker.rerank(QUERY, [LONG, SHORT[0], LONG + " more"])
    cut = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(cut) == 1 and "2 of 3 passages" in str(cut[0].message) and cut[0].filename == __file__
    assert by_id(result)["0"].details["truncated"] is True and "truncated" not in by_id(result)["1"].details
    prompt = ranker.build_prompts(QUERY, [LONG])[0]
    shown = prompt.messages[-1]["content"] if prompt.messages else prompt.raw
    assert FILLER.strip()[:20] in str(shown) and NEEDLE.strip() not in str(shown)


def test_chunk_reports_the_best_window_and_scores_it_as_alone(backend: Any) -> None:
    ranker = YesNoLLMReranker(backend, max_document_tokens=40, long_documents="chunk")
    result = ranker.rerank(QUERY, [LONG, *SHORT])
    long = by_id(result)["0"]
    best = long.details["best_chunk"]
    assert best["chunks"] > 1 and 0 <= best["start"] < best["end"] <= len(LONG)
    window = LONG[best["start"] : best["end"]]
    assert _tokens(backend, " ".join(window.split())) <= 40
    # the window, scored as a passage of its own, gets the same score (MaxP: the candidate's score)
    alone = by_id(ranker.rerank(QUERY, [window]))["0"]
    assert best["score"] == pytest.approx(alone.score, abs=1e-6) and long.score == pytest.approx(best["score"])
    assert long.details["p_yes"] == pytest.approx(best["score"])  # the best window's answer details
    assert result.details["chunked"] == 1


def test_short_passages_score_the_same_in_chunk_mode(backend: Any) -> None:
    plain = by_id(YesNoLLMReranker(backend).rerank(QUERY, SHORT))
    chunked = by_id(YesNoLLMReranker(backend, long_documents="chunk").rerank(QUERY, SHORT))
    for i in ("0", "1"):
        assert chunked[i].score == plain[i].score
        assert chunked[i].details["best_chunk"]["chunks"] == 1


def test_identical_windows_are_scored_once(backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    ranker = GradedLLMReranker(backend, max_document_tokens=30, long_documents="chunk", chunk_overlap=0)
    other = FILLER * 12 + "lift is the force that holds an aircraft up. "  # shares its first windows with LONG
    plans = [ranker._windows(QUERY, Candidate(id=str(i), text=t))[1] for i, t in enumerate((LONG, other))]
    windows = [w for p in plans for w in p]
    assert len(set(windows)) < len(windows)
    counter = _Prompts(backend, monkeypatch)
    result = ranker.rerank(QUERY, [LONG, other, LONG, SHORT[0]])
    assert len(counter.prompts) == len(set(windows)) + 1
    assert result.details["rows_scored"] == len(counter.prompts)


def test_aggregates(backend: Any) -> None:
    options = {"max_document_tokens": 40, "long_documents": "chunk"}
    best = by_id(YesNoLLMReranker(backend, **options).rerank(QUERY, [LONG]))["0"]
    first = by_id(YesNoLLMReranker(backend, chunk_aggregate="first", **options).rerank(QUERY, [LONG]))["0"]
    mean = by_id(YesNoLLMReranker(backend, chunk_aggregate="mean", **options).rerank(QUERY, [LONG]))["0"]
    assert first.details["best_chunk"] == best.details["best_chunk"]
    assert mean.score <= best.score and first.score <= best.score


def test_word_options_are_deprecated_aliases(backend: Any) -> None:
    with pytest.warns(FutureWarning, match="max_passage_words") as caught:
        ranker = PointwiseLLMReranker(backend, max_passage_words=5)
    assert caught[0].filename == __file__
    with pytest.warns(TruncationWarning, match="max_passage_words=5 words"):
        ranker.rerank(QUERY, [LONG])
    with pytest.warns(FutureWarning, match="long_passages") as caught:
        chunking = PointwiseLLMReranker(backend, long_passages="chunk")
    assert caught[0].filename == __file__ and chunking.policy.chunking
    with pytest.raises(ConfigError, match="disagree"), pytest.warns(FutureWarning):
        PointwiseLLMReranker(backend, long_passages="chunk", long_documents="truncate")


def test_with_length_policy_shares_the_backend(backend: Any) -> None:
    from dataclasses import replace

    ranker = YesNoLLMReranker(backend, max_document_tokens=40)
    assert ranker.with_length_policy(ranker.policy) is ranker
    chunking = ranker.with_length_policy(replace(ranker.policy, long_documents="chunk"))
    assert chunking.backend is backend and not ranker.policy.chunking
    assert by_id(chunking.rerank(QUERY, [LONG]))["0"].details["best_chunk"]["chunks"] > 1
    chunking.close()
    assert ranker.rerank(QUERY, SHORT).results  # the shared backend still works
