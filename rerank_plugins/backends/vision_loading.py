"""Loading a vision-language model and its processor with transformers (used by :mod:`.vision`).

* :func:`load_vision_model` loads ``AutoModelForImageTextToText`` weights from a hub id or folder. A folder or hub
  repository holding a PEFT LoRA adapter (``adapter_config.json``, e.g. ``lightonai/MonoQwen2-VL-v0.1`` whose base
  is ``Qwen/Qwen2-VL-2B-Instruct``) loads the base model named in that file, applies the adapter with ``peft``
  (extra ``vision``) and, by default, merges it into the base weights.
* :func:`load_vision_processor` loads the processor with ``AutoProcessor``. transformers 5 builds the *video*
  processor of Qwen2-VL-style processors eagerly, and that needs torchvision; when torchvision is missing the
  processor class is assembled from the image processor and tokenizer alone (no video), which is all
  reranking needs. ``min_pixels`` / ``max_pixels`` are applied to Qwen2-VL-style image processors and checked.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import ConfigError, ModelNotFoundError
from ..refs import require_cached_offline

__all__ = ["find_adapter_config", "load_vision_model", "load_vision_processor", "pixel_bounds", "processor_source"]


def _image_only_processor(source: str, image_kwargs: dict[str, Any], trust_remote_code: bool) -> Any:
    """The model's processor class built from its image processor and tokenizer, with no video processor."""
    transformers = require("transformers", "hf")
    from transformers.models.auto.processing_auto import PROCESSOR_MAPPING_NAMES

    config = transformers.AutoConfig.from_pretrained(source, trust_remote_code=trust_remote_code)
    name = PROCESSOR_MAPPING_NAMES.get(config.model_type)
    if name is None or not hasattr(transformers, name):
        raise ConfigError(f"no processor class is known for model type {config.model_type!r} of {source!r}")
    base = getattr(transformers, name)

    class _ImageOnly(base):  # type: ignore[misc, valid-type]
        def check_argument_for_proper_class(self, argument_name: str, argument: Any) -> Any:
            if argument is None:  # the video processor we deliberately leave out
                return None
            return super().check_argument_for_proper_class(argument_name, argument)

    _ImageOnly.__name__ = f"{name}ImageOnly"
    from .hf_loading import load_tokenizer

    tokenizer = load_tokenizer(source, trust_remote_code=trust_remote_code)
    image_processor = transformers.AutoImageProcessor.from_pretrained(
        source, trust_remote_code=trust_remote_code, **image_kwargs
    )
    parts: dict[str, Any] = {}
    for attribute in base.get_attributes():
        if attribute == "tokenizer":
            parts[attribute] = tokenizer
        elif attribute == "image_processor":
            parts[attribute] = image_processor
        else:
            parts[attribute] = None
    return _ImageOnly(**parts, chat_template=getattr(tokenizer, "chat_template", None))


def pixel_bounds(image_processor: Any) -> tuple[int, int] | None:
    """(min_pixels, max_pixels) of a Qwen2-VL-style image processor, or None for fixed-size processors."""
    if not hasattr(image_processor, "merge_size"):
        return None
    size = getattr(image_processor, "size", None)
    try:
        low, high = size["shortest_edge"], size["longest_edge"]  # type: ignore[index]
    except (TypeError, KeyError):
        low, high = getattr(image_processor, "min_pixels", None), getattr(image_processor, "max_pixels", None)
    return (int(low), int(high)) if low is not None and high is not None else None


def load_vision_processor(
    source: str, *, min_pixels: int | None = None, max_pixels: int | None = None, trust_remote_code: bool = False
) -> Any:
    """Load the processor of a vision-language model (see the module docstring), with pixel bounds applied."""
    transformers = require("transformers", "hf", purpose="vision-language models")
    require_cached_offline(source, what="the vision-language processor")
    image_kwargs = {k: v for k, v in (("min_pixels", min_pixels), ("max_pixels", max_pixels)) if v is not None}
    try:
        processor = transformers.AutoProcessor.from_pretrained(
            source, trust_remote_code=trust_remote_code, **image_kwargs
        )
    except ImportError as exc:
        if "torchvision" not in str(exc).lower():
            raise
        processor = _image_only_processor(source, image_kwargs, trust_remote_code)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load the processor of {source!r}: {exc}") from exc
    image_processor = getattr(processor, "image_processor", None)
    if image_processor is None or not hasattr(processor, "tokenizer"):
        raise ConfigError(f"{source!r} has no image processor and tokenizer; is it a vision-language model?")
    if image_kwargs:
        bounds = pixel_bounds(image_processor)
        if bounds is None:
            raise ConfigError(
                f"min_pixels / max_pixels apply to Qwen2-VL-style processors; {type(image_processor).__name__} "
                f"of {source!r} resizes every image to a fixed size"
            )
        if (min_pixels is not None and bounds[0] != min_pixels) or (max_pixels is not None and bounds[1] != max_pixels):
            raise ConfigError(f"{type(image_processor).__name__} did not accept min/max_pixels (size={bounds})")
    return processor


def find_adapter_config(name_or_path: str) -> str | None:
    """Path of the ``adapter_config.json`` of a LoRA adapter folder or hub repository, else None."""
    local = Path(name_or_path)
    if local.is_dir():
        found = local / "adapter_config.json"
        return str(found) if found.is_file() else None
    require("transformers", "hf")
    from transformers.utils import find_adapter_config_file

    try:
        return find_adapter_config_file(name_or_path)
    except OSError:
        return None


def load_vision_model(
    name_or_path: str,
    *,
    dtype: Any,
    trust_remote_code: bool = False,
    merge_adapter: bool = True,
    model_kwargs: dict[str, Any] | None = None,
) -> tuple[Any, str, str | None]:
    """Return ``(model, base_source, adapter)`` on the CPU in ``dtype``: ``base_source`` is where the base
    weights came from, ``adapter`` the LoRA adapter applied on top (None for a full model)."""
    transformers = require("transformers", "hf", purpose="vision-language models")
    extra = dict(model_kwargs or {})
    require_cached_offline(name_or_path, what="the vision-language model")
    adapter_cfg = find_adapter_config(name_or_path)
    source = name_or_path
    if adapter_cfg is not None:
        base = json.loads(Path(adapter_cfg).read_text()).get("base_model_name_or_path")
        if not base:
            raise ModelNotFoundError(f"the LoRA adapter {name_or_path!r} does not name its base model")
        source = str(base)
        require_cached_offline(source, what=f"the base model of the LoRA adapter {name_or_path!r},")
    try:
        model = transformers.AutoModelForImageTextToText.from_pretrained(
            source, dtype=dtype, trust_remote_code=trust_remote_code, **extra
        )
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load the vision-language model {source!r}: {exc}") from exc
    except ValueError as exc:
        if "Unrecognized configuration class" in str(exc):
            raise ConfigError(
                f"{source!r} is not an image-text-to-text model (AutoModelForImageTextToText cannot load it)"
            ) from exc
        raise
    if adapter_cfg is None:
        return model, source, None
    peft = require("peft", "vision", purpose=f"the LoRA adapter {name_or_path!r}")
    try:
        model = peft.PeftModel.from_pretrained(model, name_or_path)
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot apply the LoRA adapter {name_or_path!r}: {exc}") from exc
    if merge_adapter:
        model = model.merge_and_unload()
    return model, source, name_or_path


def processor_source(name_or_path: str, base_source: str) -> str:
    """Where the processor of a model comes from: the model itself, or the base model of an adapter that ships
    no processor files (MonoQwen2-VL ships none)."""
    local = Path(name_or_path)
    if base_source != name_or_path and local.is_dir():
        has_own = any((local / f).is_file() for f in ("preprocessor_config.json", "processor_config.json"))
        return name_or_path if has_own else base_source
    return base_source
