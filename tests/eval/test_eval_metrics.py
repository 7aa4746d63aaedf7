"""Metrics through ir-measures on hand-made runs; the order of the run is kept; paired significance tests."""

from __future__ import annotations

import math

import numpy as np
import pytest

from rerank_plugins.errors import ConfigError
from rerank_plugins.eval.metrics import evaluate, paired_test, parse_measure

QRELS = {"q1": {"a": 1, "b": 0}, "q2": {"c": 3, "d": 1}, "q3": {"e": 1}}


def test_metrics_on_a_hand_made_run() -> None:
    run = {
        "q1": [("x", 3.0), ("a", 2.0)],  # relevant at rank 2
        "q2": [("c", 2.0), ("y", 1.5), ("d", 1.0)],  # gains 3 then 1 at ranks 1 and 3
        # q3 missing from the run: scores 0 everywhere, not skipped
    }
    res = evaluate(run, QRELS, ("nDCG@10", "MRR@10", "Recall@100", "P@2"))
    # trec_eval's nDCG (the ir-measures default): linear gains, gain / log2(rank + 1)
    q2_dcg = 3 / math.log2(2) + 1 / math.log2(4)
    q2_idcg = 3 / math.log2(2) + 1 / math.log2(3)
    assert res.per_query["nDCG@10"]["q1"] == pytest.approx(1 / math.log2(3))
    assert res.per_query["nDCG@10"]["q2"] == pytest.approx(q2_dcg / q2_idcg)
    assert res.per_query["nDCG@10"]["q3"] == 0.0
    assert res.per_query["MRR@10"] == pytest.approx({"q1": 0.5, "q2": 1.0, "q3": 0.0})
    assert res.per_query["Recall@100"] == pytest.approx({"q1": 1.0, "q2": 1.0, "q3": 0.0})
    assert res["MRR@10"] == pytest.approx(0.5)
    assert res["nDCG@10"] == pytest.approx((1 / math.log2(3) + q2_dcg / q2_idcg) / 3)
    assert res.missing_queries == 1 and res.n_queries == 3


def test_run_order_is_kept_on_tied_scores() -> None:
    # trec_eval would re-sort equal scores by document id (descending: "b" before "a"); we keep the given order
    qrels = {"q": {"b": 1}}
    assert evaluate({"q": [("a", 1.0), ("b", 1.0)]}, qrels, ("MRR@10",))["MRR@10"] == 0.5
    assert evaluate({"q": [("b", 1.0), ("a", 1.0)]}, qrels, ("MRR@10",))["MRR@10"] == 1.0


def test_measure_names_and_errors() -> None:
    assert str(parse_measure("MRR@10")) == "RR@10"
    assert str(parse_measure("Recall@100")) == "R@100"
    with pytest.raises(ConfigError, match="unknown measure"):
        parse_measure("NotAMeasure@3")
    with pytest.raises(ConfigError, match="no judgments"):
        evaluate({}, QRELS, queries=["q1", "nope"])


def test_paired_test_sanity() -> None:
    rng = np.random.default_rng(0)
    qids = [f"q{i}" for i in range(60)]
    base = {q: float(v) for q, v in zip(qids, rng.uniform(0.2, 0.6, len(qids)))}
    same = paired_test(base, dict(base))
    assert same.t_pvalue == 1.0 and same.permutation_pvalue == 1.0 and not same.significant()
    better = {q: v + 0.1 + float(rng.normal(0, 0.02)) for q, v in base.items()}
    res = paired_test(base, better, n_resamples=2000)
    assert res.diff == pytest.approx(0.1, abs=0.02)
    assert res.t_pvalue < 1e-6 and res.permutation_pvalue < 0.01 and res.significant()
    noise = {q: v + float(rng.normal(0, 0.05)) for q, v in base.items()}
    null = paired_test(base, noise, n_resamples=2000, seed=1)
    assert null.t_pvalue > 0.05 and null.permutation_pvalue > 0.05
    # the permutation and t-test agree roughly on a clear case and the result is reproducible
    assert paired_test(base, noise, n_resamples=2000, seed=1) == null
    with pytest.raises(ConfigError, match="only one"):
        paired_test(base, {"q0": 1.0})
