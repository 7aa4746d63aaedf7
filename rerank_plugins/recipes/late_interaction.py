"""Late-interaction recipes: ColBERT models in PyLate's or Stanford ColBERT's folder format.

:class:`~rerank_plugins.rankers.late_interaction.ColBERTReranker` is proven equal to PyLate 1.6.0
(``pylate/models/colbert.py`` ``ColBERT.tokenize`` / ``encode`` + ``pylate/rank/rank.py`` ``rerank``) run itself on
tiny random BERT and ModernBERT ColBERT folders in both formats (``tests/rankers/test_late_interaction.py``):
identical query/document token ids, scores to 1e-5, same order (``padding_score="zero"``, PyLate's padded max;
the default ``"exclude"`` equals PyLate scoring each document alone).

Lengths and markers come from the model folder (``config_sentence_transformers.json`` / ``artifact.metadata``);
the options below only pin what the authors' cards state, and every option can be overridden.
"""

from __future__ import annotations

from . import Recipe, register_recipe

__all__: list[str] = []

_REF = "pylate==1.6.0 pylate/models/colbert.py ColBERT.encode + pylate/rank/rank.py rerank"

register_recipe(Recipe(
    name="colbertv2",
    ids=("colbert-ir/colbertv2.0",),
    family="ColBERTv2 (BERT, Stanford format)",
    kind="colbert",
    reference=_REF,
    options={},
    description="Stanford HF_ColBERT checkpoint: [unused0]/[unused1] markers, lengths from artifact.metadata, "
                "128-dim linear projection",
))

register_recipe(Recipe(
    name="answerai-colbert-small",
    ids=("answerdotai/answerai-colbert-small-v1",),
    family="answerai-colbert-small (BERT, Stanford format)",
    kind="colbert",
    reference=_REF,
    options={},
    description="33M-parameter ColBERT, 96-dim projection, Stanford HF_ColBERT format",
))

register_recipe(Recipe(
    name="gte-moderncolbert",
    ids=("lightonai/GTE-ModernColBERT-v1",),
    family="GTE-ModernColBERT (ModernBERT, PyLate format)",
    kind="colbert",
    reference=_REF,
    options={},
    description="PyLate-native ModernBERT ColBERT ([Q] /[D] markers, 128-dim Dense); no remote code",
))

register_recipe(Recipe(
    name="jina-colbert-v2",
    ids=("jinaai/jina-colbert-v2",),
    family="jina-colbert-v2 (XLM-RoBERTa, custom code)",
    kind="colbert",
    reference=_REF,
    options={"query_prefix": "[QueryMarker]", "document_prefix": "[DocumentMarker]",
             "attend_to_expansion_tokens": True, "trust_remote_code": True},
    description="the model card's PyLate settings: [QueryMarker]/[DocumentMarker], attends to expansion tokens",
    notes="Needs trust_remote_code=True (jinaai/xlm-roberta-flash-implementation, which wants flash-attn on GPU); "
          "not testable offline here, as its backbone class is not in transformers.",
))
