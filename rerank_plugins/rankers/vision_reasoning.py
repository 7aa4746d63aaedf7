"""Multimodal reasoning listwise reranking in MM-R5's format: reasoning first, then the ranking of the images.

:class:`VisionReasoningReranker` is :class:`~rerank_plugins.rankers.reasoning.ReasoningReranker` (same
back-to-front sliding windows, same answer extraction and the same failure rules) with windows of page images
instead of passages. Each window becomes one prompt in which every candidate is introduced by its line
(``"Image 3: "`` plus its text, if any) followed by its image; the model writes
``<think> ... </think><answer>[3, 1, 2]</answer>`` and the ranking is read **only** from the answer
(:func:`rerank_plugins.engine.reasoning.split_reasoning`, then
:func:`rerank_plugins.engine.permutation.parse_permutation` with its repair counts).

Failures follow the text rules exactly: a reasoning that never closes, a missing, unclosed or empty answer, or
an answer cut by the token limit raises :class:`~rerank_plugins.errors.ModelOutputError` with the raw text
(``fallback="raise"``, the default), or, with ``fallback="keep"``, leaves the window in its input order and
records the failure in its :class:`~rerank_plugins.types.WindowTrace` (``failed=True``, ``error``). Digits
are never scraped from the reasoning.

The prompt defaults to ``"mm-r5"`` (:mod:`rerank_plugins.prompts`): MM-R5's layout and answer format in our
wording. The prompt's user message must hold ``{passages}``, where the candidate lines and images go. MM-R5
itself (``i2vec/MM-R5``, Qwen2.5-VL-7B) ranks all its candidate pages in one prompt; here ``window_size``
(default 5) bounds the images per prompt, since every page costs up to ``max_pixels / 28**2`` tokens.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, cast

from ..backends.base import ChatPrompt, LLMBackend
from ..engine.identifiers import get_scheme
from ..errors import ConfigError
from ..images import ImageLimits
from ..prompts import PromptTemplate
from ..refs import ModelRef
from ..types import Candidate, Query
from ._vision import Page, check_image_limits, pages_of, reject_query_image, resolve_vision_backend
from .reasoning import ReasoningReranker
from .vision_yes_no import release_backend_quietly

__all__ = ["VisionReasoningReranker"]


class VisionReasoningReranker(ReasoningReranker):
    """Reasoning listwise reranking over page images (see the module docstring).

    Takes the options of :class:`~rerank_plugins.rankers.listwise.ListwiseReranker` in ``generate`` mode
    (``window_size``, ``stride``, ``num_passes``, ``top_k_settle``, ``fallback``, ``temperature``, ``seed``,
    ``max_passage_words``...), plus ``image_limits`` and ``backend_options`` (options of the
    :class:`~rerank_plugins.backends.vision.VisionLanguageBackend` built from ``model``: device, dtype,
    min_pixels, max_pixels...). ``max_new_tokens`` defaults to 1024.
    """

    kind = "vision-reasoning"

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef | LLMBackend,
        *,
        prompt: str | PromptTemplate | None = "mm-r5",
        window_size: int = 5,
        stride: int = 3,
        max_new_tokens: int | None = 1024,
        image_limits: ImageLimits | None = None,
        backend_options: dict[str, Any] | None = None,
        **options: Any,
    ) -> None:
        if "backend" in options:
            raise ConfigError("VisionReasoningReranker always runs on a vision-language backend; drop backend=")
        self.image_limits = check_image_limits(image_limits)
        backend, owned = resolve_vision_backend(model, backend_options)
        try:
            super().__init__(
                backend, prompt=prompt, window_size=window_size, stride=stride, max_new_tokens=max_new_tokens,
                **options,
            )
        except Exception:
            release_backend_quietly(backend, owned)
            raise
        self._owns_backend = owned

    def _default_prompt(self) -> str:
        return "mm-r5"

    def _check_template(self, template: PromptTemplate) -> None:
        super()._check_template(template)
        if template.multi_turn or "{passages}" not in template.user:
            raise ConfigError(f"prompt {template.key} needs a single-turn user message with a {{passages}} slot")

    # ------------------------------------------------------------------ windows of pages
    def _passage_texts(self, query: Query, candidates: Sequence[Candidate]) -> tuple[list[str], int]:
        """The window entries the listwise machinery hands to :meth:`_prompt`: here decoded pages (image and
        cleaned text), validated all at once before any model work, and how many texts were cut."""
        reject_query_image(query, type(self).__name__)
        pages, cut = pages_of(candidates, self.image_limits, self.max_passage_words)
        return cast(list[str], pages), cut

    def _prompt(self, query: Query, passages: list[Any], *, forced: bool = True) -> ChatPrompt:
        return self.build_prompt(query, cast(list[Page], passages))

    def build_prompt(self, query: Query, pages: Sequence[Page]) -> ChatPrompt:
        """The chat prompt for one window: the user text up to ``{passages}``, then for each page its line and its
        image, then the rest of the user text."""
        template = self.template
        scheme = get_scheme(self.scheme)
        labels = scheme.labels(len(pages))
        values = {"query": query.text, "num": len(pages), "id_kind": scheme.kind, "example": scheme.example(2)}
        head, _, tail = template.user.partition("{passages}")
        parts: list[dict[str, Any]] = [{"type": "text", "text": head.format(**values)}]
        for label, page in zip(labels, pages):
            line = template.passage.format(id=label, text=page.text or "").rstrip(" ")
            parts.append({"type": "text", "text": ("\n" if len(parts) > 1 else "") + line})
            if page.image is not None:
                parts.append({"type": "image", "image": page.image})
        rest = tail.format(**values)
        if rest.strip():
            parts.append({"type": "text", "text": rest})
        messages: list[dict[str, Any]] = []
        if template.system:
            messages.append({"role": "system", "content": template.system.format(**values)})
        messages.append({"role": "user", "content": [p for p in parts if p.get("type") != "text" or p["text"]]})
        return ChatPrompt(tuple(messages), self.assistant_prefix)

    def close(self) -> None:
        release_backend_quietly(self.backend, self._owns_backend)
