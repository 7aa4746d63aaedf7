"""Tiny random vision-language and CLIP models for fast, offline tests, examples and benchmarks.

No real vision-language weights can be downloaded in this project's offline environment, so these builders
save models with **random weights** built from the real architectures' configs (Qwen2-VL, Qwen2.5-VL, CLIP,
SigLIP) to a folder, together with an offline processor: the real image processor class of each family and
the bundled MiniLM WordPiece tokenizer extended with the special tokens the family needs (``<|im_start|>``,
``<|vision_start|>``, ``<|image_pad|>``, ...) and a Qwen2-VL-style chat template. Tests then load the folder
exactly as users load hub models. The scores these models give are meaningless; they prove the mechanics
(image tokens, batching, padding, logits at the answer position, generation), not quality.

A tiny LoRA adapter on a tiny Qwen2-VL (:func:`build_tiny_lora_adapter`, needs ``peft``) reproduces the
layout of ``lightonai/MonoQwen2-VL-v0.1``: an adapter folder whose ``adapter_config.json`` names its base model.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .._optional import require
from .tiny_models import minilm_folder

__all__ = [
    "QWEN2_VL_CHAT_TEMPLATE",
    "QWEN_SPECIAL_TOKENS",
    "build_tiny_clip",
    "build_tiny_lora_adapter",
    "build_tiny_qwen2_vl",
    "build_tiny_siglip",
    "qwen_tokenizer",
    "tiny_multimodal_rerankers",
]

#: Special tokens of the Qwen2-VL family, in the order they are added to the tiny tokenizer.
QWEN_SPECIAL_TOKENS = (
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
)

#: Chat template with the structure of Qwen2-VL's: a default system turn, ``<|im_start|>role`` turns, and
#: ``<|vision_start|><|image_pad|><|vision_end|>`` where a message part is an image.
QWEN2_VL_CHAT_TEMPLATE = (
    "{% for message in messages %}"
    "{% if loop.first and message['role'] != 'system' %}"
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "{% endif %}"
    "<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for part in message['content'] %}"
    "{% if part['type'] == 'image' or 'image' in part %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif 'text' in part %}{{ part['text'] }}{% endif %}"
    "{% endfor %}{% endif %}"
    "<|im_end|>\n"
    "{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

_TEXT = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 32768,
    # mrope sections sum to head_dim / 2 = 4
    "rope_parameters": {"rope_type": "default", "rope_theta": 1_000_000.0, "mrope_section": [1, 1, 2]},
    "initializer_range": 0.2,
}


def qwen_tokenizer() -> Any:
    """The MiniLM WordPiece tokenizer with the Qwen2-VL special tokens, left padding and the chat template."""
    transformers = require("transformers", "hf")
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_folder()))
    tok.add_special_tokens({"additional_special_tokens": list(QWEN_SPECIAL_TOKENS)})
    # MiniLM's tokenizer.json truncates at 128 tokens (a sentence-transformers setting); a chat LM must not.
    tok.backend_tokenizer.no_truncation()
    tok.init_kwargs.pop("max_length", None)
    tok.model_max_length = 32768
    tok.pad_token = "<|endoftext|>"
    tok.eos_token = "<|im_end|>"
    tok.padding_side = "left"
    tok.chat_template = QWEN2_VL_CHAT_TEMPLATE
    return tok


def build_tiny_qwen2_vl(
    path: str | Path,
    *,
    variant: str = "qwen2_vl",
    min_pixels: int = 56 * 56,
    max_pixels: int = 28 * 28 * 1280,
    seed: int = 0,
) -> Path:
    """Save a random Qwen2-VL (``variant="qwen2_vl"``) or Qwen2.5-VL (``"qwen2_5_vl"``) with hidden size 32 and
    two layers in each tower, plus its image processor (``min_pixels`` / ``max_pixels`` as the real processors
    take them) and the tiny Qwen tokenizer, to ``path``. Returns ``path``."""
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    from transformers.models.qwen2_vl.image_processing_pil_qwen2_vl import Qwen2VLImageProcessorPil

    tok = qwen_tokenizer()
    ids = {t: tok.convert_tokens_to_ids(t) for t in QWEN_SPECIAL_TOKENS}
    text = dict(_TEXT, vocab_size=len(tok), bos_token_id=None, eos_token_id=ids["<|im_end|>"],
                pad_token_id=ids["<|endoftext|>"])
    common = {
        "image_token_id": ids["<|image_pad|>"],
        "video_token_id": ids["<|video_pad|>"],
        "vision_start_token_id": ids["<|vision_start|>"],
        "vision_end_token_id": ids["<|vision_end|>"],
    }
    if variant == "qwen2_vl":
        vision: dict[str, Any] = {"depth": 2, "embed_dim": 32, "hidden_size": 32, "num_heads": 4, "mlp_ratio": 2,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2}
        config = transformers.Qwen2VLConfig(text_config=text, vision_config=vision, **common)
        model_cls = transformers.Qwen2VLForConditionalGeneration
    elif variant == "qwen2_5_vl":
        vision = {"depth": 2, "hidden_size": 32, "intermediate_size": 64, "num_heads": 4, "out_hidden_size": 32,
                  "patch_size": 14, "spatial_merge_size": 2, "temporal_patch_size": 2, "window_size": 112,
                  "fullatt_block_indexes": [1]}
        config = transformers.Qwen2_5_VLConfig(text_config=text, vision_config=vision, **common)
        model_cls = transformers.Qwen2_5_VLForConditionalGeneration
    else:
        raise ValueError(f"variant must be 'qwen2_vl' or 'qwen2_5_vl', got {variant!r}")
    torch.manual_seed(seed)
    model = model_cls(config).eval()
    model.generation_config.eos_token_id = ids["<|im_end|>"]
    model.generation_config.pad_token_id = ids["<|endoftext|>"]
    model.generation_config.bos_token_id = None
    path = Path(path)
    model.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    image_processor = Qwen2VLImageProcessorPil(min_pixels=min_pixels, max_pixels=max_pixels)
    image_processor.save_pretrained(str(path))
    # Record which processor class assembles these parts, as hub repositories do.
    cfg = json.loads((path / "preprocessor_config.json").read_text())
    cfg["processor_class"] = "Qwen2VLProcessor" if variant == "qwen2_vl" else "Qwen2_5_VLProcessor"
    (path / "preprocessor_config.json").write_text(json.dumps(cfg, indent=2))
    return path


def build_tiny_lora_adapter(path: str | Path, base: str | Path, *, rank: int = 4, seed: int = 1) -> Path:
    """Save a LoRA adapter (random, non-zero B matrices so it changes the logits) for the tiny Qwen2-VL in
    ``base`` to ``path``, laid out as ``lightonai/MonoQwen2-VL-v0.1`` is (``adapter_config.json`` naming the
    base model, no processor files). Needs ``peft``."""
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    peft = require("peft", "vision", purpose="LoRA adapters")
    model = transformers.AutoModelForImageTextToText.from_pretrained(str(base))
    lora = peft.LoraConfig(r=rank, lora_alpha=2 * rank, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(seed)
    wrapped = peft.get_peft_model(model, lora)
    path = Path(path)
    wrapped.save_pretrained(str(path))
    cfg_path = path / "adapter_config.json"
    cfg = json.loads(cfg_path.read_text())
    cfg["base_model_name_or_path"] = str(base)
    cfg_path.write_text(json.dumps(cfg, indent=2))
    return path


def _clip_tokenizer() -> Any:
    transformers = require("transformers", "hf")
    return transformers.AutoTokenizer.from_pretrained(str(minilm_folder()))


def _save_dual_encoder(
    path: str | Path, model_class: Any, config_class: Any, processor: Any, *, max_positions: int, image_size: int,
    patch_size: int, seed: int, **config: Any,
) -> Path:
    """Save a random dual encoder of ``model_class`` (text and vision towers of hidden 32, 2 layers, 4 heads; the
    text tower's vocabulary and special ids from ``processor.tokenizer``) and its ``processor`` to ``path``."""
    torch = require("torch", "hf")
    tok = processor.tokenizer
    tower = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4}
    text = {**tower, "vocab_size": len(tok), "max_position_embeddings": max_positions,
            "eos_token_id": tok.sep_token_id, "bos_token_id": tok.cls_token_id, "pad_token_id": tok.pad_token_id}
    vision = {**tower, "image_size": image_size, "patch_size": patch_size}
    torch.manual_seed(seed)
    model = model_class(config_class(text_config=text, vision_config=vision, **config)).eval()
    path = Path(path)
    model.save_pretrained(str(path))
    processor.save_pretrained(str(path))
    return path


def build_tiny_clip(path: str | Path, *, image_size: int = 224, patch_size: int = 32, seed: int = 0) -> Path:
    """Save a random CLIP dual encoder (hidden 32, 2 layers per tower, 16-d projection) with a CLIP image
    processor resizing to ``image_size`` (224 as ViT-B/32, 336 as ViT-L/14-336) to ``path``.

    The folder is a plain transformers folder; sentence-transformers loads it as a CLIP model (text and image
    modalities) with ``SentenceTransformer(path)``.
    """
    transformers = require("transformers", "hf")
    from transformers.models.clip.image_processing_pil_clip import CLIPImageProcessorPil

    processor = transformers.CLIPProcessor(
        image_processor=CLIPImageProcessorPil(
            size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
        ),
        tokenizer=_clip_tokenizer(),
    )
    return _save_dual_encoder(
        path, transformers.CLIPModel, transformers.CLIPConfig, processor, max_positions=512,
        image_size=image_size, patch_size=patch_size, seed=seed, projection_dim=16,
    )


def build_tiny_siglip(path: str | Path, *, image_size: int = 224, patch_size: int = 16, seed: int = 0) -> Path:
    """Save a random SigLIP dual encoder (hidden 32, 2 layers per tower) with its image processor to ``path``."""
    transformers = require("transformers", "hf")
    from transformers.models.siglip.image_processing_pil_siglip import SiglipImageProcessorPil

    processor = transformers.SiglipProcessor(
        image_processor=SiglipImageProcessorPil(size={"height": image_size, "width": image_size}),
        tokenizer=_clip_tokenizer(),
    )
    return _save_dual_encoder(
        path, transformers.SiglipModel, transformers.SiglipConfig, processor, max_positions=64,
        image_size=image_size, patch_size=patch_size, seed=seed,
    )


def tiny_multimodal_rerankers(folder: str | Path, *, max_pixels: int = 28 * 28 * 64) -> dict[str, Any]:
    """The three multimodal strategies on tiny random models saved under ``folder``: ``"vision-yes-no"`` and
    ``"vision-reasoning"`` (``fallback="keep"``: the random model never closes its reasoning) sharing one tiny
    Qwen2-VL backend, and ``"clip"`` on a tiny CLIP. For adapter tests, examples and benchmarks of mechanics."""
    from ..backends.vision import VisionLanguageBackend
    from ..rankers.clip import ClipReranker
    from ..rankers.vision_reasoning import VisionReasoningReranker
    from ..rankers.vision_yes_no import VisionYesNoReranker

    folder = Path(folder)
    backend = VisionLanguageBackend(str(build_tiny_qwen2_vl(folder / "qwen2-vl", max_pixels=max_pixels)), device="cpu")
    return {
        "vision-yes-no": VisionYesNoReranker(backend),
        "vision-reasoning": VisionReasoningReranker(backend, fallback="keep", max_new_tokens=4),
        "clip": ClipReranker(str(build_tiny_clip(folder / "clip")), device="cpu"),
    }
