"""Request and response bodies of ``POST /rerank`` (pydantic), in the shape Cohere, Jina and TEI clients send.

Request (Cohere / Jina)::

    {"query": "...", "documents": ["text", {"text": "...", ...}], "top_n": 3, "return_documents": true,
     "model": "ignored-or-checked"}

TEI sends ``"texts"`` instead of ``"documents"`` (and ``"return_text"``, ``"raw_scores"``, ``"truncate"``); such a
request gets TEI's answer shape: a bare list ``[{"index", "score", "text"?}]``. Everyone else gets::

    {"id": "...", "results": [{"index": 0, "relevance_score": 0.93, "document": {"text": "..."}}],
     "model": "...", "meta": {...}, "usage": {...}}
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, model_validator

__all__ = ["DocumentObject", "RerankRequest", "RerankResponse", "RerankResult", "TEIResult"]


class DocumentObject(BaseModel):
    """A document given as an object; ``text`` is required, other fields are kept and echoed back."""

    model_config = ConfigDict(extra="allow")

    text: StrictStr


class RerankRequest(BaseModel):
    model_config = ConfigDict(extra="ignore")

    query: StrictStr = Field(description="the search query")
    documents: list[StrictStr | DocumentObject] | None = Field(
        default=None, description="documents to rerank: strings or objects with a 'text' field"
    )
    texts: list[StrictStr] | None = Field(default=None, description="TEI's name for the documents (strings)")
    top_n: StrictInt | None = Field(default=None, ge=0, description="keep the best n (all when absent)")
    return_documents: StrictBool | None = Field(default=None, description="echo each document in its result")
    return_text: StrictBool | None = Field(default=None, description="TEI's name for return_documents")
    model: StrictStr | None = Field(default=None, description="model name (checked when the service is strict)")
    raw_scores: StrictBool | None = None
    truncate: StrictBool | None = None

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


class RerankResult(BaseModel):
    index: int
    relevance_score: float
    document: dict[str, Any] | None = None


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
