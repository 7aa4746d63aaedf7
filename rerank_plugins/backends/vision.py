"""In-process vision-language backend on transformers (Qwen2-VL, Qwen2.5-VL, MonoQwen2-VL and similar).

It implements the same :class:`~rerank_plugins.backends.base.LLMBackend` contract as the text backend
(:class:`~rerank_plugins.backends.transformers.TransformersLLMBackend`, whose label-token rule, generation
settings and finish-reason logic it inherits), with images inside the chat messages::

    ChatPrompt(({"role": "user", "content": [
        {"type": "image", "image": page},            # a path, bytes or PIL image
        {"type": "text", "text": "Is this page relevant to ...?"},
    ]},))

Loading
    The model is loaded with ``AutoModelForImageTextToText`` and the processor with ``AutoProcessor`` from the
    same hub id or folder (or from ``processor=``). A folder or hub repository holding a PEFT LoRA adapter
    (``adapter_config.json``, as ``lightonai/MonoQwen2-VL-v0.1`` on top of ``Qwen/Qwen2-VL-2B-Instruct``) loads
    its base model, applies the adapter with ``peft`` (extra ``vision``) and merges it; its processor comes from
    the base model unless the adapter ships one. transformers 5 builds the *video* processor of Qwen2-VL-style
    processors eagerly, and that needs torchvision; when torchvision is missing the processor is assembled from
    the image processor and tokenizer alone (images only, no video), which is all reranking needs.

Images
    Every image is validated and decoded once (:mod:`rerank_plugins.images`), then resized by the model's own
    processor. For Qwen2-VL-family processors ``min_pixels`` / ``max_pixels`` bound the resized area (the
    number of image tokens is about ``pixels / 28**2``); other processors resize to their fixed size and
    refuse these two options.

Batches
    Each prompt is run through the processor once (exact token count, image tokens included), then prompts
    are grouped by :func:`~rerank_plugins.engine.batching.run_batched` under ``batch_size`` and
    ``max_batch_tokens``; a batch left-pads the token sequences and concatenates the image tensors, so a padded
    prompt gets the logits it gets alone. Positions (multimodal RoPE for Qwen2-VL) are computed by the model
    from the attention mask.

``label_logprobs`` reads only the last position's logits (one forward pass, ``logits_to_keep=1``, no
``generate``): the answer token after the generation prompt, which follows the image tokens. ``generate``
decodes greedily by default and reports ``finish_reason="length"`` when the answer was cut.

:attr:`VisionLanguageBackend.stats` adds to the text backend's counters the images seen, the image tokens,
and the seconds spent in the processor and in the model, so the cost of image preprocessing is visible.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._optional import require
from ..errors import ConfigError
from ..images import ImageLimits, is_pil_image, load_image
from ..refs import ModelRef, resolve_model
from ..validation import check_int
from .base import ChatPrompt, Generation, GenerationRequest
from .transformers import BackendStats, TransformersLLMBackend
from .vision_loading import load_vision_model, load_vision_processor, processor_source

__all__ = ["VisionBackendStats", "VisionLanguageBackend"]


@dataclass
class VisionBackendStats(BackendStats):
    """:class:`BackendStats` plus image work and where the time went."""

    images: int = 0
    image_tokens: int = 0
    processor_seconds: float = 0.0
    model_seconds: float = 0.0


@dataclass
class _Encoded:
    text: str
    features: dict[str, Any]  # one prompt's processor output (tensors with a leading batch dim of 1 for text)
    length: int
    images: int


def _is_image_part(part: Any) -> bool:
    return isinstance(part, dict) and (part.get("type") == "image" or "image" in part)


def _load_pickled_vision_backend(cls: type, ref: ModelRef, options: dict[str, Any]) -> Any:
    return cls(ref, **options)


class VisionLanguageBackend(TransformersLLMBackend):
    """A vision-language model run in-process with transformers (see the module docstring).

    Args:
        model: hub id, local folder (full model or LoRA adapter) or :class:`ModelRef`.
        processor: where to load the processor from, when not from the model (or its adapter's base).
        device / dtype: as for the text backend (``None``: best device; fp32 on CPU, bf16/fp16 on GPU).
        min_pixels / max_pixels: resized-area bounds of Qwen2-VL-style processors (``None``: the model's own).
        image_limits: validation limits for input images (:class:`~rerank_plugins.images.ImageLimits`).
        batch_size / max_batch_tokens: most prompts, and most padded tokens (image tokens included), per call.
        merge_adapter: merge a LoRA adapter into the base weights after loading (faster inference).
        generation_kwargs / model_kwargs: as for the text backend.
    """

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as "how to load it" (the :class:`ModelRef` and the options given), as the text backend does;
        deep copies share the loaded model."""
        return (_load_pickled_vision_backend, (type(self), self.ref, self._options))

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef,
        *,
        processor: str | None = None,
        device: Any = None,
        dtype: Any = None,
        min_pixels: int | None = None,
        max_pixels: int | None = None,
        image_limits: ImageLimits | None = None,
        batch_size: int = 4,
        max_batch_tokens: int | None = 16384,
        context_length: int | None = None,
        trust_remote_code: bool = False,
        merge_adapter: bool = True,
        generation_kwargs: dict[str, Any] | None = None,
        model_kwargs: dict[str, Any] | None = None,
        progress: bool = False,
    ) -> None:
        check_int("batch_size", batch_size, 1)
        if max_batch_tokens is not None and max_batch_tokens < 1:
            raise ConfigError(f"max_batch_tokens must be >= 1 or None, got {max_batch_tokens}")
        if context_length is not None and context_length < 1:
            raise ConfigError(f"context_length must be >= 1 or None, got {context_length}")
        for label, value in (("min_pixels", min_pixels), ("max_pixels", max_pixels)):
            check_int(label, value, 1, optional=True)
        if min_pixels is not None and max_pixels is not None and min_pixels > max_pixels:
            raise ConfigError(f"min_pixels ({min_pixels}) is larger than max_pixels ({max_pixels})")
        self._torch = require("torch", "hf", purpose="the vision-language backend")
        ref = model if isinstance(model, ModelRef) else resolve_model(model)
        self.ref = ref
        given = {
            "processor": processor, "device": device, "dtype": dtype, "min_pixels": min_pixels,
            "max_pixels": max_pixels, "image_limits": image_limits, "batch_size": batch_size,
            "max_batch_tokens": max_batch_tokens, "context_length": context_length,
            "trust_remote_code": trust_remote_code, "merge_adapter": merge_adapter,
            "generation_kwargs": generation_kwargs, "model_kwargs": model_kwargs, "progress": progress,
        }
        self._keep_settings(
            VisionLanguageBackend, given, device=device, dtype=dtype, batch_size=batch_size,
            max_batch_tokens=max_batch_tokens, progress=progress, generation_kwargs=generation_kwargs,
        )
        self.image_limits = image_limits
        self.stats: VisionBackendStats = VisionBackendStats()

        loaded, base_source, self.adapter = load_vision_model(
            ref.name_or_path, dtype=self.dtype, trust_remote_code=trust_remote_code, merge_adapter=merge_adapter,
            model_kwargs=model_kwargs,
        )
        self.model = loaded.to(self.device).eval()
        self.source = ref.name_or_path
        source = processor or ref.tokenizer or processor_source(ref.name_or_path, base_source)
        self.processor = load_vision_processor(
            source, min_pixels=min_pixels, max_pixels=max_pixels, trust_remote_code=trust_remote_code
        )
        self._set_tokenizer(self.processor.tokenizer, context_length)
        self._position_ids = False  # the model derives (multimodal) positions from the attention mask
        image_token = getattr(self.processor, "image_token", None)
        self.image_token_id: int | None = (
            int(self.tokenizer.convert_tokens_to_ids(image_token)) if isinstance(image_token, str) else None
        )

    def _config_context_length(self) -> int | None:
        cfg = self.model.config
        for sub in (getattr(cfg, "text_config", None), cfg):
            value = getattr(sub, "max_position_embeddings", None) if sub is not None else None
            if isinstance(value, int) and value > 0:
                return value
        return None

    # ------------------------------------------------------------------------------------------ prompts
    @staticmethod
    def _template_messages(prompt: ChatPrompt) -> list[dict[str, Any]]:
        out = []
        for m in prompt.messages:
            content = m.get("content")
            if isinstance(content, (list, tuple)):
                parts = [{"type": "image"} if _is_image_part(p) else dict(p) for p in content]
                out.append({**m, "content": parts})
            else:
                out.append(dict(m))
        return out

    def _prompt_images(self, prompt: ChatPrompt, n: int) -> list[Any]:
        images = []
        for m in prompt.messages:
            content = m.get("content")
            if not isinstance(content, (list, tuple)):
                continue
            for part in content:
                if not _is_image_part(part):
                    continue
                value = part.get("image")
                if value is None:
                    raise ConfigError(f"prompt {n}: an image part carries no 'image' value")
                if is_pil_image(value) and value.mode == "RGB":
                    images.append(value)
                else:
                    images.append(load_image(value, limits=self.image_limits, owner=f"prompt {n}"))
        return images

    def render(self, prompt: ChatPrompt) -> str:
        """The exact prompt text (image placeholders before expansion to image tokens, assistant prefix added)."""
        if prompt.raw is not None:
            return prompt.raw + prompt.assistant_prefix
        if not prompt.messages:
            raise ConfigError("a ChatPrompt needs messages or raw text")
        if getattr(self.processor, "chat_template", None) is None:
            raise ConfigError(f"{self.model_id} has no chat template; vision prompts need one")
        text = self.processor.apply_chat_template(
            self._template_messages(prompt), add_generation_prompt=True, tokenize=False
        )
        return str(text) + prompt.assistant_prefix

    def encode(self, prompt: ChatPrompt, n: int = 0) -> _Encoded:
        """Run one prompt through the processor (its images decoded and resized); timing goes to ``stats``."""
        if not isinstance(prompt, ChatPrompt):
            raise ConfigError(f"prompt {n} is a {type(prompt).__name__}, expected a ChatPrompt")
        text = self.render(prompt)
        images = self._prompt_images(prompt, n)
        start = time.perf_counter()
        # truncation=False: a tokenizer saved with a truncation setting must never cut a prompt (and its image
        # tokens) silently; the context length is checked explicitly instead.
        kwargs: dict[str, Any] = {"text": [text], "return_tensors": "pt", "truncation": False}
        if images:
            kwargs["images"] = images
        if not self.special_tokens_for(prompt):  # the special-token policy of the transformers backend
            kwargs["add_special_tokens"] = False
        features = dict(self.processor(**kwargs))
        self.stats.processor_seconds += time.perf_counter() - start
        length = int(features["input_ids"].shape[1])
        if self.image_token_id is not None and images:
            self.stats.image_tokens += int((features["input_ids"] == self.image_token_id).sum())
        self.stats.images += len(images)
        return _Encoded(text, features, length, len(images))

    def _encode_all(self, prompts: Sequence[ChatPrompt], reserve: int) -> list[_Encoded]:
        encoded = []
        for n, p in enumerate(prompts):
            enc = self.encode(p, n)
            limit = self._context_length
            if limit is not None and enc.length + reserve > limit:
                extra = f" plus {reserve} new tokens" if reserve else ""
                raise ConfigError(
                    f"prompt {n} has {enc.length} tokens (image tokens included){extra}, more than the "
                    f"{limit}-token context of {self.model_id}; lower max_pixels or send fewer images per prompt"
                )
            encoded.append(enc)
        return encoded

    def count_tokens(self, prompt: ChatPrompt | str) -> int:
        """Exact token count of a prompt, image tokens included (or of a plain text fragment)."""
        if isinstance(prompt, str):
            return len(self._encode(prompt))
        return self.encode(prompt).length

    def _collate(self, items: Sequence[_Encoded]) -> dict[str, Any]:
        """Left-pad the token sequences and concatenate the image tensors of one batch."""
        torch = self._torch
        width = max(e.length for e in items)
        batch: dict[str, Any] = {}
        # token_type_ids come from BERT-like tokenizers; a decoder that does not name them would reject them
        keys = [k for k in items[0].features if all(k in e.features for e in items)
                and (k != "token_type_ids" or k in self._forward_params)]
        seq_keys = [k for k in keys if getattr(items[0].features[k], "dim", lambda: 0)() == 2
                    and items[0].features[k].shape[1] == items[0].length]
        for key in seq_keys:
            fill = self._pad_id if key == "input_ids" else 0
            rows = []
            for e in items:
                row = e.features[key][0]
                pad = torch.full((width - e.length,), fill, dtype=row.dtype)
                rows.append(torch.cat([pad, row]))
            batch[key] = torch.stack(rows).to(self.device)
        other = {k for e in items for k in e.features} - set(seq_keys) - {"token_type_ids"}
        for key in sorted(other):
            parts = [e.features[key] for e in items if e.images and key in e.features]
            if not parts:
                continue
            value = torch.cat(parts, dim=0).to(self.device)
            batch[key] = value.to(self.dtype) if value.is_floating_point() else value
        return batch

    # ------------------------------------------------------------------------------------------ scoring
    def label_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        if not labels:
            raise ConfigError("label_logprobs needs at least one label")
        if not prompts:
            return []
        torch = self._torch
        with self._lock:
            encoded = self._encode_all(prompts, reserve=0)
            label_ids = self._label_ids([e.text for e in encoded], labels)

            def logprobs_of(idx: list[int]) -> Any:
                batch = self._collate([encoded[i] for i in idx])
                if self._keep_arg is not None:
                    batch[self._keep_arg] = 1
                start = time.perf_counter()
                with torch.inference_mode():
                    out = self.model(**batch, use_cache=False)
                self.stats.model_seconds += time.perf_counter() - start
                self.stats.forward_calls += 1
                self.stats.forward_prompts += len(idx)
                self.stats.prompt_tokens += sum(encoded[i].length for i in idx)
                return torch.log_softmax(out.logits[:, -1, :].float(), dim=-1)

            return self._label_rows(
                [e.length for e in encoded], label_ids, logprobs_of, desc="vision label logprobs"
            )

    def _add_model_seconds(self, seconds: float) -> None:
        self.stats.model_seconds += seconds

    def _generate(self, prompts: Sequence[ChatPrompt], request: GenerationRequest) -> list[Generation]:
        if not prompts:
            return []
        with self._lock:
            encoded = self._encode_all(prompts, reserve=request.max_new_tokens)
            return self._generate_rows(
                [e.length for e in encoded], lambda idx: self._collate([encoded[i] for i in idx]), request,
                desc="vision generate",
            )

    def __repr__(self) -> str:
        extra = f", adapter={self.adapter!r}" if self.adapter else ""
        return f"VisionLanguageBackend({self.model_id!r}{extra}, device={self.device}, dtype={self.dtype})"
