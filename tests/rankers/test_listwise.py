from __future__ import annotations

import asyncio
import math

import pytest
from llm_oracle import first_logprobs, listwise_answer, listwise_llm, ranked_labels

from rerank_plugins import Candidate, load_reranker
from rerank_plugins.backends.base import Generation
from rerank_plugins.engine.windows import plan_windows
from rerank_plugins.errors import ConfigError, ModelOutputError
from rerank_plugins.rankers.listwise import FirstReranker, ListwiseReranker
from rerank_plugins.testing import RerankerConformance
from rerank_plugins.testing.fake_llm import ScriptedLLM

QUERY = "supersonic shock waves"


def docs(n: int, relevant: dict[int, int] | None = None) -> list[Candidate]:
    """n filler passages; passage i gets relevant[i] query words (more words = more relevant)."""
    query_words = QUERY.split()
    relevant = relevant or {}
    out = []
    for i in range(n):
        extra = " ".join(query_words[: relevant.get(i, 0)])
        out.append(Candidate(id=f"d{i}", text=f"filler passage number {i} {extra}".strip()))
    return out


# ------------------------------------------------------------------ conformance (prompt-reading oracle)
class TestGenerateConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> ListwiseReranker:
        return ListwiseReranker(listwise_llm())


class TestGenerateSmallWindowsConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> ListwiseReranker:
        return ListwiseReranker(listwise_llm(), window_size=3, stride=1, num_passes=2)


class TestRankGPTMultiTurnConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> ListwiseReranker:
        return ListwiseReranker(listwise_llm(), prompt="rankgpt", window_size=4, stride=2)


class TestFirstConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> ListwiseReranker:
        return FirstReranker(listwise_llm(), window_size=4, stride=2, top_k_settle=4)


# ------------------------------------------------------------------ the "Must show"
def test_first_is_one_forward_pass_per_window_and_never_generates() -> None:
    llm = listwise_llm()
    ranker = ListwiseReranker(llm, mode="first", window_size=4, stride=2)
    result = ranker.rerank(QUERY, docs(10, {7: 3, 2: 2, 9: 1}))
    windows = len(plan_windows(10, window_size=4, stride=2))
    assert windows == 4
    assert len(llm.generate_calls) == 0
    assert len(llm.logprob_calls) == windows
    assert all(len(call.prompts) == 1 for call in llm.logprob_calls)
    assert llm.forward_passes == windows
    assert all(call.labels == ("A", "B", "C", "D") for call in llm.logprob_calls)
    assert all(call.prompts[0].assistant_prefix == "[" for call in llm.logprob_calls)
    assert len(result.traces) == windows
    assert result.ids[:2] == ["d7", "d2"]  # one pass settles window - stride = 2 positions


def test_generate_and_first_agree_on_the_same_windows() -> None:
    cands = docs(12, {11: 3, 5: 2, 0: 1})
    gen = ListwiseReranker(listwise_llm(), window_size=5, stride=2).rerank(QUERY, cands)
    first = ListwiseReranker(listwise_llm(), mode="first", window_size=5, stride=2).rerank(QUERY, cands)
    assert gen.ids == first.ids
    assert [(t.start, t.end) for t in gen.traces] == [(t.start, t.end) for t in first.traces]


# ------------------------------------------------------------------ batching across queries
def test_windows_of_different_queries_share_backend_calls() -> None:
    llm = listwise_llm()
    ranker = ListwiseReranker(llm, mode="first", window_size=4, stride=2)
    lists = [docs(10, {9: 3}), docs(10, {4: 2}), docs(6, {5: 1})]
    results = ranker.rerank_batch([QUERY, QUERY, QUERY], lists)
    per_query = [len(plan_windows(len(c), window_size=4, stride=2)) for c in lists]
    assert per_query == [4, 4, 2]
    assert len(llm.logprob_calls) == max(per_query)  # one call per step
    assert [len(c.prompts) for c in llm.logprob_calls] == [3, 3, 2, 2]
    assert llm.forward_passes == sum(per_query)
    # identical to ranking each query on its own
    single = [ListwiseReranker(listwise_llm(), mode="first", window_size=4, stride=2).rerank(QUERY, c) for c in lists]
    assert [r.ids for r in results] == [r.ids for r in single]


def test_batch_windows_false_sends_one_prompt_per_call() -> None:
    llm = listwise_llm()
    ranker = ListwiseReranker(llm, window_size=4, stride=2, batch_windows=False)
    ranker.rerank_batch([QUERY, QUERY], [docs(6), docs(6)])
    assert all(len(c.prompts) == 1 for c in llm.generate_calls) and len(llm.generate_calls) == 4


# ------------------------------------------------------------------ parsing repairs and failures
def test_repair_counts_in_trace_and_totals() -> None:
    llm = ScriptedLLM(["Sure: [2] > [2] > [9] > [1]"])
    result = ListwiseReranker(llm, window_size=4, stride=2).rerank(QUERY, docs(4))
    (trace,) = result.traces
    assert dict(trace.repairs) == {"duplicates": 1, "out_of_range": 1, "missing": 2, "garbage_tokens": 1}
    assert trace.output_ids == ("d1", "d0", "d2", "d3")
    assert trace.raw_output == "Sure: [2] > [2] > [9] > [1]" and not trace.failed
    assert result.ids == ["d1", "d0", "d2", "d3"]
    assert result.details["repairs"]["missing"] == 2


def test_garbage_raises_with_raw_text() -> None:
    ranker = ListwiseReranker(ScriptedLLM(["I'm sorry, I can't help with that."]), window_size=4)
    with pytest.raises(ModelOutputError, match="window") as info:
        ranker.rerank(QUERY, docs(3))
    assert info.value.raw_text == "I'm sorry, I can't help with that."


def test_garbage_with_fallback_keeps_input_order_and_records_failure() -> None:
    llm = ScriptedLLM(["[3] > [1] > [2] > [4]", "no idea", "[2] > [1] > [3] > [4]"])
    result = ListwiseReranker(llm, window_size=4, stride=2, fallback="keep").rerank(QUERY, docs(8))
    assert [t.failed for t in result.traces] == [False, True, False]
    failed = result.traces[1]
    assert failed.input_ids == failed.output_ids and failed.raw_output == "no idea"
    assert "no identifier" in (failed.error or "")
    assert result.details["failed_windows"] == 1
    # window [4,8): d6 > d4 > d5 > d7; window [2,6) = d2 d3 d6 d4 failed and kept; window [0,4): d1 > d0 > d2 > d3
    assert result.ids == ["d1", "d0", "d2", "d3", "d6", "d4", "d5", "d7"]


def test_truncated_generation_is_parsed_and_flagged() -> None:
    llm = ScriptedLLM(["[3] > [1] > [2] > [4]"])
    result = ListwiseReranker(llm, window_size=4, max_new_tokens=7).rerank(QUERY, docs(4))  # "[3] > [1]"
    (trace,) = result.traces
    assert trace.repairs["truncated"] == 1 and trace.repairs["missing"] == 2
    assert result.ids == ["d2", "d0", "d1", "d3"]
    assert llm.generate_calls[0].max_new_tokens == 7


def test_default_generation_budget_covers_a_full_permutation() -> None:
    llm = listwise_llm()
    ListwiseReranker(llm, window_size=20).rerank(QUERY, docs(20))
    full = " > ".join(f"[{i}]" for i in range(1, 21))
    assert llm.generate_calls[0].max_new_tokens >= llm.count_tokens(full)
    assert llm.generate_calls[0].outputs[0].finish_reason == "stop"


def test_first_unseen_labels_and_total_failure() -> None:
    seen = ScriptedLLM(logprobs=[{"C": -0.1, "A": -2.0}])
    result = FirstReranker(seen, window_size=4).rerank(QUERY, docs(4))
    assert result.ids == ["d2", "d0", "d1", "d3"] and result.traces[0].repairs["missing"] == 2
    assert result.traces[0].raw_output.startswith("A:-2 B:-inf C:-0.1")
    blind = ScriptedLLM(logprobs={"Z": 0.0})
    with pytest.raises(ModelOutputError, match="no probability"):
        FirstReranker(blind, window_size=4).rerank(QUERY, docs(4))
    kept = FirstReranker(ScriptedLLM(logprobs={"Z": 0.0}), window_size=4, fallback="keep").rerank(QUERY, docs(4))
    assert kept.ids == ["d0", "d1", "d2", "d3"] and kept.traces[0].failed


def test_first_picks_a_single_token_scheme() -> None:
    lower = ScriptedLLM(logprobs=first_logprobs, single_tokens=set("abcdefghijklmnopqrstuvwxyz"))
    ranker = FirstReranker(lower, window_size=4)
    assert ranker.scheme.name == "lower"
    result = ranker.rerank(QUERY, docs(4, {3: 3}))
    assert "[a] filler" in lower.logprob_calls[0].texts[0] and lower.logprob_calls[0].labels == ("a", "b", "c", "d")
    assert result.ids[0] == "d3"
    digits_only = ScriptedLLM(logprobs=first_logprobs, single_tokens=set("0123456789"))
    assert FirstReranker(digits_only, window_size=9).scheme.name == "numeric"
    with pytest.raises(ConfigError, match="single tokens"):
        FirstReranker(digits_only, window_size=10)


# ------------------------------------------------------------------ windows, early stop, reuse
def test_top_k_settle_is_exact_with_a_consistent_model() -> None:
    relevance = {i: (i * 7) % 4 for i in range(30)}
    cands = [
        Candidate(id=f"d{i}", text=f"w{i} " + " ".join(f"q{j}" for j in range(relevance[i] * 3 + i % 3)))
        for i in range(30)
    ]
    query = " ".join(f"q{j}" for j in range(20))
    llm = listwise_llm()
    ranker = ListwiseReranker(llm, window_size=6, stride=3, top_k_settle=9)
    result = ranker.rerank(query, cands)
    truth = sorted(cands, key=lambda c: -len(set(c.text.split()) & set(query.split())))
    assert result.ids[:9] == [c.id for c in truth[:9]]
    plan = plan_windows(30, window_size=6, stride=3, top_k=9)
    assert result.details["passes"] == plan.passes == 3
    assert result.details["windows"] + result.details["windows_reused"] == len(plan)
    assert all(t.start >= 3 * t.pass_index for t in result.traces)


def test_identical_windows_are_not_sent_twice() -> None:
    llm = listwise_llm()
    sorted_docs = docs(6, {0: 3, 1: 2, 2: 1})  # already in the model's order: every window answers identity
    result = ListwiseReranker(llm, window_size=4, stride=2, num_passes=3).rerank(QUERY, sorted_docs)
    assert len(llm.generate_calls) == 2 and result.details["windows_reused"] == 4
    assert result.ids == [c.id for c in sorted_docs]
    sampled = ScriptedLLM(listwise_answer)
    ListwiseReranker(sampled, window_size=4, stride=2, num_passes=3, temperature=0.7, seed=1).rerank(QUERY, sorted_docs)
    assert len(sampled.generate_calls) == 6 and sampled.generate_calls[0].seed == 1


def test_rank_range_only_reranks_inside() -> None:
    cands = docs(10, {9: 3, 1: 3})
    result = ListwiseReranker(listwise_llm(), window_size=4, stride=2, rank_start=2, rank_end=10).rerank(QUERY, cands)
    assert result.ids[:2] == ["d0", "d1"] and result.ids[2] == "d9"


def test_traces_describe_each_window() -> None:
    result = ListwiseReranker(listwise_llm(), window_size=3, stride=2).rerank(QUERY, docs(5, {0: 1, 4: 2}))
    assert [(t.pass_index, t.start, t.end) for t in result.traces] == [(0, 2, 5), (0, 0, 3)]
    first = result.traces[0]
    assert first.input_ids == ("d2", "d3", "d4") and first.output_ids == ("d4", "d2", "d3")
    assert result.details["prompt"] == "rankzephyr@2" and result.details["mode"] == "generate"


def test_prompt_is_rendered_with_labels_the_oracle_reads() -> None:
    llm = listwise_llm()
    ListwiseReranker(llm, window_size=4).rerank(QUERY, docs(3, {2: 3}))
    text = llm.generate_calls[0].texts[0]
    assert ranked_labels(text)[0] == "3" and "Search Query: supersonic shock waves." in text


# ------------------------------------------------------------------ configuration
def test_config_errors() -> None:
    llm = listwise_llm()
    with pytest.raises(ConfigError, match="mode"):
        ListwiseReranker(llm, mode="beam")
    with pytest.raises(ConfigError, match="ReasoningReranker"):
        ListwiseReranker(llm, prompt="reasonrank")
    with pytest.raises(ConfigError, match="listwise"):
        ListwiseReranker(llm, prompt="yes-no")
    with pytest.raises(ConfigError, match="temperature"):
        FirstReranker(llm, temperature=0.5)
    with pytest.raises(ConfigError, match="stride"):
        ListwiseReranker(llm, window_size=4, stride=5)
    with pytest.raises(ConfigError, match="backend_options"):
        ListwiseReranker(llm, backend_options={"device": "cpu"})
    with pytest.raises(ConfigError, match="mode='first'"):
        FirstReranker(llm, mode="generate")
    with pytest.warns(UserWarning, match="settles only the top 20"):
        ListwiseReranker(llm, top_k_settle=30, num_passes=2)


def test_long_passages_are_cut_with_a_warning() -> None:
    llm = listwise_llm()
    cands = [Candidate(id="long", text="word " * 50), Candidate(id="short", text="supersonic")]
    with pytest.warns(UserWarning, match="1 passage"):
        result = ListwiseReranker(llm, max_passage_words=10).rerank(QUERY, cands)
    assert result.details["truncated_passages"] == 1
    line = next(x for x in llm.generate_calls[0].texts[0].splitlines() if x.startswith("[1] "))
    assert line == "[1] " + " ".join(["word"] * 10)


def test_registry_kinds_and_async() -> None:
    llm = listwise_llm()
    first = load_reranker("first", model=llm, window_size=4, stride=2)
    assert isinstance(first, FirstReranker) and first.mode == "first"
    listwise = load_reranker("listwise", model=llm, window_size=4, stride=2)
    assert isinstance(listwise, ListwiseReranker) and listwise.mode == "generate"
    result = asyncio.run(listwise.arerank(QUERY, docs(5, {3: 3})))
    assert result.ids[0] == "d3" and math.isclose(result.scores[0], 1.0)
    assert first.name == "first:scripted-llm"


def test_generation_objects_pass_through() -> None:
    llm = ScriptedLLM([Generation("[2] > [1]", "stop")])
    assert ListwiseReranker(llm, window_size=4).rerank(QUERY, docs(2)).ids == ["d1", "d0"]


def test_context_fitting_warning_names_what_cut_the_passages() -> None:
    """Issue 21.16: a passage cut by the starting word cap is not blamed on the context, and a cap lowered for
    the context says so."""
    cands = [Candidate(id=f"d{i}", text="supersonic " * 400) for i in range(20)]
    roomy = ListwiseReranker(listwise_llm(), context_size=32768, fallback="keep")
    with pytest.warns(UserWarning) as caught:
        result = roomy.rerank(QUERY, cands)
    (message,) = [str(w.message) for w in caught if "passage(s)" in str(w.message)]
    assert "20 passage(s) in 1 window(s) were cut to the starting word cap of 300 words" in message
    assert "so the prompts fit" not in message and "context did not cut them" in message
    assert result.details["fit_words"] == 300
    tight = ListwiseReranker(listwise_llm(), context_size=2048, fallback="keep")
    with pytest.warns(UserWarning) as caught:
        result = tight.rerank(QUERY, cands)
    (message,) = [str(w.message) for w in caught if "passage(s)" in str(w.message)]
    words = result.details["fit_words"]
    assert words < 300 and f"shortened to {words} words" in message
    assert "starting word cap of 300 words" in message and "so the prompts fit context_size=2048" in message


class _Pieces:
    """A stand-in tokenizer with the two methods the references' token cut uses (fake_tokenize's pieces)."""

    def tokenize(self, text: str) -> list[str]:
        from rerank_plugins.testing.fake_llm import fake_tokenize

        return fake_tokenize(text)

    def convert_tokens_to_string(self, pieces: list[str]) -> str:
        return "".join(pieces)


@pytest.mark.parametrize("kind", ["listwise", "first", "reasoning"])
def test_listwise_rankers_take_the_length_policy_names_and_refuse_to_chunk(kind: str) -> None:
    """Issue 20: the length policy's names (long_documents, max_document_tokens, truncation_side) on every
    listwise strategy; chunking is a ConfigError that says why, raised before any model is loaded."""
    from rerank_plugins.rankers.reasoning import ReasoningReranker

    cls = {"listwise": ListwiseReranker, "first": FirstReranker, "reasoning": ReasoningReranker}[kind]
    for options in ({"long_documents": "chunk"}, {"max_chunks": 3}, {"chunk_aggregate": "max"}):
        with pytest.raises(ConfigError, match="ranks whole passages against each other"):
            cls("no/such-model-anywhere", **options)
    with pytest.raises(ConfigError, match="long_documents"):
        cls("no/such-model-anywhere", long_documents="split")
    with pytest.warns(FutureWarning, match="max_passage_tokens is deprecated; use max_document_tokens"):
        ranker = cls(ScriptedLLM(), max_passage_tokens=7, long_documents="truncate")
    assert ranker.max_document_tokens == 7 and ranker.long_documents == "truncate"


def test_max_document_tokens_cuts_in_the_models_tokens_with_one_warning_per_call() -> None:
    from rerank_plugins.engine.length_policy import TruncationWarning

    def run(**options: object) -> tuple[list[str], list[str]]:
        llm = listwise_llm()
        llm.tokenizer = _Pieces()  # type: ignore[attr-defined]
        cands = [Candidate(id="long", text="one two three four five six seven"), Candidate(id="short", text="a b")]
        ranker = ListwiseReranker(llm, max_passage_words=None, window_size=2, **options)
        with pytest.warns(TruncationWarning) as caught:
            ranker.rerank_batch([QUERY, QUERY, QUERY], [cands, cands, cands])
        messages = [str(w.message) for w in caught if issubclass(w.category, TruncationWarning)]
        line = next(x for x in llm.generate_calls[0].texts[0].splitlines() if x.startswith("[1] "))
        return messages, [line]

    messages, lines = run(max_document_tokens=3)
    assert len(messages) == 1 and "3 of 6 passages were longer than max_document_tokens=3" in messages[0]
    assert lines == ["[1] one two three"]
    messages, lines = run(max_document_tokens=3, truncation_side="left")
    assert lines == ["[1] five six seven"] and "truncation_side='left'" in messages[0]
