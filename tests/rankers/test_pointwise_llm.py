from __future__ import annotations

import math

import pytest
from llm_oracle import graded_logprobs, pointwise_llm, yes_no_logprobs

from rerank_plugins import Candidate, load_reranker
from rerank_plugins.errors import ConfigError, ModelOutputError
from rerank_plugins.rankers.pointwise_llm import GradedLLMReranker, PointwiseLLMReranker, YesNoLLMReranker
from rerank_plugins.testing import RerankerConformance
from rerank_plugins.testing.fake_llm import ScriptedLLM

QUERY = "supersonic shock waves"


class TestYesNoConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> PointwiseLLMReranker:
        return YesNoLLMReranker(pointwise_llm(), batch_size=4)


class TestGradedConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> PointwiseLLMReranker:
        return GradedLLMReranker(pointwise_llm(graded=True))


class TestChunkedConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> PointwiseLLMReranker:
        return PointwiseLLMReranker(pointwise_llm(), max_document_tokens=8, long_documents="chunk")


def cands() -> list[Candidate]:
    return [
        Candidate(id="none", text="cooking pasta"),
        Candidate(id="two", text="shock waves form"),
        Candidate(id="one", text="supersonic flight"),
    ]


def test_p_yes_is_the_softmax_of_yes_and_no() -> None:
    llm = pointwise_llm(single_tokens={"yes", "no", "Yes", "No"})
    result = PointwiseLLMReranker(llm).rerank(QUERY, cands())
    assert result.ids == ["two", "one", "none"]
    by_id = {r.id: r for r in result.results}
    # the oracle gives P(yes) = (o + 1) / (o + 2) for o shared words; both spellings carry it, which cancels out
    assert by_id["two"].score == pytest.approx(3 / 4)
    assert by_id["none"].details["p_yes"] == pytest.approx(1 / 2)
    assert by_id["one"].details["labels"] == ["yes", "Yes", "no", "No"]
    two = by_id["two"].details
    assert two["logprob_yes"] - two["logprob_no"] == pytest.approx(math.log(3))  # log(2 * 3/4) - log(2 * 1/4)
    assert len(llm.generate_calls) == 0 and llm.forward_passes == 3


def test_batches_across_queries() -> None:
    llm = pointwise_llm()
    ranker = PointwiseLLMReranker(llm, batch_size=4)
    results = ranker.rerank_batch([QUERY, "pasta"], [cands(), cands()])
    assert [len(c.prompts) for c in llm.logprob_calls] == [4, 2]
    assert results[1].ids[0] == "none"


def test_known_model_table_and_custom_labels() -> None:
    qwen = ScriptedLLM(logprobs=yes_no_logprobs, model_id="Qwen/Qwen3-Reranker-0.6B")
    PointwiseLLMReranker(qwen).rerank(QUERY, cands())
    assert qwen.logprob_calls[0].labels == ("yes", "no")
    custom = ScriptedLLM(logprobs={"Relevant": -0.1, "Irrelevant": -2.0})
    result = PointwiseLLMReranker(custom, labels={"yes": ["Relevant"], "no": ["Irrelevant"]}).rerank(QUERY, cands())
    assert result.scores[0] == pytest.approx(1 / (1 + math.exp(-1.9)))
    with pytest.raises(ConfigError, match="single token"):
        PointwiseLLMReranker(ScriptedLLM(single_tokens=set()))


def test_graded_expectation_and_scale_rule() -> None:
    llm = pointwise_llm(graded=True)
    result = GradedLLMReranker(llm).rerank(QUERY, cands())
    assert llm.logprob_calls[0].labels == tuple(str(g) for g in range(11))
    assert "From a scale of 0 to 10" in llm.logprob_calls[0].texts[0]
    top = result.results[0]
    assert top.id == "two" and top.details["max_grade"] == 10
    assert top.score == pytest.approx(top.details["expected_grade"] / 10)
    assert sum(top.details["distribution"]) == pytest.approx(1.0)
    # "10" is two tokens ("1", "0") for digit-splitting tokenizers: the scale becomes 0..9 and the prompt says so
    split = ScriptedLLM(logprobs=graded_logprobs, single_tokens=set("0123456789"))
    ranker = GradedLLMReranker(split)
    ranker.rerank(QUERY, cands())
    assert ranker.max_grade == 9 and split.logprob_calls[0].labels == tuple("0123456789")
    assert "From a scale of 0 to 9" in split.logprob_calls[0].texts[0]


def test_chunking_keeps_the_best_chunk() -> None:
    text = "cooking pasta " * 10 + "supersonic shock waves"
    llm = pointwise_llm()
    # the scripted backend has no tokenizer: words stand in for its tokens
    result = PointwiseLLMReranker(llm, max_document_tokens=5, long_documents="chunk", chunk_overlap=0).rerank(
        QUERY, [Candidate(id="long", text=text), Candidate(id="short", text="shock")]
    )
    assert result.ids == ["long", "short"]
    assert result.results[0].details["chunks"] == 5 and result.results[0].score == pytest.approx(4 / 5)
    best = result.results[0].details["best_chunk"]
    assert text[best["start"] : best["end"]].strip() == "supersonic shock waves" and best["index"] == 4


def test_truncation_warns_and_is_recorded() -> None:
    with pytest.warns(UserWarning, match="1 of 3 passages .* truncated"):
        result = PointwiseLLMReranker(pointwise_llm(), max_document_tokens=2).rerank(QUERY, cands())
    assert {r.id for r in result if r.details.get("truncated")} == {"two"}  # the only passage over 2 words


def test_errors() -> None:
    blind = ScriptedLLM(logprobs={"maybe": 0.0})
    with pytest.raises(ModelOutputError, match="candidate 'none'"):
        PointwiseLLMReranker(blind).rerank(QUERY, cands())
    with pytest.raises(ConfigError, match="mode"):
        PointwiseLLMReranker(pointwise_llm(), mode="pairwise")
    with pytest.raises(ConfigError, match="yes_no"):
        PointwiseLLMReranker(pointwise_llm(), prompt="graded")
    with pytest.raises(ConfigError, match="labels apply"):
        PointwiseLLMReranker(pointwise_llm(), mode="graded", labels={"yes": ["y"], "no": ["n"]})
    with pytest.raises(ConfigError, match="long_documents"):
        PointwiseLLMReranker(pointwise_llm(), long_documents="split")
    with pytest.raises(ConfigError, match="not both"):
        PointwiseLLMReranker(pointwise_llm(), max_passage_words=5, max_document_tokens=5)


def test_registry_kinds() -> None:
    yes_no = load_reranker("yes-no", model=pointwise_llm())
    graded = load_reranker("graded", model=pointwise_llm(graded=True))
    assert isinstance(yes_no, YesNoLLMReranker) and yes_no.name == "yes-no:scripted-llm"
    assert isinstance(graded, GradedLLMReranker) and graded.mode == "graded"
