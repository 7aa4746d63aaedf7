"""The LLM answer readers (issue 14): one helper for batched label log-probabilities with its shape check, the
listwise loop's FIRST-logits / generated-permutation readers and the pointwise yes/no / graded readers."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pytest

from rerank_plugins.backends.base import ChatPrompt, Generation
from rerank_plugins.engine.logits import BinaryLabels
from rerank_plugins.errors import BackendError, ModelOutputError
from rerank_plugins.rankers._llm import batched_label_logprobs
from rerank_plugins.rankers.listwise import (
    ANSWERS,
    FirstLogitsAnswer,
    FirstReranker,
    GeneratedPermutationAnswer,
    ListwiseReranker,
)
from rerank_plugins.rankers.pointwise_llm import GradedAnswer, GradedLLMReranker, YesNoAnswer, YesNoLLMReranker
from rerank_plugins.testing.fake_llm import ScriptedLLM


class _Rows(ScriptedLLM):
    """Answers label_logprobs with rows of the given shape and counts the calls."""

    def __init__(self, extra_rows: int = 0, width_delta: int = 0) -> None:
        super().__init__()
        self.extra_rows, self.width_delta, self.batches = extra_rows, width_delta, []

    def label_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        self.batches.append(len(prompts))
        width = len(labels) + self.width_delta
        return [[-float(i)] * width for i in range(len(prompts) + self.extra_rows)]


def _prompts(n: int) -> list[ChatPrompt]:
    return [ChatPrompt(raw=f"prompt {i}") for i in range(n)]


def test_batched_label_logprobs_batches_and_keeps_order() -> None:
    backend = _Rows()
    rows = batched_label_logprobs(backend, _prompts(5), ["yes", "no"], 2)
    assert backend.batches == [2, 2, 1] and len(rows) == 5 and all(len(r) == 2 for r in rows)
    assert [r[0] for r in rows] == [-0.0, -1.0, -0.0, -1.0, -0.0]
    backend = _Rows()
    assert len(batched_label_logprobs(backend, _prompts(5), ["a"])) == 5 and backend.batches == [5]
    assert batched_label_logprobs(_Rows(), [], ["a"], 3) == []


@pytest.mark.parametrize(("extra_rows", "width_delta"), [(1, 0), (-1, 0), (0, 1), (0, -1)])
def test_batched_label_logprobs_refuses_a_malformed_answer(extra_rows: int, width_delta: int) -> None:
    with pytest.raises(BackendError, match="label_logprobs returned a malformed result"):
        batched_label_logprobs(_Rows(extra_rows, width_delta), _prompts(3), ["yes", "no"], 8)


def test_listwise_modes_read_answers_with_their_reader() -> None:
    assert isinstance(ANSWERS["first"], FirstLogitsAnswer)
    assert isinstance(ANSWERS["generate"], GeneratedPermutationAnswer)
    backend = ScriptedLLM(["[2] > [1]"])
    generate = ListwiseReranker(backend, window_size=2, stride=1)
    first = FirstReranker(backend, window_size=2, stride=1)
    assert isinstance(generate.answer, GeneratedPermutationAnswer) and isinstance(first.answer, FirstLogitsAnswer)
    prompt = ChatPrompt(raw="x", assistant_prefix="")
    outcome = generate.answer.interpret(generate, Generation("[2] > [1] > [2]", "length"), 2, prompt)
    assert outcome.order == [1, 0] and outcome.repairs["duplicates"] == 1 and outcome.repairs["truncated"] == 1
    outcome = first.answer.interpret(first, [-3.0, -0.5, -9.0], 3, prompt)
    assert outcome.order == [1, 0, 2] and outcome.raw_output == "A:-3 B:-0.5 C:-9"
    with pytest.raises(ModelOutputError):
        generate.answer.interpret(generate, Generation("no idea", "stop"), 3, prompt)


def test_pointwise_readers() -> None:
    labels = BinaryLabels(("yes",), ("no",))
    p, details = YesNoAnswer(labels, "p_yes", 0.0).read([math.log(0.75), math.log(0.25)])
    assert p == pytest.approx(0.75) and details["labels"] == ["yes", "no"]
    diff, details = YesNoAnswer(labels, "logit_diff", 0.0).read([math.log(0.75), math.log(0.25)])
    assert diff == pytest.approx(math.log(3)) and details["logit_diff"] == pytest.approx(math.log(3))
    raw = YesNoAnswer(labels, "sigmoid", 1.0)
    assert raw.raw_logits and raw.read([1.0, -2.0])[0] == pytest.approx(0.5)
    graded = GradedAnswer(2)
    assert graded.labels == ["0", "1", "2"] and not graded.raw_logits
    value, details = graded.read([math.log(0.5), -math.inf, math.log(0.5)])
    assert value == pytest.approx(0.5) and details["expected_grade"] == pytest.approx(1.0)
    backend = ScriptedLLM()
    assert isinstance(YesNoLLMReranker(backend).answer, YesNoAnswer)
    assert isinstance(GradedLLMReranker(backend).answer, GradedAnswer)
