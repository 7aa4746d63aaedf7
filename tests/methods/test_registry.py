"""The composed methods are registered strategy kinds, exported lazily, and nest through JSON-able specs."""

from __future__ import annotations

import subprocess
import sys

import pytest
from methods_toys import LengthReranker, OverlapReranker

import rerank_plugins
from rerank_plugins import ConfigError, load_reranker, strategies
from rerank_plugins.rankers._compose import as_reranker
from rerank_plugins.rankers.cascade import CascadeReranker
from rerank_plugins.rankers.fusion import FusionReranker

KINDS = {"fusion", "cascade", "prf-vector", "prf-text", "e2rank", "insertrank", "pairwise", "rating-judge"}


def test_kinds_are_registered() -> None:
    assert set(strategies()) >= KINDS
    for kind in KINDS:
        assert strategies()[kind].load_class().__name__.endswith("Reranker")


def test_lazy_exports_do_not_import_torch() -> None:
    code = (
        "import sys, rerank_plugins as rp\n"
        "names = ['FusionReranker', 'CascadeReranker', 'VectorPRFReranker', 'TextPRFReranker', 'E2RankReranker',"
        " 'InsertRankReranker', 'PairwiseReranker', 'RatingJudgeReranker', 'LabelClassifier', 'classify']\n"
        "assert all(n in rp.__all__ for n in names)\n"
        "[getattr(rp, n) for n in names]\n"
        "assert 'torch' not in sys.modules, 'torch imported'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_load_by_strategy_name() -> None:
    fusion = load_reranker("fusion", rerankers=[OverlapReranker(), LengthReranker()], method="borda")
    assert isinstance(fusion, FusionReranker) and fusion.method == "borda"
    cascade = load_reranker("cascade", stages=[(OverlapReranker(), 3), LengthReranker()])
    assert isinstance(cascade, CascadeReranker)
    assert rerank_plugins.FusionReranker is FusionReranker


def test_spec_mapping_loads_nested_strategies() -> None:
    spec = {"name": "fusion", "options": {"rerankers": [{"name": "cascade", "options": {"stages": []}}]}}
    with pytest.raises(ConfigError, match="non-empty"):
        as_reranker(spec, "x")
    with pytest.raises(ConfigError, match="spec is"):
        as_reranker({"kind": "fusion"}, "x")
    with pytest.raises(ConfigError, match="options"):
        as_reranker({"name": "fusion", "options": [1]}, "x")
    with pytest.raises(ConfigError, match="must be a Reranker"):
        as_reranker(3.5, "x")


@pytest.mark.slow
def test_bundled_minilm_through_the_registry() -> None:
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.rankers.e2rank import E2RankReranker
    from rerank_plugins.rankers.prf_text import TextPRFReranker

    docs = ["A shock wave forms ahead of a supersonic wing.", "Pasta is boiled in salted water."]
    prf = load_reranker("minilm", kind="prf-vector")
    embedder = prf.embedder
    for reranker in (prf, E2RankReranker(embedder), TextPRFReranker(embedder)):
        assert reranker.rerank("supersonic shock waves", docs).ids[0] == "0", reranker.name
    fusion = load_reranker(
        "fusion",
        rerankers=[embedder, {"name": "minilm", "kind": "e2rank", "options": {"num_input_docs": 1}}],
        include_first_stage="order",
    )
    assert fusion.rerank("supersonic shock waves", docs).ids[0] == "0"
    fusion.close()
