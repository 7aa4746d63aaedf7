"""Dual-encoder multimodal reranking: CLIP / SigLIP-style embeddings through sentence-transformers.

:class:`ClipReranker` embeds the query and every candidate with one ``SentenceTransformer`` that has both a
text and an image modality (CLIP, SigLIP and the other dual encoders sentence-transformers loads natively),
and scores each candidate by the cosine of the two L2-normalised embeddings.

Queries and candidates may each be text, an image, or both (MM-Embed-style mixed inputs):

* text only / image only: the embedding of that modality;
* both: a *fused* embedding, ``normalise((1 - w) * normalise(e_text) + w * normalise(e_image))`` with
  ``w = image_weight`` (default 0.5: the average of the two normalised embeddings, re-normalised). This is
  score-level late fusion in embedding space, as the UniIR CLIP baselines do; a dual encoder has no joint
  (text, image) input, so this is a documented approximation, not MM-Embed's own MLLM encoder.

SigLIP is trained with a sigmoid over ``scale * cos + bias``; that is increasing in the cosine, so ranking by
cosine gives the same order as SigLIP's probabilities. Scores are cosines in [-1, 1].

Images are validated and decoded once per call (:mod:`rerank_plugins.images`) and resized by the model's own
processor (224 px for ViT-B/32 CLIP, 336 px for ViT-L/14-336, ...). Each distinct text and each image is
encoded once per call, in batches of ``batch_size``.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from typing import Any, cast

from .._optional import require
from .._warnings import caller_stacklevel
from ..backends.device import resolve_device, resolve_dtype
from ..base import Reranker, Scores
from ..errors import BackendError, ConfigError, InvalidInputError
from ..images import ImageLimits, load_candidate_images, load_query_image
from ..refs import ModelLike, resolve_model
from ..types import Candidate, LoadedModel, Query
from ..validation import check_int, check_number
from ._vision import check_image_limits, modality

__all__ = ["ClipReranker"]


class ClipReranker(Reranker):
    """Rerank text, image or mixed candidates by cosine similarity of dual-encoder embeddings.

    Args:
        model: a local folder, hub id or :class:`ModelRef` of a sentence-transformers-loadable dual encoder
            (e.g. ``openai/clip-vit-base-patch32``, ``google/siglip-base-patch16-224``), or a built
            ``SentenceTransformer`` (used as is).
        device / dtype: as for the other torch rerankers (``None``: best device; fp32 on CPU).
        batch_size: texts or images per forward pass.
        image_weight: weight of the image embedding when an input has both text and an image (0..1).
        image_limits: pixel and byte limits for input images.
        trust_remote_code: allow custom model code from the model folder / hub repository.
    """

    name = "clip"
    kind = "clip"

    def __init__(
        self,
        model: ModelLike | LoadedModel,
        *,
        device: str | None = None,
        dtype: str | None = None,
        batch_size: int = 32,
        image_weight: float = 0.5,
        image_limits: ImageLimits | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        self.batch_size = check_int("batch_size", batch_size, 1)
        self.image_weight = float(check_number("image_weight", image_weight, 0, 1))
        self.image_limits = check_image_limits(image_limits)
        st = require("sentence_transformers", "hf", purpose="the CLIP reranker")
        if isinstance(model, st.SentenceTransformer):
            self.model = model
            self._model_id = f"{type(model).__name__}@{id(model):x}"
            if device is not None:
                self.model.to(resolve_device(device))
        else:
            ref = resolve_model(cast(ModelLike, model))  # a loaded model took the branch above
            self._model_id = ref.bundled_name or ref.name_or_path
            from ..backends.encoders import load_sentence_transformer

            self.model = load_sentence_transformer(
                ref, device=resolve_device(device), trust_remote_code=trust_remote_code, what="the dual encoder"
            )
            self.name = f"clip:{os.path.basename(ref.name_or_path.rstrip('/'))}"
        modalities = set(getattr(self.model, "modalities", None) or ())
        if not {"text", "image"} <= modalities:
            raise ConfigError(
                f"{self._model_id} does not embed both text and images (modalities: {sorted(modalities) or 'text'}); "
                "ClipReranker needs a dual encoder such as CLIP or SigLIP"
            )
        self.device = self.model.device
        current = next(self.model.parameters()).dtype
        wanted = resolve_dtype(dtype, self.device) if dtype is not None else current
        if wanted != current:
            self.model.to(wanted)
        self.model.eval()

    # ------------------------------------------------------------------ embeddings
    def _warn_long_texts(self, texts: Sequence[str]) -> None:
        """The text tower reads at most ``max_seq_length`` tokens (77 for CLIP): say so when a text is cut."""
        limit = getattr(self.model, "max_seq_length", None)
        tokenizer = getattr(self.model, "tokenizer", None)
        tokenizer = getattr(tokenizer, "tokenizer", tokenizer)  # a processor wraps its tokenizer
        if not texts or not isinstance(limit, int) or not callable(tokenizer):
            return
        lengths = [len(ids) for ids in tokenizer(list(texts), truncation=False, verbose=False)["input_ids"]]
        cut = sum(n > limit for n in lengths)
        if cut:
            warnings.warn(
                f"{self.name}: {cut} text(s) longer than the text encoder's {limit} tokens were cut; dual encoders "
                "read only the start of a text (put long documents through a cross-encoder or a page image)",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    def _encode(self, items: Sequence[Any]) -> Any:
        np = require("numpy", "hf")
        if not items:
            return np.zeros((0, 0), dtype=np.float32)
        if self.model is None:
            raise BackendError(f"{self.name} is closed")
        out = self.model.encode(
            list(items), batch_size=self.batch_size, convert_to_numpy=True, normalize_embeddings=True,
            show_progress_bar=False,
        )
        return np.asarray(out, dtype=np.float32)

    def _fuse(self, text_vec: Any, image_vec: Any) -> Any:
        np = require("numpy", "hf")
        if text_vec is None:
            return image_vec
        if image_vec is None:
            return text_vec
        mixed = (1.0 - self.image_weight) * text_vec + self.image_weight * image_vec
        norm = float(np.linalg.norm(mixed))
        return mixed / norm if norm > 0 else mixed

    def embed(self, texts: Sequence[str | None], images: Sequence[Any | None]) -> Any:
        """One normalised (fused) embedding per (text, decoded image) pair; each pair needs at least one of them."""
        np = require("numpy", "hf")
        if len(texts) != len(images):
            raise InvalidInputError(f"embed needs as many texts as images, got {len(texts)} and {len(images)}")
        unique_texts = list(dict.fromkeys(t for t in texts if t is not None))
        text_index = {t: i for i, t in enumerate(unique_texts)}
        image_slots = [i for i, img in enumerate(images) if img is not None]
        self._warn_long_texts(unique_texts)
        text_emb = self._encode(unique_texts)
        image_emb = self._encode([images[i] for i in image_slots])
        image_row = {slot: k for k, slot in enumerate(image_slots)}
        rows = []
        for i, (text, img) in enumerate(zip(texts, images)):
            if text is None and img is None:
                raise InvalidInputError(f"input {i} has neither text nor an image")
            t = text_emb[text_index[text]] if text is not None else None
            v = image_emb[image_row[i]] if img is not None else None
            rows.append(self._fuse(t, v))
        return np.stack(rows).astype(np.float32)

    # ------------------------------------------------------------------ scoring
    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        query_image = load_query_image(query, limits=self.image_limits)
        query_text = query.text if query.text.strip() else None
        images = load_candidate_images(candidates, limits=self.image_limits)
        texts = [c.text if c.text is not None and c.text.strip() else None for c in candidates]
        for cand, text, image in zip(candidates, texts, images):
            if text is None and image is None:
                raise InvalidInputError(f"candidate {cand.id!r} has neither text nor an image to embed")
        all_emb = self.embed([query_text, *texts], [query_image, *images])
        q, docs = all_emb[0], all_emb[1:]
        values = [float(v) for v in docs @ q]
        details = [{"modality": modality(t is not None, i is not None)} for t, i in zip(texts, images)]
        return Scores(
            values=values,
            details=details,
            extra={"query_modality": modality(query_text is not None, query_image is not None)},
        )

    def close(self) -> None:
        """Drop the reference to the model. Idempotent."""
        self.model = None

    def __repr__(self) -> str:
        return f"ClipReranker(model={self._model_id!r}, image_weight={self.image_weight})"
