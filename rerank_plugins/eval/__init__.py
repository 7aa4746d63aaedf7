"""Evaluation toolkit: data set loaders, first-stage retrieval, metrics and the eval/bench runner.

Importing this package is light; bm25s, faiss, ir-measures and scipy are imported inside the functions that need
them (extra ``eval`` / ``faiss``).
"""

from __future__ import annotations

from .cache import RunCache
from .compare import Comparison, adjust_pvalues, compare_pairs, compare_to
from .datasets import (
    DataFormatError,
    Dataset,
    DataWarning,
    LoadReport,
    Qrels,
    Run,
    check_run,
    find_cranfield,
    load_beir,
    load_cranfield,
    load_dataset,
    load_faq,
    read_trec_qrels,
    read_trec_run,
    write_trec_qrels,
    write_trec_run,
)
from .first_stage import FirstStageSettings, bm25_run, dense_run, first_stage_run, reciprocal_rank_fusion
from .metrics import evaluate, paired_test
from .runner import EvalReport, rerank_run, run_eval

__all__ = [
    "Comparison",
    "DataFormatError",
    "DataWarning",
    "Dataset",
    "EvalReport",
    "FirstStageSettings",
    "LoadReport",
    "Qrels",
    "Run",
    "RunCache",
    "adjust_pvalues",
    "bm25_run",
    "check_run",
    "compare_pairs",
    "compare_to",
    "dense_run",
    "evaluate",
    "find_cranfield",
    "first_stage_run",
    "load_beir",
    "load_cranfield",
    "load_dataset",
    "load_faq",
    "paired_test",
    "read_trec_qrels",
    "read_trec_run",
    "reciprocal_rank_fusion",
    "rerank_run",
    "run_eval",
    "write_trec_qrels",
    "write_trec_run",
]
