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


def _colbert(
    name: str, hub_id: str, family: str, description: str, *,
    options: dict[str, object] | None = None, notes: str = "",
) -> None:
    """Register one ``colbert`` recipe for ``hub_id`` (proven against PyLate, :data:`_REF`); ``options`` pin only
    what the model card states beyond the folder's own settings."""
    register_recipe(Recipe(
        name=name, ids=(hub_id,), family=family, kind="colbert", reference=_REF,
        options={} if options is None else options, description=description, notes=notes,
    ))


_colbert(
    "colbertv2", "colbert-ir/colbertv2.0", "ColBERTv2 (BERT, Stanford format)",
    "Stanford HF_ColBERT checkpoint: [unused0]/[unused1] markers, lengths from artifact.metadata, "
    "128-dim linear projection",
)
_colbert(
    "answerai-colbert-small", "answerdotai/answerai-colbert-small-v1",
    "answerai-colbert-small (BERT, Stanford format)",
    "33M-parameter ColBERT, 96-dim projection, Stanford HF_ColBERT format",
)
_colbert(
    "gte-moderncolbert", "lightonai/GTE-ModernColBERT-v1", "GTE-ModernColBERT (ModernBERT, PyLate format)",
    "PyLate-native ModernBERT ColBERT ([Q] /[D] markers, 128-dim Dense); no remote code",
)
_colbert(
    "jina-colbert-v2", "jinaai/jina-colbert-v2", "jina-colbert-v2 (XLM-RoBERTa, custom code)",
    "the model card's PyLate settings: [QueryMarker]/[DocumentMarker], attends to expansion tokens",
    options={"query_prefix": "[QueryMarker]", "document_prefix": "[DocumentMarker]",
             "attend_to_expansion_tokens": True, "trust_remote_code": True},
    notes="Needs trust_remote_code=True (jinaai/xlm-roberta-flash-implementation, which wants flash-attn on GPU); "
          "not testable offline here, as its backbone class is not in transformers.",
)
