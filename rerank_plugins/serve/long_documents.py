"""Long documents in the service: the request fields mapped onto the engine's length policy.

Request fields (Cohere shape)
    ``long_document_strategy``: ``"truncate"`` or ``"chunk"`` (Elasticsearch's name for the choice) - the
    length policy's ``long_documents`` (:mod:`rerank_plugins.engine.length_policy`).
    ``max_chunks_per_doc`` (Cohere v1): most windows per document - the policy's ``max_chunks``; given alone it
    asks for ``chunk`` (Cohere v1 chunks long documents and keeps the best chunk's score).
Absent fields take the service's defaults (``create_app(long_document_strategy=, max_chunks_per_doc=)``, the
``serve`` flags of the same names), and without those the engine's own policy (``-o long_documents=chunk``).

The engine follows the policy itself (windows batched with everything else, identical windows scored once, the
best window's span in ``details["best_chunk"]``): a request whose policy differs from the engine's runs on
``engine.with_length_policy(policy)``, a copy sharing the model (kept per policy, a few at most). A reranker
that does not follow the length policy (no ``policy`` attribute) answers 422 to ``chunk``; a reranker that
refuses a policy (duoT5 cannot chunk) answers 422 with its reason.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from dataclasses import replace
from typing import Any

from ..base import Reranker
from ..engine.length_policy import LONG_DOCUMENTS, LengthPolicy
from ..errors import ConfigError
from ..validation import check_choice, check_int

__all__ = ["LengthPolicies", "PolicyRefused"]

#: engine copies kept, one per distinct policy asked for (the oldest is dropped)
_KEEP = 8


class PolicyRefused(Exception):
    """A request's long-document fields cannot be honoured (the service answers 422 with the message)."""


class LengthPolicies:
    """The engine to run a request on, from its long-document fields (see the module docstring)."""

    def __init__(self, engine: Reranker, *, long_document_strategy: str | None = None,
                 max_chunks_per_doc: int | None = None) -> None:
        check_choice("long_document_strategy", long_document_strategy, LONG_DOCUMENTS, optional=True)
        check_int("max_chunks_per_doc", max_chunks_per_doc, 1, optional=True)
        self.engine = engine
        own = getattr(engine, "policy", None)
        self.base: LengthPolicy | None = own if isinstance(own, LengthPolicy) else None
        self._variants: OrderedDict[LengthPolicy, Reranker] = OrderedDict()
        self._lock = threading.Lock()
        self.default_strategy = long_document_strategy
        self.default_max_chunks = max_chunks_per_doc
        try:
            self.default_engine, self.default_policy = self.resolve(None, None)
        except PolicyRefused as exc:
            raise ConfigError(str(exc)) from None

    def resolve(self, strategy: str | None, max_chunks: int | None) -> tuple[Reranker, LengthPolicy | None]:
        """``(engine, policy)`` for a request's ``long_document_strategy`` and ``max_chunks_per_doc`` (``None``:
        not given); ``policy`` is None for a reranker that does not follow the length policy."""
        if strategy == "truncate" and max_chunks is not None:
            raise PolicyRefused(f"max_chunks_per_doc={max_chunks} asks for chunks and "
                                "long_document_strategy='truncate' for none; leave one out")
        if strategy is None:
            strategy = "chunk" if max_chunks is not None else self.default_strategy
        if max_chunks is None:
            max_chunks = self.default_max_chunks
        if self.base is None:
            if strategy == "chunk":
                raise PolicyRefused(f"{self.engine.name} does not chunk long documents (it does not follow the length "
                               "policy; cross-encoders, embedding rerankers and monoT5 do); leave "
                               "long_document_strategy and max_chunks_per_doc out")
            return self.engine, None
        changes: dict[str, Any] = {}
        if strategy is not None:
            changes["long_documents"] = strategy
        if max_chunks is not None:
            changes["max_chunks"] = max_chunks
        policy = replace(self.base, **changes)
        return self._engine_for(policy), policy

    def _engine_for(self, policy: LengthPolicy) -> Reranker:
        if policy == self.base:
            return self.engine
        with self._lock:
            engine = self._variants.get(policy)
            if engine is not None:
                self._variants.move_to_end(policy)
                return engine
        make = getattr(self.engine, "with_length_policy", None)
        if make is None:
            raise PolicyRefused(f"{self.engine.name} cannot switch its length policy per request; start the service "
                           f"with -o long_documents={policy.long_documents} instead")
        try:
            engine = make(policy)
        except ConfigError as exc:
            raise PolicyRefused(str(exc)) from None
        with self._lock:
            self._variants[policy] = engine
            while len(self._variants) > _KEEP:
                self._variants.popitem(last=False)
        return engine
