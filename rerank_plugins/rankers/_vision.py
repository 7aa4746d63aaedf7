"""Helpers shared by the multimodal strategies (vision yes/no, vision reasoning, CLIP)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..backends.base import LLMBackend
from ..errors import ConfigError, InvalidInputError
from ..images import ImageLimits, load_candidate_images
from ..prompts import clean_passage
from ..refs import ModelRef
from ..types import Candidate, Query
from ._llm import resolve_backend

__all__ = ["Page", "check_image_limits", "modality", "pages_of", "reject_query_image", "resolve_vision_backend"]


@dataclass(frozen=True)
class Page:
    """One candidate as a vision-language prompt sees it: cleaned text (or None) and decoded RGB image (or None)."""

    text: str | None
    image: Any | None

    @property
    def modality(self) -> str:
        return modality(self.text is not None, self.image is not None)


def modality(has_text: bool, has_image: bool) -> str:
    """``"image+text"``, ``"image"`` or ``"text"``."""
    if has_text and has_image:
        return "image+text"
    return "image" if has_image else "text"


def check_image_limits(limits: Any) -> ImageLimits | None:
    if limits is not None and not isinstance(limits, ImageLimits):
        raise ConfigError(f"image_limits must be an ImageLimits or None, got {type(limits).__name__}")
    return limits


def resolve_vision_backend(
    model: str | os.PathLike[str] | ModelRef | LLMBackend, backend_options: Mapping[str, Any] | None
) -> tuple[LLMBackend, bool]:
    """The backend to use and whether this reranker built it (a :class:`VisionLanguageBackend` for a name/path)."""
    return resolve_backend(model, "vision", backend_options, build=_vision_backend)


def _vision_backend(model: Any, **options: Any) -> LLMBackend:
    from ..backends.vision import VisionLanguageBackend

    return VisionLanguageBackend(model, **options)


def reject_query_image(query: Query, who: str) -> None:
    if query.image is not None:
        raise InvalidInputError(
            f"{who} ranks documents for a text query; this query carries an image. "
            "Use ClipReranker for image queries (it embeds and fuses both)."
        )
    if not query.text.strip():
        raise InvalidInputError(f"{who} needs query text")


def pages_of(
    candidates: Sequence[Candidate], limits: ImageLimits | None, max_words: int | None
) -> tuple[list[Page], int]:
    """Decode every candidate image once (all validated before any model work) and clean the texts.

    Returns the pages in input order and how many texts were cut to ``max_words``.
    """
    images = load_candidate_images(candidates, limits=limits)
    pages: list[Page] = []
    cut = 0
    for cand, image in zip(candidates, images):
        text: str | None = None
        if cand.text is not None and cand.text.strip():
            text, was_cut = clean_passage(cand.text, max_words)
            cut += was_cut
        if text is None and image is None:
            raise InvalidInputError(f"candidate {cand.id!r} has neither text nor an image to show the model")
        pages.append(Page(text, image))
    return pages, cut
