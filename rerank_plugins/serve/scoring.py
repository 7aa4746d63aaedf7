"""Score activation, token truncation and token counts of the rerank service, read from the engine.

Activation
    The service reads what the reranker says about its scores (:func:`score_kind`):

    * ``"logit"`` - a cross-encoder with ``activation="raw"`` (one-logit head: the logit ``z``; two-logit head:
      the log-odds ``z1 - z0``). Its probability is ``sigmoid(score)`` for both heads
      (:mod:`rerank_plugins.rankers.cross_encoder`: the softmax of two logits is the sigmoid of their difference);
    * ``"probability"`` - a cross-encoder with ``activation`` ``"sigmoid"`` or ``"softmax"`` (scores in [0, 1]).
      Its raw form is ``log(p / (1 - p))``, recovered from the float32 probability: exact to float precision for
      ``|logit| < ~15``; beyond that float32 probabilities round to 0 or 1 and the logit saturates at +-1e300
      (rerank with ``activation="raw"`` when raw scores matter more than probabilities);
    * ``"cosine"`` - an embedding reranker with ``normalize=True`` (cosines in [-1, 1], float noise clipped). Its
      [0, 1] form is ``(1 + cos) / 2``, order-preserving;
    * ``"unknown"`` - any other reranker (LLM strategies, fusion, test rerankers): scores pass through unchanged on
      every route and may lie outside [0, 1].

    ``score_activation="sigmoid"`` (service option) declares the scores logits whatever the engine says, ``"raw"``
    turns activation off everywhere. Per request, ``raw_scores: true`` asks for the raw form.

Token truncation and counting
    Rerankers with a fast (Rust) tokenizer can cut and count by tokens (:class:`TokenTools`): a cross-encoder
    (``tokenizer``: each (query, document) pair is one model input), monoT5 (its ``template`` rendered around
    both) and an embedding reranker (its ``SentenceTransformer``'s tokenizer: the query and each document are
    read alone, each with its prompt, cut at ``max_seq_length``; the default bundled MiniLM is one). Documents are
    cut exactly as the cross-encoder's ``doc_max_length`` cuts them (``rerank_plugins.rankers._pair_encoding.
    _cap_texts``: the text up to the end offset of the last kept token), or from the left (the text from the
    start offset of the first kept token). A reranker without one gets a clear 422 for ``max_tokens_per_doc`` /
    ``truncate`` / ``truncation_direction`` / ``truncate_prompt_tokens``, and its ``usage`` counts words.
"""

from __future__ import annotations

import math
import sys
from collections.abc import Sequence
from functools import partial
from typing import Any

from ..base import Reranker
from ..engine.length_policy import LengthPolicy, plan_document, token_offsets
from ..rankers._pair_encoding import _cap_texts
from ..validation import check_choice

__all__ = ["SCORE_ACTIVATIONS", "ScoreMapper", "TokenTools", "score_kind"]

SCORE_ACTIVATIONS = ("model", "sigmoid", "raw")
_BIG = 1e300


def score_kind(engine: Reranker) -> str:
    """``"logit"``, ``"probability"``, ``"cosine"`` or ``"unknown"`` (see the module docstring)."""
    activation = getattr(engine, "activation", None)
    if isinstance(activation, str) and hasattr(engine, "num_labels"):
        if activation == "raw":
            return "logit"
        if activation in ("sigmoid", "softmax"):
            return "probability"
    embedding = sys.modules.get("rerank_plugins.rankers.embedding")
    if embedding is not None and isinstance(engine, embedding.EmbeddingReranker) and engine.normalize:
        return "cosine"
    return "unknown"


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


def _logit(p: float) -> float:
    if p <= 0.0:
        return -_BIG
    if p >= 1.0:
        return _BIG
    return math.log(p) - math.log1p(-p)


class ScoreMapper:
    """Turns engine scores into the relevance score (activated) or the raw score of one service."""

    def __init__(self, engine: Reranker, score_activation: str | None = None) -> None:
        check_choice("score_activation", score_activation, SCORE_ACTIVATIONS, optional=True)
        mode = "model" if score_activation is None else score_activation
        self.mode = mode
        self.model_kind = score_kind(engine)
        self.kind = "logit" if mode == "sigmoid" else self.model_kind

    @property
    def bounded(self) -> bool:
        """True when relevance scores are guaranteed to lie in [0, 1]."""
        return self.mode != "raw" and self.kind != "unknown"

    def relevance(self, value: float) -> float:
        if self.mode == "raw":
            return self.raw(value)
        if math.isnan(value):
            return 0.0 if self.kind != "unknown" else value
        if self.kind == "logit":
            return _sigmoid(value)
        if self.kind == "probability":
            return min(1.0, max(0.0, value))
        if self.kind == "cosine":
            return (1.0 + min(1.0, max(-1.0, value))) / 2.0
        return value

    def raw(self, value: float) -> float:
        if self.kind == "probability" and self.mode != "sigmoid":
            return _logit(value)
        if self.kind == "cosine":
            return min(1.0, max(-1.0, value))
        return value

    def describe(self) -> dict[str, Any]:
        return {"score_activation": self.mode, "engine_scores": self.model_kind, "relevance_in_0_1": self.bounded}


class TokenTools:
    """Token cutting and counting with the engine's own tokenizer (``available`` is False without one).

    ``mode`` says how the model reads a request (see the module docstring): ``"pair"`` (a cross-encoder: the
    query and each document as one pair), ``"template"`` (monoT5: the prompt template around both) or
    ``"single"`` (an embedding reranker: the query once and each document alone, each with its prompt).
    """

    def __init__(self, engine: Reranker) -> None:
        self.engine_name = engine.name
        self.mode = "pair"
        self.query_prompt = self.document_prompt = ""
        self.template: str | None = None
        tok = getattr(engine, "tokenizer", None)
        max_length = getattr(engine, "max_length", None)
        encoder = _sentence_encoder(engine)
        if encoder is not None:
            # sentence-transformers reads prompt + text, each text alone, cut at max_seq_length
            # (sentence_transformers 6.2.0 base/modules/transformer.py: preprocess, prepend_prompt_to_texts)
            self.mode = "single"
            tok, max_length = encoder.tokenizer, encoder.max_seq_length
            self.query_prompt = getattr(engine, "query_prompt", None) or ""
            self.document_prompt = getattr(engine, "document_prompt", None) or ""
        else:
            template = getattr(engine, "template", None)
            if isinstance(template, str) and "{query}" in template and "{document}" in template:
                self.mode, self.template = "template", template
        self.tokenizer = tok if tok is not None and getattr(tok, "is_fast", False) else None
        self.max_length: int | None = max_length if isinstance(max_length, int) and max_length > 0 else None

    @property
    def available(self) -> bool:
        return self.tokenizer is not None

    def unavailable_message(self, option: str) -> str:
        return (f"{option} needs a reranker that truncates by tokens; {self.engine_name} has no fast tokenizer the "
                "service can use (cross-encoders, embedding rerankers and monoT5 have one); leave the option out")

    def cut(self, texts: Sequence[str], limit: int, direction: str = "right") -> tuple[list[str], int]:
        """Keep the first (``"right"``) or last (``"left"``) ``limit`` tokens of each text; returns (texts, cut)."""
        assert self.tokenizer is not None
        if direction == "right":
            out, flags = _cap_texts(self.tokenizer, texts, limit)
            return out, sum(flags)
        enc = self.tokenizer(list(texts), add_special_tokens=False, return_offsets_mapping=True, verbose=False)
        out, n = [], 0
        for text, offsets in zip(texts, enc["offset_mapping"]):
            if len(offsets) > limit:
                out.append(text[offsets[-limit][0]:])
                n += 1
            else:
                out.append(text)
        return out, n

    def _ids(self, texts: Sequence[str], pairs: Sequence[str] | None = None) -> list[list[int]]:
        assert self.tokenizer is not None
        if pairs is None:
            return list(self.tokenizer(list(texts), truncation=False, verbose=False)["input_ids"])
        return list(self.tokenizer(list(texts), list(pairs), truncation=False, verbose=False)["input_ids"])

    def _inputs(self, query: str, texts: Sequence[str]) -> tuple[list[str], list[str] | None]:
        """The model inputs of each document: (texts, pair texts) for the tokenizer."""
        if self.mode == "single":
            return [self.document_prompt + t for t in texts], None
        if self.mode == "template":
            assert self.template is not None
            return [self.template.format(query=query, document=t) for t in texts], None
        return [query] * len(texts), list(texts)

    def room(self, query: str, budget: int) -> int:
        """Tokens of its own text a document may keep so that its model input fits ``budget``."""
        assert self.tokenizer is not None
        (empty,) = self._ids(*self._inputs(query, [""]))
        return budget - len(empty)

    def query_tokens(self, query: str) -> int:
        """Tokens of the query read on its own (``"single"`` mode; 0 otherwise: the pairs hold the query)."""
        if self.mode != "single" or self.tokenizer is None:
            return 0
        (ids,) = self._ids([self.query_prompt + query])
        return min(len(ids), self.max_length) if self.max_length is not None else len(ids)

    def input_lengths(self, query: str, texts: Sequence[str], *, cap: bool = True) -> list[int]:
        """Tokens of each document's model input (special tokens and the query or prompt in; capped at
        max_length, where the engine cuts, unless ``cap`` is false)."""
        if not texts:
            return []
        lengths = [len(ids) for ids in self._ids(*self._inputs(query, texts))]
        limit = self.max_length if self.max_length is not None and cap else sys.maxsize
        return [min(limit, n) for n in lengths]

    def chunked_lengths(self, query: str, texts: Sequence[str], policy: LengthPolicy) -> list[int]:
        """Tokens the model reads of each document under a chunking ``policy``: the sum over its windows
        (planned as the engines plan them, :func:`~rerank_plugins.engine.length_policy.plan_document`)."""
        assert self.tokenizer is not None
        full = self.input_lengths(query, texts, cap=False)
        if self.max_length is None:
            return full
        out: list[int] = []
        for text, length in zip(texts, full):
            if length <= self.max_length:
                out.append(length)
                continue

            seen: dict[tuple[int, int], int] = {}  # plan_document measured the chosen windows already

            def measure(s: int, e: int, text: str = text, seen: dict[tuple[int, int], int] = seen) -> int:
                if (s, e) not in seen:
                    (ids,) = self._ids(*self._inputs(query, [text[s:e]]))
                    seen[(s, e)] = len(ids)
                return seen[(s, e)]

            plan = plan_document(policy, len(text), self.max_length, measure,
                                 partial(token_offsets, self.tokenizer, text), full_length=length, who=self.engine_name)
            out.append(sum(measure(s, e) for s, e in plan.spans))
        return out


def _sentence_encoder(engine: Reranker) -> Any:
    """The ``SentenceTransformer`` of an embedding reranker, or None."""
    embedding = sys.modules.get("rerank_plugins.rankers.embedding")
    if embedding is None or not isinstance(engine, embedding.EmbeddingReranker):
        return None
    model = getattr(engine, "model", None)
    if model is None or not hasattr(model, "tokenizer") or not isinstance(getattr(model, "max_seq_length", None), int):
        return None
    return model


def count_words(query: str, texts: Sequence[str]) -> int:
    """Whitespace-separated words of the pairs: the ``usage`` fallback for a reranker without a tokenizer."""
    q = len(query.split())
    return q * len(texts) + sum(len(t.split()) for t in texts)
