"""Seq2seq recipes: monoT5 and duoT5 (castorini) on ``AutoModelForSeq2SeqLM``.

monoT5 is proven equal to rerankers 0.10.0 ``T5Ranker`` (``rerankers/models/t5ranker.py``, the InRanker code)
on a tiny random ``T5ForConditionalGeneration`` with a sentencepiece-style tokenizer carrying ``▁true`` /
``▁false``: identical encoder input ids, ``P(true)`` to 1e-5 (``tests/rankers/test_seq2seq.py``). duoT5 follows
castorini/pygaggle ``DuoT5.rescore`` (``pygaggle/rerank/transformer.py``, transcribed and cited in the test, pygaggle
itself needs a Java runtime): prompt ``Query: … Document0: … Document1: … Relevant:``, all ordered pairs, sym-sum.
The label pieces ``▁true`` / ``▁false`` are the ones both references list for these checkpoints (pygaggle's
duoT5 hard-codes their T5 ids 1176 / 6136).
"""

from __future__ import annotations

from . import Recipe, register_recipe

__all__: list[str] = []


def _t5(name: str, ids: tuple[str, ...], family: str, kind: str, reference: str, description: str, notes: str) -> None:
    """Register one castorini T5 recipe: ``T5ForConditionalGeneration``, the ``▁true`` / ``▁false`` label pieces, 512
    tokens."""
    register_recipe(Recipe(
        name=name,
        ids=ids,
        family=family,
        architectures=("T5ForConditionalGeneration",),
        kind=kind,
        reference=reference,
        options={"token_true": "\u2581true", "token_false": "\u2581false", "max_length": 512},
        description=description,
        notes=notes,
    ))


_t5(
    "monot5",
    (
        "castorini/monot5-small-msmarco-10k", "castorini/monot5-small-msmarco-100k",
        "castorini/monot5-base-msmarco", "castorini/monot5-base-msmarco-10k",
        "castorini/monot5-large-msmarco", "castorini/monot5-large-msmarco-10k",
        "castorini/monot5-3b-msmarco", "castorini/monot5-3b-msmarco-10k",
        "castorini/monot5-base-med-msmarco", "castorini/monot5-3b-med-msmarco",
        "unicamp-dl/InRanker-small", "unicamp-dl/InRanker-base", "unicamp-dl/InRanker-3B",
    ),
    "monoT5 (T5)",
    "monot5",
    "rerankers==0.10.0 rerankers/models/t5ranker.py T5Ranker._get_scores",
    "P(true) of the first decoder step after 'Query: {q} Document: {d} Relevant:'",
    "pygaggle reports log P(true) (score='log-probability'); the order is the same. The references cut "
    "overlong prompts at the end of the string (losing 'Relevant:'); here the document is cut instead.",
)
_t5(
    "duot5",
    ("castorini/duot5-base-msmarco", "castorini/duot5-base-msmarco-10k", "castorini/duot5-3b-msmarco"),
    "duoT5 (T5, pairwise)",
    "duot5",
    "pygaggle (castorini, master) pygaggle/rerank/transformer.py DuoT5.rescore (transcribed)",
    "sum over j of P(d_i > d_j) + (1 - P(d_j > d_i)), all ordered pairs",
    "n (n - 1) forward passes: rerank a short head (the paper: monoT5's top 50) with a cascade.",
)
