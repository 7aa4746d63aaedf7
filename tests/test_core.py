"""Core contract: types, validation, sorting, top_k/threshold, batch and async forms."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import Sequence

import pytest

from rerank_plugins import (
    BatchedReranker,
    Candidate,
    InvalidInputError,
    ModelOutputError,
    Query,
    Reranker,
    Scores,
    scores_from_order,
)
from rerank_plugins.testing import RerankerConformance


class OverlapReranker(Reranker):
    """Test-only reranker: score = number of query words present in the candidate."""

    name = "overlap"

    def __init__(self) -> None:
        self.calls = 0

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        self.calls += 1
        words = set(query.text.lower().split())
        return Scores([float(sum(w in c.content.lower() for w in words)) for c in candidates])


class NaNReranker(Reranker):
    name = "nan"

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        return Scores([float("nan")] * len(candidates))


class TestOverlapConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> OverlapReranker:
        return OverlapReranker()


def test_strings_and_dicts_are_coerced() -> None:
    r = OverlapReranker().rerank("shock waves", ["no match", {"id": 7, "text": "shock waves"}])
    assert r.ids == ["7", "0"]
    assert r[0].original_position == 1
    assert r[0].rank == 1 and r[1].rank == 2


def test_ranks_refer_to_full_order_after_threshold() -> None:
    r = OverlapReranker().rerank("a b", ["a b", "a", "zzz"], score_threshold=1.0)
    assert [(x.id, x.rank) for x in r] == [("0", 1), ("1", 2)]


@pytest.mark.parametrize("bad", [None, 3, b"bytes", ["ok", 5], [{"text": "x", "bogus": 1}]])
def test_wrong_types_raise_invalid_input(bad: object) -> None:
    with pytest.raises(InvalidInputError):
        OverlapReranker().rerank("q", bad)  # type: ignore[arg-type]


def test_query_type_checked() -> None:
    with pytest.raises(InvalidInputError, match="query must be"):
        OverlapReranker().rerank(42, ["x"])  # type: ignore[arg-type]


def test_candidate_without_text_or_image() -> None:
    with pytest.raises(InvalidInputError, match="neither text nor image"):
        Candidate(id="x")


def test_nan_scores_are_model_output_errors() -> None:
    with pytest.raises(ModelOutputError, match="NaN"):
        NaNReranker().rerank("q", ["a", "b"])


def test_top_k_type_checked() -> None:
    with pytest.raises(InvalidInputError, match="top_k"):
        OverlapReranker().rerank("q", ["a"], top_k=1.5)  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError, match="top_k"):
        OverlapReranker().rerank("q", ["a"], top_k=True)  # type: ignore[arg-type]


def test_metadata_is_read_only_copy() -> None:
    meta = {"k": 1}
    c = Candidate(id="a", text="t", metadata=meta)
    meta["k"] = 2
    assert c.metadata["k"] == 1
    with pytest.raises(TypeError):
        c.metadata["k"] = 3  # type: ignore[index]


def test_rerank_batch_matches_single_and_skips_empty() -> None:
    rr = OverlapReranker()
    qs = ["shock waves", "pasta water", "anything"]
    lists = [["shock", "waves shock", "none"], ["pasta", "water pasta"], []]
    batch = rr.rerank_batch(qs, lists, top_k=2)
    singles = [rr.rerank(q, c, top_k=2) for q, c in zip(qs, lists)]
    assert [b.ids for b in batch] == [s.ids for s in singles]
    assert batch[2].results == ()


def test_rerank_batch_length_mismatch() -> None:
    with pytest.raises(InvalidInputError, match="one candidate list per query"):
        OverlapReranker().rerank_batch(["a", "b"], [["x"]])


def test_async_forms_match_sync() -> None:
    rr = OverlapReranker()

    async def main() -> tuple[list[str], list[list[str]]]:
        one = await rr.arerank("shock waves", ["a", "shock waves", "waves"])
        many = await rr.arerank_batch(["shock", "waves"], [["shock", "x"], ["x", "waves"]])
        return one.ids, [m.ids for m in many]

    one, many = asyncio.run(main())
    assert one == rr.rerank("shock waves", ["a", "shock waves", "waves"]).ids
    assert many == [["0", "1"], ["1", "0"]]


def test_scores_from_order() -> None:
    assert scores_from_order([2, 0, 1]) == [2 / 3, 1 / 3, 1.0]
    with pytest.raises(ValueError, match="permutation"):
        scores_from_order([0, 0, 1])


def test_import_is_light() -> None:
    code = (
        "import sys, rerank_plugins; "
        "heavy = [m for m in ('torch', 'transformers', 'sentence_transformers', 'numpy') if m in sys.modules]; "
        "print(','.join(heavy))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""


class ListReranker(Reranker):
    """A custom strategy as docs/concepts.md describes it: ``_score`` returns just the floats."""

    name = "list"

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> list[float]:
        return [float(len(c.content)) for c in candidates]


class TestListScoresConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self) -> ListReranker:
        return ListReranker()


def test_score_may_return_a_plain_sequence() -> None:
    r = ListReranker()
    out = r.rerank("q", ["aa", "a", "aaa"])
    assert [x.candidate.content for x in out.results] == ["aaa", "aa", "a"]
    assert [x.score for x in out.results] == [3.0, 2.0, 1.0]
    assert [x.score for x in asyncio.run(r.arerank("q", ["a", "aa"])).results] == [2.0, 1.0]
    assert [len(x.results) for x in r.rerank_batch(["q", "q"], [["a"], []])] == [1, 0]
    np = pytest.importorskip("numpy")

    class ArrayReranker(Reranker):
        def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
            return np.array([0.1, 0.9], dtype=np.float32)  # type: ignore[return-value]

    out = ArrayReranker().rerank("q", ["a", "b"])
    assert [x.candidate.content for x in out.results] == ["b", "a"] and type(out.results[0].score) is float


@pytest.mark.parametrize("bad", ["0.5", {"a": 1.0}, 3.0, ["high"]])
def test_score_returning_something_else_is_a_model_output_error(bad: object) -> None:
    class Bad(Reranker):
        name = "bad"

        def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
            return bad  # type: ignore[return-value]

    with pytest.raises(ModelOutputError, match="bad"):
        Bad().rerank("q", ["a"])


def test_scores_are_frozen() -> None:
    import dataclasses

    from rerank_plugins.base import Scores

    scores = Scores([1.0, 0.5], extra={"a": 1})
    with pytest.raises(dataclasses.FrozenInstanceError):
        scores.extra = {}  # type: ignore[misc]
    assert dataclasses.replace(scores, extra={"b": 2}).extra == {"b": 2} and scores.extra == {"a": 1}


class BatchOnly(BatchedReranker):
    """A strategy that implements only ``_score_many`` and counts its calls."""

    name = "batch-only"

    def __init__(self) -> None:
        self.calls: list[int] = []

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[list[float]]:
        self.calls.append(len(queries))
        return [[float(len(c.content)) for c in cands] for cands in lists]


def test_a_batched_strategy_scores_one_query_as_a_batch_of_one() -> None:
    ranker = BatchOnly()
    assert ranker.rerank("q", ["aa", "a", "aaa"]).ids == ["2", "0", "1"]
    assert [r.ids for r in ranker.rerank_batch(["q", "r"], [["a", "aa"], ["bbb", "b"]])] == [["1", "0"], ["0", "1"]]
    assert ranker.calls == [1, 2]
    with pytest.raises(TypeError, match="abstract"):
        type("Nothing", (BatchedReranker,), {})()


def test_no_strategy_writes_its_own_batch_of_one() -> None:
    """``_score`` as ``_score_many([query], [candidates])[0]`` lives once, in BatchedReranker."""
    import pathlib

    import rerank_plugins

    rankers = pathlib.Path(rerank_plugins.__file__).parent / "rankers"
    copies = [p.name for p in rankers.glob("*.py") if "_score_many([query], [candidates])[0]" in p.read_text()]
    assert copies == []
