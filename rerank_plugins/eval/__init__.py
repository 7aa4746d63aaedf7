"""Evaluation toolkit: data set loaders, first-stage retrieval, metrics and the eval/bench runner.

Importing this package is light; bm25s, faiss, ir-measures and scipy are imported inside the functions that need
them (extra ``eval`` / ``faiss``).
"""

from __future__ import annotations

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

__all__ = [
    "DataFormatError",
    "DataWarning",
    "Dataset",
    "LoadReport",
    "Qrels",
    "Run",
    "check_run",
    "find_cranfield",
    "load_beir",
    "load_cranfield",
    "load_dataset",
    "load_faq",
    "read_trec_qrels",
    "read_trec_run",
    "write_trec_qrels",
    "write_trec_run",
]
