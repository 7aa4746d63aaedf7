"""Request and response bodies of ``POST /rerank`` (pydantic), in the shape Cohere, Jina and TEI clients send.

Request (Cohere / Jina)::

    {"query": "...", "documents": ["text", {"text": "...", ...}], "top_n": 3, "return_documents": true,
     "model": "ignored-or-checked"}

TEI sends ``"texts"`` instead of ``"documents"`` (and ``"return_text"``, ``"raw_scores"``, ``"truncate"``,
``"truncation_direction"``); such a request gets TEI's answer shape: a bare list ``[{"index", "score", "text"?}]``.
Everyone else gets::

    {"id": "...", "results": [{"index": 0, "relevance_score": 0.93, "document": {"text": "..."}}],
     "model": "...", "meta": {...}, "usage": {"total_tokens": ..., ...}}

vLLM's ``POST /score`` body is :class:`ScoreRequest` (``text_1`` / ``text_2``).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, field_validator, model_validator

__all__ = ["DocumentObject", "RerankRequest", "RerankResponse", "RerankResult", "ScoreRequest", "TEIResult"]


class _TruncationFields(BaseModel):
    """Per-request score and truncation options shared by the rerank and score bodies."""

    raw_scores: StrictBool | None = Field(
        default=None, description="TEI: scores without the model's activation (logits); default: activated"
    )
    truncate_prompt_tokens: StrictInt | None = Field(
        default=None, ge=-1,
        description="vLLM: tokens per (query, document) pair, special tokens included; -1 = the model's limit; "
                    "the document is cut, from the right",
    )

    @field_validator("truncate_prompt_tokens")
    @classmethod
    def _not_zero(cls, value: int | None) -> int | None:
        if value == 0:
            raise ValueError("must be -1 (the model's limit) or a positive number of tokens")
        return value


class DocumentObject(BaseModel):
    """A document given as an object; ``text`` is required, other fields are kept and echoed back."""

    model_config = ConfigDict(extra="allow")

    text: StrictStr


class RerankRequest(_TruncationFields):
    model_config = ConfigDict(extra="ignore")

    query: StrictStr = Field(description="the search query")
    documents: list[StrictStr | DocumentObject] | None = Field(
        default=None, description="documents to rerank: strings or objects with a 'text' field"
    )
    texts: list[StrictStr] | None = Field(default=None, description="TEI's name for the documents (strings)")
    top_n: StrictInt | None = Field(default=None, ge=1, description="keep the best n, n >= 1 as Cohere requires (all "
                                                                   "when absent)")
    return_documents: StrictBool | None = Field(default=None, description="echo each document in its result")
    return_text: StrictBool | None = Field(default=None, description="TEI's name for return_documents")
    model: StrictStr | None = Field(
        default=None, description="accepted for client compatibility and not checked: the service serves one model, "
                                  "and answers name it"
    )
    max_tokens_per_doc: StrictInt | None = Field(
        default=None, ge=1, description="Cohere v2: cut each document to its first n tokens (the model's tokenizer)"
    )
    truncate: StrictBool | None = Field(
        default=None, description="TEI: true cuts each document so the pair fits the model's max_length; false "
                                  "refuses a pair that does not fit (413); absent: the reranker's own handling"
    )
    truncation_direction: StrictStr | None = Field(
        default=None, description="TEI: 'right' (default: keep the start of the document) or 'left' (keep its end)"
    )

    long_document_strategy: StrictStr | None = Field(
        default=None, description="'truncate' (cut a document past the model's length) or 'chunk' (score token "
                                  "windows, keep the best window's score; each result gets 'best_chunk'); absent: "
                                  "the service's default"
    )
    max_chunks_per_doc: StrictInt | None = Field(
        default=None, ge=1, description="Cohere v1: most windows per document; asks for 'chunk' when "
                                        "long_document_strategy is absent"
    )

    @field_validator("long_document_strategy")
    @classmethod
    def _strategy(cls, value: str | None) -> str | None:
        if value is not None and value not in ("truncate", "chunk"):
            raise ValueError(f"must be 'truncate' or 'chunk', got {value!r}")
        return value

    @field_validator("truncation_direction")
    @classmethod
    def _direction(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if value.lower() not in ("left", "right"):
            raise ValueError(f"must be 'left' or 'right', got {value!r}")
        return value.lower()

    @model_validator(mode="after")
    def _one_document_field(self) -> RerankRequest:
        if self.documents is None and self.texts is None:
            raise ValueError("give the documents to rerank as 'documents' (Cohere, Jina) or 'texts' (TEI)")
        if self.documents is not None and self.texts is not None:
            raise ValueError("give either 'documents' or 'texts', not both")
        return self

    @property
    def tei(self) -> bool:
        """True when the request used TEI's field names (answer in TEI's shape)."""
        return self.texts is not None

    def document_texts(self) -> list[str]:
        items: list[Any] = list(self.texts if self.texts is not None else self.documents or [])
        return [d if isinstance(d, str) else d.text for d in items]

    def document_payloads(self) -> list[dict[str, Any]]:
        items: list[Any] = list(self.texts if self.texts is not None else self.documents or [])
        return [{"text": d} if isinstance(d, str) else d.model_dump() for d in items]

    def wants_documents(self) -> bool:
        if self.return_documents is not None:
            return self.return_documents
        return bool(self.return_text)


class ScoreRequest(_TruncationFields):
    """vLLM's ``/score`` body: ``text_1`` (one query, or one per pair) and ``text_2`` (documents)."""

    model_config = ConfigDict(extra="ignore")

    model: StrictStr | None = Field(default=None, description="accepted and not checked (one model is served)")
    text_1: StrictStr | list[StrictStr] = Field(description="the query, or one query per pair")
    text_2: StrictStr | list[StrictStr] = Field(description="the documents (one per pair)")
    activation: StrictBool | None = Field(default=None, description="vLLM: false returns raw scores")

    def pairs(self) -> list[tuple[str, str]]:
        left = [self.text_1] if isinstance(self.text_1, str) else list(self.text_1)
        right = [self.text_2] if isinstance(self.text_2, str) else list(self.text_2)
        if len(left) == 1:
            left = left * len(right)
        if len(left) != len(right):
            raise ValueError(f"text_1 has {len(left)} texts and text_2 {len(right)}: give one text_1, or one per "
                             "text_2")
        return list(zip(left, right))

    @model_validator(mode="after")
    def _check_pairs(self) -> ScoreRequest:
        if isinstance(self.text_1, list) and not self.text_1:
            raise ValueError("text_1 is empty")
        self.pairs()
        return self


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: dict[str, Any] | None = None
    best_chunk: dict[str, Any] | None = None


class RerankResponse(BaseModel):
    id: str
    results: list[RerankResult]
    model: str
    meta: dict[str, Any]
    usage: dict[str, Any]


class TEIResult(BaseModel):
    index: int
    score: float
    text: str | None = None
