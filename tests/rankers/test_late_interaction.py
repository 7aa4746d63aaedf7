"""ColBERTReranker on tiny random ColBERT folders (PyLate format: BERT and ModernBERT; Stanford HF_ColBERT format):
conformance, parity with PyLate 1.6.0 itself (models.ColBERT + rank.rerank, run in a child interpreter with its
pinned stack), the document cache, recipes and errors."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _support.pylate_reference import PYLATE_VERSION, pylate_overlay, run_pylate  # noqa: E402

from rerank_plugins import Candidate, ConfigError, InvalidInputError, load_reranker  # noqa: E402
from rerank_plugins.rankers.late_interaction import ColBERTReranker  # noqa: E402
from rerank_plugins.testing import RerankerConformance  # noqa: E402

QUERIES = ["supersonic shock waves?", "Heat transfer"]
DOCS = [
    ["Shock waves, form when an aircraft exceeds the speed of sound.", "Boiling pasta!", "x",
     "The boundary layer thickens downstream of the leading edge of a flat plate, and grows and grows further on"],
    ["Heat transfer in laminar flow (over a heated wall).", "stock market"],
]

FORMATS = {
    "bert": {"architecture": "bert"},
    "modernbert": {"architecture": "modernbert"},
    "stanford": {"architecture": "bert", "stanford": True},
    "bert-attend": {"architecture": "bert", "attend_to_expansion_tokens": True},
}


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from rerank_plugins.testing.tiny_encoders import build_colbert_folder

    return {name: build_colbert_folder(tmp_path_factory.mktemp(f"colbert-{name}"), **kw)
            for name, kw in FORMATS.items()}


@pytest.fixture(scope="module")
def colbert(folders: dict[str, Path]) -> ColBERTReranker:
    return ColBERTReranker(str(folders["bert"]))


class TestColBERTConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, colbert: ColBERTReranker) -> ColBERTReranker:
        return colbert


needs_pylate = pytest.mark.skipif(
    pylate_overlay() is None, reason="PyLate reference folder missing (make .venv/.full installs .venv/pylate-ref)"
)


@pytest.fixture(scope="module")
def pylate_outputs(folders: dict[str, Path]) -> dict[str, Any]:
    """PyLate's outputs for every folder, from one child interpreter."""
    out = run_pylate({"queries": QUERIES, "documents": DOCS, "single_document_scores": True,
                      "expect_version": PYLATE_VERSION,
                      "batch": [{"model": str(folders[fmt])} for fmt in FORMATS]})
    return dict(zip(FORMATS, out))  # type: ignore[call-overload]


@needs_pylate
@pytest.mark.parametrize("fmt", list(FORMATS))
def test_parity_with_pylate(folders: dict[str, Path], pylate_outputs: dict[str, Any], fmt: str) -> None:
    """PyLate 1.6.0 run itself: identical query/document token ids; padding_score='zero' equals rank.rerank to 1e-5
    in the same order; the default 'exclude' equals PyLate scoring each document alone (exact MaxSim)."""
    folder = folders[fmt]
    ref = pylate_outputs[fmt]
    flat = [d for docs in DOCS for d in docs]
    for mode in ("zero", "exclude"):
        ours = ColBERTReranker(str(folder), padding_score=mode)
        q_rows = ours.tokenize(QUERIES, is_query=True)
        d_rows = ours.tokenize(flat, is_query=False)
        assert [ids for ids, _ in q_rows] == [r["input_ids"] for r in ref["query_ids"]]
        assert [mask for _, mask in q_rows] == [r["attention_mask"] for r in ref["query_ids"]]
        assert [ids for ids, _ in d_rows] == [r["input_ids"] for r in ref["document_ids"]]
        assert [e.shape[0] for e in ours.encode_documents(flat)] == ref["document_tokens"]  # skiplist applied alike
        for qi, ranked in enumerate(ours.rerank_batch(QUERIES, DOCS)):
            got = {r.original_position: r.score for r in ranked.results}
            if mode == "zero":
                expected = {r["id"]: r["score"] for r in ref["rankings"][qi]}
                assert [r.original_position for r in ranked.results] == [r["id"] for r in ref["rankings"][qi]]
            else:
                expected = dict(enumerate(ref["single_document_scores"][qi]))
            assert max(abs(got[k] - expected[k]) for k in expected) < 1e-5


def test_exclude_and_zero_differ_only_through_padding(colbert: ColBERTReranker) -> None:
    q = torch.nn.functional.normalize(torch.tensor([[1.0, 0.0], [0.0, 1.0]]), dim=1)
    short = torch.tensor([[1.0, 0.0]])  # second query token's best similarity is 0 at most -> 0.0 here
    negative = torch.tensor([[0.6, -0.8]])  # best similarity of query token 2 is -0.8
    long_doc = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.6, 0.8]])
    colbert.padding_score = "exclude"
    exact = colbert.maxsim(q, [negative, long_doc, short])
    colbert.padding_score = "zero"
    padded = colbert.maxsim(q, [negative, long_doc, short])
    colbert.padding_score = "exclude"
    assert exact == pytest.approx([0.6 - 0.8, 2.0, 1.0])
    assert padded == pytest.approx([0.6 + 0.0, 2.0, 1.0])  # PyLate's zero rows lift the negative maximum to 0


def test_batching_and_document_cache(folders: dict[str, Path], colbert: ColBERTReranker) -> None:
    ref = [_scores(r) for r in colbert.rerank_batch(QUERIES, DOCS)]
    tiny_batches = ColBERTReranker(str(folders["bert"]), batch_size=1, max_tokens=16)
    assert [_scores(r) for r in tiny_batches.rerank_batch(QUERIES, DOCS)] == [pytest.approx(x, abs=1e-5) for x in ref]
    cached = ColBERTReranker(str(folders["bert"]), cache_documents=3)
    first = cached.rerank(QUERIES[0], DOCS[0])
    assert first.details["document_cache_hits"] == 0
    again = cached.rerank(QUERIES[1], DOCS[0])
    assert again.details["document_cache_hits"] == 3  # LRU of 3: the last three documents of the first call
    assert len(cached._doc_cache) == 3
    assert _scores(again) == pytest.approx(_scores(colbert.rerank(QUERIES[1], DOCS[0])), abs=1e-6)
    cached.clear_cache()
    assert cached.rerank(QUERIES[1], DOCS[0]).details["document_cache_hits"] == 0


def _scores(result: Any) -> list[float]:
    return [s for _, s in sorted((r.original_position, r.score) for r in result.results)]


def test_recipes_load_without_kind(tmp_path: Path, folders: dict[str, Path]) -> None:
    for hub_id, fmt in (("lightonai/GTE-ModernColBERT-v1", "modernbert"), ("colbert-ir/colbertv2.0", "stanford"),
                        ("answerdotai/answerai-colbert-small-v1", "stanford")):
        org, name = hub_id.split("/")
        snap = tmp_path / f"models--{org}--{name}" / "snapshots" / "rev"
        shutil.copytree(folders[fmt], snap)
        ranker = load_reranker(str(snap))
        assert isinstance(ranker, ColBERTReranker)
        assert all(type(s) is float for s in ranker.rerank(QUERIES[0], DOCS[0]).scores)
    stanford = ColBERTReranker(str(folders["stanford"]))
    assert (stanford.query_prefix, stanford.document_prefix) == ("[unused0]", "[unused1]")
    assert (stanford.query_length, stanford.document_length) == (12, 24)  # from artifact.metadata
    assert isinstance(load_reranker(str(folders["bert"]), kind="colbert"), ColBERTReranker)


def test_options_override_the_folder(folders: dict[str, Path]) -> None:
    ranker = ColBERTReranker(str(folders["bert"]), query_length=8, document_length=10, skiplist_words=[])
    (q_ids, _q_mask), = ranker.tokenize(["a much longer query than eight tokens for sure"], is_query=True)
    assert len(q_ids) == 8 and q_ids[1] == ranker.query_prefix_id
    d_ids, _ = ranker.tokenize(["one, two, three, four, five, six"], is_query=False)[0]
    assert len(d_ids) == 10
    assert ranker.encode_documents(["a, b."])[0].shape[0] == len(ranker.tokenize(["a, b."], is_query=False)[0][0])
    no_expansion = ColBERTReranker(str(folders["bert"]), do_query_expansion=False)
    (ids, mask), = no_expansion.tokenize(["shock"], is_query=True)
    assert all(mask) and len(ids) < no_expansion.query_length
    assert no_expansion.encode_queries(["shock"])[0].shape[0] == len(ids)


def test_bad_options_and_inputs(tmp_path: Path, folders: dict[str, Path], colbert: ColBERTReranker) -> None:
    for bad in ({"padding_score": "max"}, {"query_length": 0}, {"batch_size": True}, {"cache_documents": 0},
                {"query_prefix": 1}, {"skiplist_words": "abc"}, {"attend_to_expansion_tokens": "yes"},
                {"query_length": 2}):
        with pytest.raises(ConfigError):
            ColBERTReranker(str(folders["bert"]), **bad)
    with pytest.raises(ConfigError, match="QueryMarker"):
        ColBERTReranker(str(folders["bert"]), query_prefix="[QueryMarker]")
    plain = tmp_path / "plain"
    shutil.copytree(folders["bert"], plain)
    (plain / "modules.json").write_text(json.dumps([{"idx": 0, "name": "0", "path": "",
                                                      "type": "sentence_transformers.models.Transformer"}]))
    with pytest.raises(ConfigError, match="Dense"):
        ColBERTReranker(str(plain))
    (plain / "modules.json").unlink()
    with pytest.raises(ConfigError, match="not a ColBERT model"):
        ColBERTReranker(str(plain))
    with pytest.raises(InvalidInputError, match="image"):
        colbert.rerank(QUERIES[0], [Candidate(id="img", image=b"\x89PNG")])


def test_close(folders: dict[str, Path]) -> None:
    ranker = ColBERTReranker(str(folders["bert"]), cache_documents=10)
    ranker.close()
    ranker.close()
    with pytest.raises(Exception, match="closed"):
        ranker.rerank(QUERIES[0], DOCS[0])


def test_kind_read_from_the_folder(folders: dict[str, Path]) -> None:
    """A ColBERT folder in no recipe still loads without kind=: its format says what it is (never its name)."""
    from rerank_plugins.models import detect_kind
    from rerank_plugins.refs import ModelRef

    for fmt in ("bert", "stanford"):
        assert detect_kind(ModelRef(str(folders[fmt]))) == "colbert"
        assert isinstance(load_reranker(str(folders[fmt])), ColBERTReranker)
