"""ColBERT-style late-interaction reranking (MaxSim) of models in PyLate's or Stanford ColBERT's folder format.

Each query and each document is encoded once into per-token vectors; a document's score is the ColBERT MaxSim
``sum over query tokens of max over document tokens of q . d``. Encoding follows PyLate 1.6.0
(``pylate/models/colbert.py``: ``ColBERT.tokenize`` / ``ColBERT.encode``), which defines the format:

* texts are stripped (and lower-cased when the Transformer module's ``do_lower_case`` is set), cut to
  ``query_length - 1`` / ``document_length - 1`` tokens, and the marker token (``[Q] `` / ``[D] `` for PyLate
  models, ``[unused0]`` / ``[unused1]`` for Stanford ones) is inserted after the first token;
* query expansion: queries are padded to ``query_length`` with the ``[MASK]`` token (the EOS token for models
  without one); the padding is not attended to unless ``attend_to_expansion_tokens``, but every query position is
  scored;
* the backbone's last hidden states go through the ``Dense`` projection(s) (``1_Dense``...; Stanford models: the
  ``linear.weight`` beside the backbone) and are L2-normalised per token;
* document tokens in the skiplist (``string.punctuation`` by default, mapped with ``convert_tokens_to_ids``) and
  padding are dropped.

Scores: PyLate's ``rank.rerank`` pads the documents of one query with zero vectors and takes the max over the
padded matrix, so a document shorter than the longest candidate gets ``max(0, best similarity)`` per query token
and its score depends on the other candidates. ``padding_score="exclude"`` (the default) computes the exact
MaxSim of each document (as Stanford ColBERT's ``colbert_score`` does, padding masked out); ``"zero"``
reproduces PyLate's ``rank.rerank`` exactly. The two agree whenever every best similarity is positive (usual for
trained models) and always for the longest document.

Long documents (the length policy, :mod:`rerank_plugins.engine.length_policy`): MaxSim has its own answer to a
long document, and it is to cut it. ``long_documents="truncate"`` (the default) cuts each document at
``document_length`` tokens exactly as PyLate does (``truncation=True`` at ``document_length - 1``, then the
marker), and one :class:`~rerank_plugins.engine.length_policy.TruncationWarning` per call names how many were cut
(PyLate cuts silently); ``truncation_side="left"`` keeps the end instead and ``max_document_tokens`` lowers the
budget (the text's own tokens), both cut at a token boundary measured on the real input. ``long_documents="chunk"``
splits an overlong document into token windows that each fit ``document_length`` (``chunk_overlap`` tokens
shared, at most ``max_chunks``), encodes every window as a document (identical windows once, in the same batches
and document cache as every other text), takes the MaxSim of the query against each window and aggregates the
windows' MaxSims by ``chunk_aggregate`` (``"max"``, MaxP, by default; ``"first"``, ``"mean"``), with the best
window's span in ``details["best_chunk"]``. That is MaxP over windows, not one MaxSim over the union of all the
windows' tokens: the union would let each query token pick its best match from a different part of a long page,
which rewards length (a longer page offers more tokens to match) and has no span to report. A document that fits
scores exactly as in truncate mode (with ``padding_score="zero"`` the zero padding spans the windows of the
query's candidates, as PyLate pads a list).

Speed: distinct texts are encoded once per call, length-sorted in token-budgeted batches; with
``cache_documents=N`` the token embeddings of up to N documents are kept across calls (LRU), so reranking the
same corpus for many queries encodes each document once.
"""

from __future__ import annotations

import json
import os
import string
from collections import OrderedDict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from .._optional import require
from ..backends.device import resolve_device, resolve_dtype
from ..backends.encoders import load_encoder_backbone, local_snapshot
from ..base import BatchedReranker, Scores
from ..engine.batching import run_batched
from ..engine.length_policy import (
    DocumentPlan,
    LengthPolicy,
    call_stats,
    document_score,
    policy_from_options,
    warn_truncated,
)
from ..errors import BackendError, ConfigError, InvalidInputError, ModelNotFoundError
from ..refs import ModelRef, resolve_model
from ..types import Candidate, Query
from ..validation import check_int
from ._text_windows import distinct_windows, plan_texts, text_budget

__all__ = ["PADDING_SCORES", "ColBERTReranker"]

PADDING_SCORES = ("exclude", "zero")
#: padded tokens per encoder batch on CPU when ``max_tokens`` is not given (as the cross-encoder)
CPU_TOKEN_BUDGET = 4096

#: backbones whose AutoModel has a pooler head ColBERT never uses (PyLate loads them with add_pooling_layer=False)
_POOLER_TYPES = frozenset({"bert", "roberta", "xlm-roberta"})

_ACTIVATIONS = {
    "torch.nn.modules.linear.Identity": "identity",
    "torch.nn.modules.activation.Tanh": "tanh",
    "torch.nn.modules.activation.ReLU": "relu",
    "torch.nn.modules.activation.Sigmoid": "sigmoid",
    "torch.nn.modules.activation.GELU": "gelu",
}


def _read_json(path: Path) -> dict[str, Any]:
    try:
        value = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot read {path}: {exc}") from exc
    return value if isinstance(value, dict) else {}


def _load_state(folder: Path) -> dict[str, Any]:
    torch = require("torch", "hf")
    st_file = folder / "model.safetensors"
    if st_file.is_file():
        from safetensors.torch import load_file

        return load_file(str(st_file))  # type: ignore[no-any-return]
    bin_file = folder / "pytorch_model.bin"
    if bin_file.is_file():
        return torch.load(str(bin_file), map_location="cpu", weights_only=True)  # type: ignore[no-any-return]
    raise ModelNotFoundError(f"no model.safetensors or pytorch_model.bin in {folder}")


class _Projection:
    """One PyLate ``Dense`` layer: ``activation(linear(x)) (+ residual(x) or x when use_residual)``."""

    def __init__(self, config: dict[str, Any], state: dict[str, Any], torch: Any) -> None:
        name = str(config.get("activation_function", "torch.nn.modules.linear.Identity"))
        if name not in _ACTIVATIONS:
            raise ConfigError(f"unsupported Dense activation {name!r}; supported: {sorted(_ACTIVATIONS)}")
        self.activation = _ACTIVATIONS[name]
        self.weight = state["linear.weight"]
        self.bias = state.get("linear.bias") if config.get("bias", False) else None
        self.use_residual = bool(config.get("use_residual", False))
        self.residual = state.get("residual.weight")
        self._torch = torch

    def to(self, device: Any, dtype: Any) -> None:
        self.weight = self.weight.to(device=device, dtype=dtype)
        if self.bias is not None:
            self.bias = self.bias.to(device=device, dtype=dtype)
        if self.residual is not None:
            self.residual = self.residual.to(device=device, dtype=dtype)

    def __call__(self, x: Any) -> Any:
        f = self._torch.nn.functional
        y = f.linear(x, self.weight, self.bias)
        if self.activation == "tanh":
            y = self._torch.tanh(y)
        elif self.activation == "relu":
            y = f.relu(y)
        elif self.activation == "sigmoid":
            y = self._torch.sigmoid(y)
        elif self.activation == "gelu":
            y = f.gelu(y)
        if self.use_residual:
            y = y + (f.linear(x, self.residual) if self.residual is not None else x)
        return y


class ColBERTReranker(BatchedReranker):
    """Rerank by ColBERT MaxSim over per-token embeddings (PyLate / Stanford ColBERT model folders).

    Args:
        model: a local folder or a hub id of a ColBERT model in PyLate's format (``modules.json`` with a Dense
            projection and ``config_sentence_transformers.json``) or Stanford's (``HF_ColBERT`` architecture).
        query_prefix / document_prefix: marker tokens (default: the model's own; ``""`` for none).
        query_length / document_length: tokens per query (with expansion) / most tokens per document, markers
            and special tokens included (default: the model's own, else PyLate's 32 / 180).
        attend_to_expansion_tokens: let the query attend to its ``[MASK]`` expansion (default: the model's own).
        do_query_expansion: pad queries to ``query_length`` with the mask token (default: the model's own, else on).
        skiplist_words: document tokens to drop (default: the model's own, else ``string.punctuation``).
        padding_score: ``"exclude"`` (exact MaxSim) or ``"zero"`` (PyLate ``rank.rerank``); see the module docstring.
        batch_size / max_tokens: texts / padded tokens per encoder forward pass (``max_tokens`` ``None`` is 4096
            on CPU, unbounded on GPU).
        cache_documents: keep the token embeddings of up to this many documents across calls (``None``: off).
        device / dtype: as :func:`~rerank_plugins.backends.device.resolve_device` / ``resolve_dtype``.
        trust_remote_code: allow custom backbone code (jina-colbert-v2 needs it).
        long_documents / max_chunks / chunk_overlap / chunk_aggregate: the length policy (module docstring):
            ``"truncate"`` (default, PyLate's cut, warned once per call) or ``"chunk"`` (MaxSim per token window,
            aggregated ``"max"``, ``"first"`` or ``"mean"``).
        max_document_tokens: most tokens of a document's own text (``None``: what ``document_length`` leaves).
        truncation_side: ``"right"`` (keep the beginning, PyLate's cut; default) or ``"left"`` (keep the end).
    """

    name = "colbert"

    def __init__(
        self,
        model: str | ModelRef | os.PathLike[str],
        *,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        query_length: int | None = None,
        document_length: int | None = None,
        attend_to_expansion_tokens: bool | None = None,
        do_query_expansion: bool | None = None,
        skiplist_words: Sequence[str] | None = None,
        padding_score: str = "exclude",
        batch_size: int = 32,
        max_tokens: int | None = None,
        cache_documents: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        trust_remote_code: bool = False,
        long_documents: str | None = None,
        max_chunks: int | None = None,
        chunk_overlap: int | None = None,
        chunk_aggregate: str | None = None,
        max_document_tokens: int | None = None,
        truncation_side: str | None = None,
    ) -> None:
        self.policy = policy_from_options(
            long_documents=long_documents, max_chunks=max_chunks, chunk_overlap=chunk_overlap,
            chunk_aggregate=chunk_aggregate, max_document_tokens=max_document_tokens, truncation_side=truncation_side,
        )
        check_int("query_length", query_length, 1, optional=True)
        check_int("document_length", document_length, 1, optional=True)
        check_int("batch_size", batch_size, 1)
        check_int("max_tokens", max_tokens, 1, optional=True)
        check_int("cache_documents", cache_documents, 1, optional=True)
        for label, value in (("query_prefix", query_prefix), ("document_prefix", document_prefix)):
            if value is not None and not isinstance(value, str):
                raise ConfigError(f"{label} must be a str or None, got {type(value).__name__}")
        for label, flag in (("attend_to_expansion_tokens", attend_to_expansion_tokens),
                            ("do_query_expansion", do_query_expansion)):
            if flag is not None and not isinstance(flag, bool):
                raise ConfigError(f"{label} must be a bool or None, got {flag!r}")
        if skiplist_words is not None and (
            isinstance(skiplist_words, str) or not all(isinstance(w, str) for w in skiplist_words)
        ):
            raise ConfigError("skiplist_words must be a list of str")
        if padding_score not in PADDING_SCORES:
            raise ConfigError(f"padding_score must be one of {PADDING_SCORES}, got {padding_score!r}")
        self._torch = torch = require("torch", "hf", purpose="ColBERT reranking")
        require("transformers", "hf", purpose="ColBERT reranking")
        self.model_ref = resolve_model(model)
        if self.model_ref.gguf_file is not None:
            raise ConfigError(f"{self.model_ref} is a GGUF file; ColBERT reranking needs a ColBERT model folder")
        self.model_id = self.model_ref.bundled_name or self.model_ref.name_or_path
        folder = local_snapshot(self.model_ref, what="the ColBERT model")
        settings, backbone_dir, projections = self._read_format(folder, torch)
        overrides: dict[str, Any] = {
            "query_prefix": query_prefix, "document_prefix": document_prefix, "query_length": query_length,
            "document_length": document_length, "attend_to_expansion_tokens": attend_to_expansion_tokens,
            "do_query_expansion": do_query_expansion,
            "skiplist_words": list(skiplist_words) if skiplist_words is not None else None,
        }
        for key, value in overrides.items():
            if value is not None:
                settings[key] = value
        defaults: dict[str, Any] = {
            "query_prefix": "[Q] ", "document_prefix": "[D] ", "query_length": 32, "document_length": 180,
            "attend_to_expansion_tokens": False, "do_query_expansion": True,
            "skiplist_words": list(string.punctuation),
        }
        for key, default in defaults.items():
            if settings.get(key) is None:
                settings[key] = default
        self.query_prefix: str = settings["query_prefix"]
        self.document_prefix: str = settings["document_prefix"]
        self.query_length: int = int(settings["query_length"])
        self.document_length: int = int(settings["document_length"])
        self.do_query_expansion: bool = bool(settings["do_query_expansion"])
        # PyLate: without query expansion there are no expansion tokens to attend to.
        self.attend_to_expansion_tokens = bool(settings["attend_to_expansion_tokens"]) and self.do_query_expansion
        self.skiplist_words: list[str] = list(settings["skiplist_words"])
        self.do_lower_case = bool(settings.get("do_lower_case", False))
        for label, length in (("query_length", self.query_length), ("document_length", self.document_length)):
            if length < 3:
                raise ConfigError(f"{label}={length} leaves no room for text beside the special and marker tokens")

        # A Stanford checkpoint keeps linear.weight beside the backbone (read above): no "unexpected key" table.
        tok, backbone = load_encoder_backbone(
            backbone_dir, trust_remote_code=trust_remote_code, no_pooler_types=_POOLER_TYPES,
            report=backbone_dir != folder or (folder / "modules.json").is_file(),
        )
        self.tokenizer = tok
        policy = self.policy
        if (policy.chunking or policy.truncation_side == "left" or policy.max_document_tokens is not None) and \
                not getattr(tok, "is_fast", False):
            raise ConfigError(
                "long_documents='chunk', truncation_side='left' and max_document_tokens need a fast (Rust) "
                f"tokenizer; {type(tok).__name__} is not one"
            )
        self.query_prefix_id = self._marker_id(self.query_prefix, "query_prefix")
        self.document_prefix_id = self._marker_id(self.document_prefix, "document_prefix")
        pad = tok.mask_token_id if tok.mask_token_id is not None else tok.eos_token_id
        if pad is None:
            pad = tok.pad_token_id
        if pad is None:
            raise ConfigError(f"{self.model_id}: the tokenizer has no mask, EOS or pad token for query expansion")
        self.pad_id = int(pad)
        self.skiplist_ids = {int(tok.convert_tokens_to_ids(w)) for w in self.skiplist_words}
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = backbone.to(device=self.device, dtype=self.dtype).eval()
        for proj in projections:
            proj.to(self.device, self.dtype)
        self.projections = projections
        self._with_types = "token_type_ids" in getattr(tok, "model_input_names", ())
        self.padding_score = padding_score
        self.batch_size = batch_size
        self.max_tokens = max_tokens if max_tokens is not None else (
            CPU_TOKEN_BUDGET if self.device.type == "cpu" else None
        )
        self.cache_documents = cache_documents
        self._doc_cache: OrderedDict[str, Any] = OrderedDict()
        self.cache_hits = 0
        self._closed = False
        short = os.path.basename(self.model_id.rstrip("/\\")) or self.model_id
        self.name = f"colbert:{short}"
        #: statistics of the last scoring call
        self.last_stats: dict[str, Any] = {}

    def with_length_policy(self, policy: LengthPolicy) -> ColBERTReranker:
        """A copy sharing this reranker's model, tokenizer and document cache that follows ``policy``: how the
        service honours a per-request ``long_document_strategy`` / ``max_chunks_per_doc`` without loading the model
        twice. This reranker itself when ``policy`` is its own."""
        if policy == self.policy:
            return self
        needs_offsets = policy.chunking or policy.truncation_side == "left" or policy.max_document_tokens is not None
        if needs_offsets and not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(f"{policy.long_documents!r} with these options needs a fast (Rust) tokenizer; "
                              f"{type(self.tokenizer).__name__} is not one")
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.policy = policy
        clone.last_stats = {}
        return clone

    # ------------------------------------------------------------------ format
    @staticmethod
    def _read_format(folder: Path, torch: Any) -> tuple[dict[str, Any], Path, list[_Projection]]:
        modules_file = folder / "modules.json"
        config_file = folder / "config.json"
        if modules_file.is_file():
            try:
                modules = json.loads(modules_file.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise ModelNotFoundError(f"cannot read {modules_file}: {exc}") from exc
            transformer = [m for m in modules if str(m.get("type", "")).endswith("Transformer")]
            dense = [m for m in modules if str(m.get("type", "")).split(".")[-1] == "Dense"]
            if not transformer or not dense:
                raise ConfigError(
                    f"{folder} is a sentence-transformers folder without a Transformer and a Dense projection: not a "
                    "PyLate ColBERT model (for a single-vector model use kind='embedding')"
                )
            backbone_dir = folder / transformer[0].get("path", "")
            settings = _read_json(folder / "config_sentence_transformers.json") if (
                folder / "config_sentence_transformers.json").is_file() else {}
            kept = {k: settings.get(k) for k in ("query_prefix", "document_prefix", "query_length", "document_length",
                                                  "attend_to_expansion_tokens", "skiplist_words",
                                                  "do_query_expansion")}
            sbert = backbone_dir / "sentence_bert_config.json"
            if sbert.is_file():
                kept["do_lower_case"] = bool(_read_json(sbert).get("do_lower_case", False))
            projections = []
            for module in dense:
                mdir = folder / module.get("path", "")
                projections.append(_Projection(_read_json(mdir / "config.json"), _load_state(mdir), torch))
            return kept, backbone_dir, projections
        if config_file.is_file() and (_read_json(config_file).get("architectures") or [None])[0] == "HF_ColBERT":
            state = _load_state(folder)
            if "linear.weight" not in state:
                raise ConfigError(f"{folder} is an HF_ColBERT checkpoint without linear.weight")
            weight = state["linear.weight"]
            meta = _read_json(folder / "artifact.metadata") if (folder / "artifact.metadata").is_file() else {}
            kept = {
                "query_prefix": meta.get("query_token_id", "[unused0]"),
                "document_prefix": meta.get("doc_token_id", "[unused1]"),
                "query_length": meta.get("query_maxlen"),
                "document_length": meta.get("doc_maxlen"),
                "attend_to_expansion_tokens": meta.get("attend_to_mask_tokens"),
            }
            proj = _Projection({"bias": False}, {"linear.weight": weight}, torch)
            return kept, folder, [proj]
        raise ConfigError(
            f"{folder} is not a ColBERT model: expected PyLate's modules.json with a Dense projection or a Stanford "
            "HF_ColBERT checkpoint"
        )

    def _marker_id(self, marker: str, label: str) -> int | None:
        if marker == "":
            return None
        token_id = self.tokenizer.convert_tokens_to_ids(marker)
        if token_id is None or (token_id == self.tokenizer.unk_token_id and marker != self.tokenizer.unk_token):
            raise ConfigError(
                f"{label} {marker!r} is not a token of {self.model_id}'s tokenizer (PyLate would add it with an "
                "untrained embedding); pass the model's own marker"
            )
        return int(token_id)

    # ------------------------------------------------------------------ encoding
    def _clean_text(self, text: str) -> str:
        text = text.strip()
        return text.lower() if self.do_lower_case else text

    def tokenize(self, texts: Sequence[str], *, is_query: bool) -> list[tuple[list[int], list[int]]]:
        """Token ids and attention mask of each text, exactly as PyLate's ``ColBERT.tokenize`` builds them."""
        length = self.query_length if is_query else self.document_length
        prefix = self.query_prefix_id if is_query else self.document_prefix_id
        limit = length - 1 if prefix is not None else length
        enc = self.tokenizer([self._clean_text(t) for t in texts], truncation=True, max_length=limit, verbose=False)
        rows = []
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        for ids in enc["input_ids"]:
            ids = list(ids)
            mask = [1] * len(ids)
            if is_query and self.do_query_expansion and len(ids) < limit:
                fill = limit - len(ids)
                ids = [self.pad_id] * fill + ids if left else ids + [self.pad_id] * fill
                mask = [0] * fill + mask if left else mask + [0] * fill
            if prefix is not None:
                ids = [*ids[:1], prefix, *ids[1:]]
                mask = [*mask[:1], 1, *mask[1:]]
            if is_query and self.attend_to_expansion_tokens:
                mask = [1] * len(mask)
            rows.append((ids, mask))
        return rows

    def _forward(self, rows: list[tuple[list[int], list[int]]], is_query: bool) -> list[Any]:
        if self._closed:
            raise BackendError(f"{self.name} is closed")
        torch = self._torch
        width = max(len(ids) for ids, _ in rows)
        ids_t = torch.full((len(rows), width), self.pad_id, dtype=torch.long)
        mask_t = torch.zeros((len(rows), width), dtype=torch.long)
        for k, (ids, mask) in enumerate(rows):
            ids_t[k, : len(ids)] = torch.tensor(ids, dtype=torch.long)
            mask_t[k, : len(mask)] = torch.tensor(mask, dtype=torch.long)
        feed = {"input_ids": ids_t.to(self.device), "attention_mask": mask_t.to(self.device)}
        if self._with_types:
            feed["token_type_ids"] = torch.zeros_like(feed["input_ids"])
        with torch.inference_mode():
            hidden = self.model(**feed).last_hidden_state
            for proj in self.projections:
                hidden = proj(hidden)
            hidden = hidden.float()
            out = []
            for k, (ids, mask) in enumerate(rows):
                emb = hidden[k, : len(ids)]
                if is_query:
                    keep = None if self.do_query_expansion else torch.tensor(mask, dtype=torch.bool)
                else:
                    keep = torch.tensor([m == 1 and t not in self.skiplist_ids for t, m in zip(ids, mask)],
                                        dtype=torch.bool)
                if keep is not None:
                    emb = emb[keep.to(emb.device)]
                out.append(torch.nn.functional.normalize(emb, p=2, dim=1).cpu())
        return out

    def _encode(self, texts: Sequence[str], is_query: bool) -> list[Any]:
        rows = self.tokenize(texts, is_query=is_query)
        return run_batched(
            [len(ids) for ids, _ in rows],
            lambda idx: self._forward([rows[i] for i in idx], is_query),
            max_batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            desc=self.name,
        )

    def encode_queries(self, texts: Sequence[str]) -> list[Any]:
        """Per-token query embeddings (float32 tensors of shape ``(query_length, dim)`` with expansion)."""
        return self._encode(list(texts), True)

    def encode_documents(self, texts: Sequence[str]) -> list[Any]:
        """Per-token document embeddings (skiplist and padding dropped), using the document cache if enabled."""
        texts = list(texts)
        out: list[Any] = [None] * len(texts)
        todo: dict[str, list[int]] = {}
        for i, t in enumerate(texts):
            hit = self._doc_cache.get(t) if self.cache_documents is not None else None
            if hit is not None:
                self._doc_cache.move_to_end(t)
                self.cache_hits += 1
                out[i] = hit
            else:
                todo.setdefault(t, []).append(i)
        if todo:
            distinct = list(todo)
            for text, emb in zip(distinct, self._encode(distinct, False)):
                for i in todo[text]:
                    out[i] = emb
                if self.cache_documents is not None:
                    self._doc_cache[text] = emb
                    while len(self._doc_cache) > self.cache_documents:
                        self._doc_cache.popitem(last=False)
        return out

    # ------------------------------------------------------------------ scoring
    def maxsim(self, query: Any, documents: Sequence[Any]) -> list[float]:
        """MaxSim of one query's token embeddings against each document's (``padding_score`` applies)."""
        torch = self._torch
        if not documents:
            return []
        padded = torch.nn.utils.rnn.pad_sequence(list(documents), batch_first=True, padding_value=0.0)
        sims = torch.einsum("qh,nth->nqt", query, padded)
        if self.padding_score == "exclude":
            lengths = torch.tensor([d.shape[0] for d in documents])
            pad = torch.arange(padded.shape[1])[None, :] >= lengths[:, None]
            sims = sims.masked_fill(pad[:, None, :], float("-inf"))
        best = sims.max(dim=-1).values
        # A document with no token left (only punctuation) scores 0 per query token, as a zero pad row would.
        best = torch.where(torch.isinf(best), torch.zeros_like(best), best)
        return [float(v) for v in best.sum(dim=-1)]

    def plan_documents(self, texts: Sequence[str]) -> list[DocumentPlan]:
        """Each document's plan under the length policy: its kept span, or its windows in chunk mode (character
        spans of the original text, each fitting ``document_length`` with the marker and special tokens)."""
        policy = self.policy
        limit = self.document_length - 1 if self.document_prefix_id is not None else self.document_length
        budget = text_budget(self.tokenizer, limit, policy.max_document_tokens, self._clean_text)
        search = policy.truncation_side == "left" or policy.max_document_tokens is not None
        return plan_texts(self.tokenizer, texts, policy, budget, render=self._clean_text, who=self.name,
                          search=search)

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        texts: list[list[str]] = []
        for cands in lists:
            row = []
            for c in cands:
                if c.text is None:
                    raise InvalidInputError(f"{self.name} scores text; candidate {c.id!r} has an image but no text")
                row.append(c.text)
            texts.append(row)
        hits_before = self.cache_hits
        distinct_q = list(dict.fromkeys(q.text for q in queries))
        q_emb = dict(zip(distinct_q, self.encode_queries(distinct_q)))
        distinct_d = list(dict.fromkeys(t for row in texts for t in row))
        plans = self.plan_documents(distinct_d)
        if self.policy.chunking:
            units, unit_index = distinct_windows(distinct_d, plans)
        else:
            # truncate: the whole text when PyLate's own cut applies (tokenize cuts it), else the kept span
            units = [d[p.spans[0][0]:p.spans[0][1]] for d, p in zip(distinct_d, plans)]
            unit_index = [[i] for i in range(len(distinct_d))]
        u_emb = self.encode_documents(units)
        position = {d: i for i, d in enumerate(distinct_d)}
        out: list[Scores] = []
        all_plans: list[DocumentPlan] = []
        for q, row in zip(queries, texts):
            windows = [unit_index[position[t]] for t in row]
            flat = [u for w in windows for u in w]
            sims = self.maxsim(q_emb[q.text], [u_emb[u] for u in flat])
            values, details, k = [], [], 0
            for t, w in zip(row, windows):
                plan = plans[position[t]]
                all_plans.append(plan)
                value, info = document_score(self.policy, plan, sims[k : k + len(w)])
                k += len(w)
                values.append(value)
                details.append(info)
            out.append(Scores(values, details=details))
        hits = self.cache_hits - hits_before
        stats: dict[str, Any] = {"queries": len(distinct_q), "documents": len(all_plans),
                                 "document_cache_hits": hits}
        stats.update(call_stats(all_plans, len(units) - hits))
        self.last_stats = stats
        warn_truncated(self.name, stats["truncated"], len(all_plans), self.document_length,
                       chunking=self.policy.chunking)
        return [Scores(s.values, details=s.details, extra=stats) for s in out]

    def clear_cache(self) -> None:
        """Forget the cached document embeddings."""
        self._doc_cache.clear()

    def close(self) -> None:
        """Drop the model and the document cache. Idempotent."""
        self.model = None
        self._doc_cache.clear()
        self._closed = True

    def __repr__(self) -> str:
        return (f"ColBERTReranker(model_id={self.model_id!r}, query_length={self.query_length}, "
                f"document_length={self.document_length}, padding_score={self.padding_score!r})")
