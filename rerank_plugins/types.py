"""Frozen value objects exchanged by every reranker and adapter.

* :class:`Query` - the user's question (text, optionally an image for multimodal rerankers).
* :class:`Candidate` - one document to rerank: id, text and/or image, metadata, first-stage score.
* :class:`ScoredCandidate` - a candidate with its rerank score, 1-based rank and original position,
  plus the model's reasoning and per-candidate details when the strategy produces them.
* :class:`WindowTrace` - what happened in one listwise window (input order, output order, raw model
  text, reasoning, parse repairs, failure).
* :class:`RankedList` - the result of one ``rerank`` call.
* :class:`ChatPrompt` - what an LLM strategy (through :mod:`rerank_plugins.prompts`) asks a backend to complete.
* :class:`LoadedModel`, :class:`Embedder` - the objects a ``model`` argument accepts besides a
  :data:`~rerank_plugins.refs.ModelLike` (structural protocols: typing them imports nothing heavy).

Inputs are never mutated: metadata is copied into a read-only mapping.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any, Protocol

from .errors import InvalidInputError
from .validation import is_number

__all__ = [
    "Candidate",
    "ChatPrompt",
    "Embedder",
    "ImageInput",
    "LoadedModel",
    "Message",
    "Query",
    "RankedList",
    "ScoredCandidate",
    "WindowTrace",
    "as_candidates",
    "as_query",
]

#: An image given as a filesystem path, raw encoded bytes, or a ``PIL.Image.Image``.
ImageInput = str | Path | bytes | Any

class LoadedModel(Protocol):
    """A model object already in memory that an encoder strategy uses as is instead of loading one: a
    ``transformers`` ``PreTrainedModel``, a sentence-transformers ``SentenceTransformer`` or ``CrossEncoder``
    (each a ``torch.nn.Module``). Structural, so that typing it needs no torch import."""

    def eval(self) -> Any: ...


class Embedder(Protocol):
    """What the vector methods (PRF, E2Rank) embed with: an
    :class:`~rerank_plugins.rankers.embedding.EmbeddingReranker` or any object with these two methods, each
    returning a ``(len(texts), dim)`` array."""

    def embed_queries(self, texts: Sequence[str]) -> Any: ...

    def embed_documents(self, texts: Sequence[str]) -> Any: ...

_EMPTY: Mapping[str, Any] = MappingProxyType({})


def _freeze(metadata: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if metadata is None:
        return _EMPTY
    if isinstance(metadata, MappingProxyType):
        return metadata
    if not isinstance(metadata, Mapping):
        raise InvalidInputError(f"metadata must be a mapping, got {type(metadata).__name__}")
    return MappingProxyType(dict(metadata))


@dataclass(frozen=True, slots=True)
class Query:
    """A search query. ``text`` must be non-empty unless an ``image`` is given."""

    text: str
    id: str | None = None
    image: ImageInput | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        if not isinstance(self.text, str):
            raise InvalidInputError(f"query text must be a str, got {type(self.text).__name__}")
        if not self.text.strip() and self.image is None:
            raise InvalidInputError("query is empty: give a non-blank query text (or an image)")
        object.__setattr__(self, "metadata", _freeze(self.metadata))


@dataclass(frozen=True, slots=True)
class Candidate:
    """A document to rerank.

    ``score`` is the first-stage (retriever) score, if any; ``image`` is an optional image (path, bytes or
    PIL image) for multimodal rerankers. A candidate needs text, an image, or both.
    """

    id: str
    text: str | None = None
    metadata: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)
    score: float | None = None
    image: ImageInput | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.id, str):
            raise InvalidInputError(f"candidate id must be a str, got {type(self.id).__name__}")
        if self.text is not None and not isinstance(self.text, str):
            raise InvalidInputError(
                f"candidate {self.id!r}: text must be a str or None, got {type(self.text).__name__}"
            )
        if self.text is None and self.image is None:
            raise InvalidInputError(f"candidate {self.id!r} has neither text nor image")
        if self.score is not None:
            if not is_number(self.score):
                raise InvalidInputError(
                    f"candidate {self.id!r}: score must be a number, got {type(self.score).__name__}"
                )
            object.__setattr__(self, "score", float(self.score))
        object.__setattr__(self, "metadata", _freeze(self.metadata))

    @property
    def content(self) -> str:
        """The text, or an empty string for an image-only candidate."""
        return self.text if self.text is not None else ""


@dataclass(frozen=True, slots=True)
class WindowTrace:
    """One listwise window: which ids went in, in which order they came out, and what the model said."""

    pass_index: int
    start: int
    end: int
    input_ids: tuple[str, ...]
    output_ids: tuple[str, ...]
    raw_output: str | None = None
    reasoning: str | None = None
    repairs: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    failed: bool = False
    error: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "repairs", _freeze(self.repairs))


@dataclass(frozen=True, slots=True)
class ScoredCandidate:
    """A reranked candidate. ``rank`` is 1-based; ``original_position`` is the 0-based input index."""

    candidate: Candidate
    score: float
    rank: int
    original_position: int
    reasoning: str | None = None
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", _freeze(self.details))

    @property
    def id(self) -> str:
        return self.candidate.id

    @property
    def text(self) -> str | None:
        return self.candidate.text

    @property
    def metadata(self) -> Mapping[str, Any]:
        return self.candidate.metadata


@dataclass(frozen=True, slots=True)
class RankedList:
    """The result of one ``rerank`` call, best first."""

    query: Query
    results: tuple[ScoredCandidate, ...]
    traces: tuple[WindowTrace, ...] = ()
    reranker: str = ""
    details: Mapping[str, Any] = field(default_factory=lambda: _EMPTY)

    def __post_init__(self) -> None:
        object.__setattr__(self, "details", _freeze(self.details))

    def __iter__(self) -> Iterator[ScoredCandidate]:
        return iter(self.results)

    def __len__(self) -> int:
        return len(self.results)

    def __getitem__(self, index: int) -> ScoredCandidate:
        return self.results[index]

    @property
    def ids(self) -> list[str]:
        return [r.id for r in self.results]

    @property
    def scores(self) -> list[float]:
        return [r.score for r in self.results]


def as_query(query: Query | str) -> Query:
    """Coerce a ``str`` or :class:`Query` into a :class:`Query`, raising :class:`InvalidInputError` otherwise."""
    if isinstance(query, Query):
        return query
    if isinstance(query, str):
        return Query(text=query)
    raise InvalidInputError(f"query must be a str or Query, got {type(query).__name__}")


def _candidate_from_mapping(item: Mapping[str, Any], position: int) -> Candidate:
    known = {"id", "text", "metadata", "score", "image"}
    unknown = set(item) - known
    if unknown:
        raise InvalidInputError(
            f"candidate at position {position}: unknown keys {sorted(unknown)}; expected a subset of {sorted(known)}"
        )
    cid = item.get("id", str(position))
    if isinstance(cid, int) and not isinstance(cid, bool):
        cid = str(cid)
    return Candidate(
        id=cid,
        text=item.get("text"),
        metadata=item.get("metadata"),  # type: ignore[arg-type]
        score=item.get("score"),
        image=item.get("image"),
    )


def as_candidates(candidates: Sequence[Candidate | str | Mapping[str, Any]]) -> list[Candidate]:
    """Coerce candidates given as :class:`Candidate`, ``str`` (id = position) or mappings.

    Raises :class:`InvalidInputError` on wrong types and on duplicate ids (naming the id).
    """
    if isinstance(candidates, (str, bytes)) or not isinstance(candidates, Sequence):
        raise InvalidInputError(
            f"candidates must be a list of Candidate, str or dict, got {type(candidates).__name__}"
        )
    out: list[Candidate] = []
    seen: dict[str, int] = {}
    for position, item in enumerate(candidates):
        if isinstance(item, Candidate):
            cand = item
        elif isinstance(item, str):
            cand = Candidate(id=str(position), text=item)
        elif isinstance(item, Mapping):
            cand = _candidate_from_mapping(item, position)
        else:
            raise InvalidInputError(
                f"candidate at position {position} must be a Candidate, str or dict, got {type(item).__name__}"
            )
        if cand.id in seen:
            raise InvalidInputError(
                f"duplicate candidate id {cand.id!r} at positions {seen[cand.id]} and {position}"
            )
        seen[cand.id] = position
        out.append(cand)
    return out


#: One chat message (``{"role": ..., "content": ...}``) of a :class:`ChatPrompt`.
Message = dict[str, Any]


@dataclass(frozen=True)
class ChatPrompt:
    """Chat messages rendered with the model's chat template, then ``assistant_prefix`` appended verbatim
    (text the answer is forced to start with, e.g. ``"["`` or ``"<think>"``).

    With ``raw`` set, the messages are ignored and ``raw`` is used as the full prompt text (completion style).

    ``add_special_tokens`` is the special-token policy of this prompt (see :func:`adds_special_tokens`):
    ``True`` tokenises the rendered (or raw) text with the tokenizer's special tokens (e.g. a Llama/Mistral
    BOS ``<s>``), ``False`` with none, ``None`` leaves it to the backend's ``add_special_tokens`` option and,
    when that is ``None`` too, to the default: none for a chat prompt (its template writes what it needs),
    the tokenizer's for a raw prompt.

    With ``token_ids`` set, the prompt is pre-tokenised (built piece by piece the way a reference reranker builds
    its inputs, see :mod:`rerank_plugins.engine.token_prompt`): a backend that runs the model itself feeds those
    ids as they are (no template, no special tokens added, ``assistant_prefix`` must be empty), and a label is
    the token it tokenises to on its own. ``raw`` then holds the same prompt as text, for servers that take text;
    ``add_special_tokens`` says whether that text needs the tokenizer's special tokens (BOS) added to equal
    ``token_ids`` (never applied to ``token_ids`` themselves).
    """

    messages: tuple[Message, ...] = ()
    assistant_prefix: str = ""
    raw: str | None = None
    add_special_tokens: bool | None = None
    token_ids: tuple[int, ...] | None = None

    @classmethod
    def of(
        cls,
        user: str,
        system: str | None = None,
        assistant_prefix: str = "",
        *,
        add_special_tokens: bool | None = None,
    ) -> ChatPrompt:
        msgs: list[Message] = []
        if system:
            msgs.append({"role": "system", "content": system})
        msgs.append({"role": "user", "content": user})
        return cls(tuple(msgs), assistant_prefix, add_special_tokens=add_special_tokens)
