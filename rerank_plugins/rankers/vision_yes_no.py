"""Pointwise multimodal relevance: P(yes) from a vision-language model's answer-token logits (no generation).

:class:`VisionYesNoReranker` shows the model one (query, document) pair per prompt, where the document is a
page image, a text, or both, and reads the log-probabilities of the answer labels as the first generated token
(:meth:`~rerank_plugins.backends.base.LLMBackend.label_logprobs`: one forward pass over the prompt, image
tokens included, and only the last position's logits; ``generate`` is never called). The score is

    P(yes) = sum P(yes spellings) / (sum P(yes spellings) + sum P(no spellings))

(:func:`rerank_plugins.engine.logits.yes_probability`): the supervised-fine-tuning formulation that the
SFT-vs-contrastive study found better for MLLM rerankers (GMR), and MonoQwen2-VL's score (softmax over the
``True`` / ``False`` logits). Details per candidate: ``p_yes``, ``logprob_yes``, ``logprob_no``, ``labels``,
``modality`` (``image``, ``text`` or ``image+text``).

Prompts (package data, :mod:`rerank_plugins.prompts`):

* ``"vision-yes-no"`` (default): an (instruction, query, document) prompt answered ``yes`` / ``no``;
* ``"monoqwen2-vl"``: MonoQwen2-VL's prompt ("... the previous image document ..."), answered ``True`` /
  ``False``; chosen automatically, with those labels, for the model id ``lightonai/MonoQwen2-VL-v0.1``.

Where the document goes: when the prompt's user message has a ``{text}`` placeholder the document is shown
there, its image first and then its text; otherwise (MonoQwen2-VL) the document comes before the instruction.

Images are validated and decoded once per call, before any model work, so a bad image fails early with an
:class:`~rerank_plugins.errors.InvalidInputError` naming the candidate. Prompts go to the backend in chunks
of ``batch_size`` (the backend batches them further under its token budget), which bounds the memory held
by preprocessed images.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from typing import Any

from ..backends.base import ChatPrompt, LLMBackend
from ..base import BatchedReranker, Scores
from ..engine.logits import BinaryLabels, choose_yes_no_labels, yes_probability
from ..errors import ConfigError, ModelOutputError
from ..images import ImageLimits
from ..prompts import PromptTemplate, get_prompt
from ..refs import ModelRef
from ..types import Candidate, Query
from ..validation import check_int
from ._llm import batched_label_logprobs, warn_truncated
from ._vision import Page, check_image_limits, pages_of, reject_query_image, resolve_vision_backend

__all__ = ["VISION_PRESETS", "VisionYesNoReranker"]

#: exact model ids (``backend.model_id``) -> the prompt and answer labels the model was trained with
VISION_PRESETS: dict[str, dict[str, Any]] = {
    "lightonai/MonoQwen2-VL-v0.1": {"prompt": "monoqwen2-vl", "labels": {"yes": ["True"], "no": ["False"]}},
}
_PRESET_NAMES: dict[str, dict[str, Any]] = {
    "monoqwen2-vl": VISION_PRESETS["lightonai/MonoQwen2-VL-v0.1"],
    "vision-yes-no": {"prompt": "vision-yes-no", "labels": None},
}


class VisionYesNoReranker(BatchedReranker):
    """Pointwise yes/no relevance with a vision-language model (see the module docstring).

    Args:
        model: a :class:`~rerank_plugins.backends.vision.VisionLanguageBackend` (or any LLMBackend that accepts
            image message parts), or a hub id / folder / :class:`ModelRef` loaded into one.
        preset: ``"monoqwen2-vl"`` or ``"vision-yes-no"``; default: by exact model id, else ``"vision-yes-no"``.
        prompt / prompt_version: override the preset's prompt (a pointwise ``yes_no`` template).
        labels: yes/no spellings ``{"yes": [...], "no": [...]}`` (only single-token ones are used).
        batch_size: prompts per backend call.
        max_passage_words: candidate texts are cut to this many words (with a warning); None keeps them whole.
        image_limits: pixel and byte limits for candidate images.
        backend_options: options of the VisionLanguageBackend built from ``model`` (device, dtype, max_pixels...).
    """

    kind = "vision-yes-no"

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef | LLMBackend,
        *,
        preset: str | None = None,
        prompt: str | PromptTemplate | None = None,
        prompt_version: str | int | None = None,
        labels: BinaryLabels | Mapping[str, Sequence[str]] | None = None,
        batch_size: int = 8,
        max_passage_words: int | None = 300,
        image_limits: ImageLimits | None = None,
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self.batch_size: int = batch_size
        check_int("batch_size", batch_size, 1)
        self.max_passage_words = check_int("max_passage_words", max_passage_words, 1, optional=True)
        self.image_limits = check_image_limits(image_limits)
        if preset is not None and preset not in _PRESET_NAMES:
            raise ConfigError(f"preset must be one of {sorted(_PRESET_NAMES)} or None, got {preset!r}")
        self.backend, self._owns_backend = resolve_vision_backend(model, backend_options)
        try:
            if preset is not None:
                chosen = _PRESET_NAMES[preset]
            else:
                chosen = VISION_PRESETS.get(self.backend.model_id, _PRESET_NAMES["vision-yes-no"])
            self.template = get_prompt(prompt if prompt is not None else chosen["prompt"], prompt_version)
            if self.template.kind != "pointwise" or self.template.output_format != "yes_no":
                raise ConfigError(f"prompt {self.template.key} is not a pointwise yes/no prompt")
            wanted = labels if labels is not None else chosen["labels"]
            self.labels = choose_yes_no_labels(self.backend.single_token, wanted)
        except Exception:
            release_backend_quietly(self.backend, self._owns_backend)
            raise
        self._label_list = self.labels.labels
        self.name = f"{self.kind}:{self.backend.model_id}"

    # ------------------------------------------------------------------ prompts
    def build_prompt(self, query: Query, page: Page) -> ChatPrompt:
        """The chat prompt for one (query, document) pair (see "Where the document goes")."""
        template = self.template
        doc_parts: list[dict[str, Any]] = []
        if page.image is not None:
            doc_parts.append({"type": "image", "image": page.image})
        head, sep, tail = template.user.partition("{text}")
        values = {"query": query.text, "text": "", "max_grade": None}
        if sep:
            parts = [{"type": "text", "text": head.format(**values)}, *doc_parts]
            rest = (page.text or "") + tail.format(**values)
            if rest:
                parts.append({"type": "text", "text": rest})
        else:
            if page.text is not None:
                doc_parts.append({"type": "text", "text": page.text + "\n"})
            parts = [*doc_parts, {"type": "text", "text": template.user.format(**values)}]
        messages: list[dict[str, Any]] = []
        if template.system:
            messages.append({"role": "system", "content": template.system.format(**values)})
        messages.append({"role": "user", "content": [p for p in parts if p.get("type") != "text" or p["text"]]})
        return ChatPrompt(tuple(messages), template.assistant_prefix.format(**values))

    # ------------------------------------------------------------------ Reranker
    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        pages_per_query: list[list[Page]] = []
        truncated = 0
        for query, cands in zip(queries, lists):
            reject_query_image(query, type(self).__name__)
            pages, cut = pages_of(cands, self.image_limits, self.max_passage_words)
            pages_per_query.append(pages)
            truncated += cut
        warn_truncated(truncated, self.max_passage_words, type(self).__name__)
        prompts: list[ChatPrompt] = []
        owners: list[tuple[int, int]] = []
        for qi, (query, pages) in enumerate(zip(queries, pages_per_query)):
            for ci, page in enumerate(pages):
                prompts.append(self.build_prompt(query, page))
                owners.append((qi, ci))
        rows = batched_label_logprobs(self.backend, prompts, self._label_list, self.batch_size)
        values: list[list[float]] = [[0.0] * len(c) for c in lists]
        details: list[list[dict[str, Any]]] = [[{} for _ in c] for c in lists]
        for (qi, ci), row in zip(owners, rows):
            try:
                p, lp_yes, lp_no = yes_probability(row, self.labels)
            except ModelOutputError as exc:
                cid = lists[qi][ci].id
                raise ModelOutputError(f"{self.name}: candidate {cid!r}: {exc}", raw_text=str(row)) from None
            values[qi][ci] = p
            details[qi][ci] = {
                "p_yes": p,
                "logprob_yes": lp_yes,
                "logprob_no": lp_no,
                "labels": list(self._label_list),
                "modality": pages_per_query[qi][ci].modality,
            }
        return [
            Scores(values=values[qi], details=details[qi], extra={"prompt": self.template.key})
            for qi in range(len(lists))
        ]

    def close(self) -> None:
        release_backend_quietly(self.backend, self._owns_backend)


def release_backend_quietly(backend: LLMBackend, owned: bool) -> None:
    """Close a backend this reranker built (vision backends are not shared through the loader cache)."""
    if owned:
        backend.close()
