"""Helpers shared by the LLM strategies (listwise, FIRST, reasoning, pointwise yes/no and graded)."""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .._warnings import caller_stacklevel
from ..backends.base import ChatPrompt, LLMBackend
from ..errors import BackendError, ConfigError, InvalidInputError
from ..prompts import clean_passage
from ..refs import ModelRef
from ..types import Candidate

__all__ = [
    "batched_label_logprobs", "passage_texts", "release_backend", "resolve_backend", "truncate_tokens",
    "warn_truncated",
]


def resolve_backend(
    model: str | os.PathLike[str] | ModelRef | LLMBackend,
    backend: str,
    backend_options: Mapping[str, Any] | None,
    *,
    build: Callable[..., LLMBackend] | None = None,
) -> tuple[LLMBackend, bool]:
    """The backend to use and whether this reranker built it.

    An :class:`LLMBackend` is used as is; anything else goes through ``build(model, **backend_options)`` when
    given (the vision strategies' :class:`~rerank_plugins.backends.vision.VisionLanguageBackend`), else
    :func:`rerank_plugins.backends.loader.load_llm_backend` (imported here, so building a reranker around a
    ready backend never imports the heavy loaders).
    """
    if isinstance(model, LLMBackend):
        if backend_options:
            raise ConfigError("backend_options cannot apply to an already built backend; configure it directly")
        return model, False
    if backend_options is not None and not isinstance(backend_options, Mapping):
        raise ConfigError(f"backend_options must be a mapping, got {type(backend_options).__name__}")
    if build is not None:
        return build(model, **dict(backend_options or {})), True
    from ..backends.loader import load_llm_backend

    return load_llm_backend(model, backend=backend, **dict(backend_options or {})), True


def release_backend(backend: LLMBackend, owned: bool) -> None:
    """Close a backend this reranker built, unless the process-wide loader cache shares it with others."""
    if not owned:
        return
    from ..backends.loader import cached_llm_backends

    if not any(b is backend for b in cached_llm_backends()):
        backend.close()


LabelCall = Callable[[Sequence[ChatPrompt], Sequence[str]], list[list[float]]]


def batched_label_logprobs(
    backend: LLMBackend,
    prompts: Sequence[ChatPrompt],
    labels: Sequence[str],
    batch_size: int | None = None,
    *,
    call: LabelCall | None = None,
) -> list[list[float]]:
    """One row per prompt of the first answer token's log-probabilities for ``labels`` (one value per label),
    from ``backend.label_logprobs`` (or ``call``, e.g. ``backend.label_logits``) in batches of ``batch_size``
    prompts (``None``: one call for all). A backend that answers with another number of rows, or rows of another
    length, is a :class:`~rerank_plugins.errors.BackendError`: the caller never zips a short answer silently."""
    fetch = call if call is not None else backend.label_logprobs
    step = len(prompts) if batch_size is None else batch_size
    rows: list[list[float]] = []
    for start in range(0, len(prompts), max(1, step)):
        batch = prompts[start : start + step]
        out = fetch(batch, labels)
        if len(out) != len(batch) or any(len(r) != len(labels) for r in out):
            raise BackendError(f"{backend.model_id}: label_logprobs returned a malformed result")
        rows.extend(out)
    return rows


def passage_texts(
    candidates: Sequence[Candidate], max_words: int | None, who: str
) -> tuple[list[str], int]:
    """Cleaned passage texts (see :func:`~rerank_plugins.prompts.clean_passage`) and how many were cut."""
    texts: list[str] = []
    cut = 0
    for c in candidates:
        if c.text is None:
            raise InvalidInputError(f"{who} ranks text; candidate {c.id!r} has an image but no text")
        text, was_cut = clean_passage(c.text, max_words)
        texts.append(text)
        cut += was_cut
    return texts, cut


def warn_truncated(count: int, max_words: int | None, who: str) -> None:
    if count:
        warnings.warn(
            f"{who}: {count} passage(s) longer than max_passage_words={max_words} were cut to fit the prompt; "
            "raise max_passage_words (or pass None) to keep them whole",
            UserWarning,
            stacklevel=caller_stacklevel(),
        )


def truncate_tokens(backend: LLMBackend, text: str, max_tokens: int, *, side: str = "right") -> tuple[str, bool]:
    """``text`` cut to ``max_tokens`` tokens the way the references cut it
    (``tokenizer.convert_tokens_to_string(tokenizer.tokenize(text)[:n])``: ielab/llm-rankers ``truncate``,
    ReasonRank ``convert_doc_to_prompt_content``), and whether it was longer; ``side="left"`` keeps the last
    ``max_tokens`` instead. The round trip is applied to every text, short ones included, as the references do.
    A backend without a tokenizer object (HTTP) cuts with its own ``truncate_text`` (right side only); one with
    neither is a :class:`ConfigError`."""
    tok = getattr(backend, "tokenizer", None)
    if tok is not None and hasattr(tok, "tokenize") and hasattr(tok, "convert_tokens_to_string"):
        pieces = tok.tokenize(text)
        kept = pieces[-max_tokens:] if side == "left" else pieces[:max_tokens]
        return str(tok.convert_tokens_to_string(kept)), len(pieces) > max_tokens
    truncate = getattr(backend, "truncate_text", None)
    if truncate is None or side != "right":
        why = "has none" if truncate is None else "cuts only on the right (truncation_side='right')"
        raise ConfigError(
            f"max_document_tokens / max_query_tokens need a backend with a tokenizer; {backend!r} {why}"
        )
    cut = str(truncate(text, max_tokens))
    return cut, cut != text
