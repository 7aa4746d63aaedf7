"""Cross-encoder recipes: the sequence-classification rerankers users load by hub id.

Every recipe runs :class:`~rerank_plugins.rankers.cross_encoder.CrossEncoderReranker`, proven equal to
sentence-transformers 6.2.0 ``CrossEncoder.predict`` (``sentence_transformers/cross_encoder/model.py``) on tiny
random models of each architecture class (BERT, XLM-RoBERTa, ModernBERT, DeBERTa-v2:
``tests/rankers/test_cross_encoder.py``):
identical token ids, scores to 1e-5.

Activation: ``activation="auto"`` applies what ``CrossEncoder`` applies - the activation saved in the model's
``config.json`` (``sentence_transformers.activation_fn``, or the pre-v4 key ``sbert_ce_default_activation_function``;
``torch.nn.Identity`` scores raw logits), else ``Sigmoid`` for a one-logit head (``get_default_activation_fn``). The
MS MARCO cross-encoders save ``Identity`` (their model cards print raw logits such as ``8.6`` / ``-4.3``); bge,
mxbai v1, gte and jina v1 save none and score ``sigmoid(logit)`` in ``(0, 1)``, which is FlagEmbedding's
``compute_score(normalize=True)``. None of these models defines query or document prefixes (the
``query_prefix`` / ``document_prefix`` options exist for models that do; ``query_prefix`` is
``CrossEncoder.predict(prompt=...)``).

``max_length`` is the length the authors score with (sentence-transformers' model cards / FlagEmbedding's
``compute_score`` default of 512 for bge); every option can be overridden by the caller.
"""

from __future__ import annotations

from . import Recipe, register_recipe

__all__: list[str] = []

_REF = "sentence-transformers==6.2.0 sentence_transformers/cross_encoder/model.py CrossEncoder.predict"


def _cross_encoder(
    name: str, ids: tuple[str, ...], family: str, max_length: int, description: str, *,
    trust_remote_code: bool = False, notes: str = "",
) -> None:
    """Register one ``cross-encoder`` recipe: ``CrossEncoder.predict`` at the card's ``max_length``, the saved
    activation (``activation="auto"``), and ``trust_remote_code`` where the hub repository ships its own code."""
    options: dict[str, object] = {"max_length": max_length, "activation": "auto"}
    if trust_remote_code:
        options["trust_remote_code"] = True
    register_recipe(Recipe(
        name=name, ids=ids, family=family, kind="cross-encoder", reference=_REF, options=options,
        description=description, notes=notes,
    ))


_cross_encoder(
    "ms-marco-cross-encoder",
    (
        "cross-encoder/ms-marco-MiniLM-L6-v2", "cross-encoder/ms-marco-MiniLM-L-6-v2",
        "cross-encoder/ms-marco-MiniLM-L12-v2", "cross-encoder/ms-marco-MiniLM-L-12-v2",
        "cross-encoder/ms-marco-MiniLM-L4-v2", "cross-encoder/ms-marco-MiniLM-L-4-v2",
        "cross-encoder/ms-marco-MiniLM-L2-v2", "cross-encoder/ms-marco-MiniLM-L-2-v2",
        "cross-encoder/ms-marco-TinyBERT-L2-v2", "cross-encoder/ms-marco-TinyBERT-L-2-v2",
        "cross-encoder/ms-marco-electra-base", "cross-encoder/mmarco-mMiniLMv2-L12-H384-v1",
    ),
    "MS MARCO cross-encoder (BERT / MiniLM / ELECTRA)", 512,
    "one-logit BERT-class classifiers trained on MS MARCO; raw logits (Identity saved in config.json)",
)
_cross_encoder(
    "bge-reranker", ("BAAI/bge-reranker-base", "BAAI/bge-reranker-large", "BAAI/bge-reranker-v2-m3"),
    "bge-reranker (XLM-RoBERTa)", 512,
    "XLM-RoBERTa one-logit classifiers; sigmoid(logit) = FlagEmbedding compute_score(normalize=True)",
    notes="v2-m3 accepts 8192 tokens; 512 is FlagEmbedding's default max_length (pass max_length=1024 or more "
          "for long passages).",
)
_cross_encoder(
    "mxbai-rerank-v1",
    ("mixedbread-ai/mxbai-rerank-xsmall-v1", "mixedbread-ai/mxbai-rerank-base-v1",
     "mixedbread-ai/mxbai-rerank-large-v1"),
    "mxbai-rerank v1 (DeBERTa-v2)", 512,
    "DeBERTa-v2 one-logit classifiers (sentence-transformers CrossEncoder per their model card)",
)
_cross_encoder(
    "gte-reranker-modernbert", ("Alibaba-NLP/gte-reranker-modernbert-base",), "gte-reranker (ModernBERT)", 8192,
    "ModernBERT one-logit classifier, 8192-token context; no remote code (transformers >= 4.48)",
)
_cross_encoder(
    "jina-reranker-v1", ("jinaai/jina-reranker-v1-turbo-en", "jinaai/jina-reranker-v1-tiny-en"),
    "jina-reranker v1 (JinaBERT, ALiBi)", 8192,
    "JinaBERT one-logit classifiers; custom modelling code on the hub, so trust_remote_code=True",
    trust_remote_code=True,
    notes="Needs the repository's own modelling code (jinaai/jina-bert-implementation); not testable offline "
          "here: its class is not in transformers, so no tiny model of it can be built.",
)
_cross_encoder(
    "jina-reranker-v2", ("jinaai/jina-reranker-v2-base-multilingual",),
    "jina-reranker v2 (XLM-RoBERTa, flash attention)", 1024,
    "XLM-RoBERTa-based classifier with custom code (trust_remote_code=True); 1024 tokens per its card",
    trust_remote_code=True,
    notes="Custom modelling code (jinaai/jina-xlm-roberta-flash-implementation); not testable offline here.",
)
