"""Pointwise cross-encoder reranking on ``AutoModelForSequenceClassification``.

Each (query, document) pair is read jointly by the model; its logits become one score:

* one-logit head: ``sigmoid(z)`` (``activation="auto"`` / ``"sigmoid"``; ``"softmax"`` equals it, being the
  softmax of ``[0, z]``), or ``z`` itself (``"raw"``);
* two-logit head: the softmax probability of label 1 (``"auto"`` / ``"softmax"`` / ``"sigmoid"``), or the
  log-odds ``z1 - z0`` (``"raw"``, the logit whose sigmoid is that probability).

With ``activation="auto"`` the activation sentence-transformers 6.2.0 ``CrossEncoder`` applies is read from the
model's ``config.json`` (``sentence_transformers.activation_fn``, or the older
``sbert_ce_default_activation_function``):
``torch.nn.Identity`` scores raw and ``Sigmoid`` sigmoid, as ``CrossEncoder.predict`` does; any other saved activation
is a :class:`~rerank_plugins.errors.ConfigError` asking for an explicit ``activation``. ``query_prefix`` /
``document_prefix`` are prepended to the texts (``query_prefix`` is ``CrossEncoder.predict(prompt=...)``).

Speed: every pair is tokenised once, sorted by token count (not characters), and run in batches bounded by
``batch_size`` and a padded-token budget ``max_tokens`` (dynamic padding, order restored, batch halved on
out-of-memory), under ``torch.inference_mode``. Scores equal sentence-transformers' ``CrossEncoder.predict``
on the same model and ``max_length`` (to float rounding). ``quantize`` selects an optional faster CPU path
(``"int8"``, ``"onnx"``, ``"onnx-int8"``; see :mod:`rerank_plugins.rankers._fast_paths`).

Long documents follow the length policy (:mod:`rerank_plugins.engine.length_policy`): with
``long_documents="truncate"`` (the default) overlong pairs are cut exactly as sentence-transformers cuts them
(``truncation="longest_first"``) and one warning per call gives the count; ``"chunk"`` scores overlapping
document windows that each fit beside the query (``chunk_overlap`` tokens shared, at most ``max_chunks`` per
document) and aggregates them by ``chunk_aggregate`` (``"max"``, MaxP, by default; ``"first"``, ``"mean"``), with the
best window's character span in ``details["best_chunk"]``. Windows are scored in the same token-budget batches as
every other pair, identical windows once, and cached per window. ``"warn"``, ``"chunk-max"`` and ``"chunk-mean"``
are deprecated spellings.
"""

from __future__ import annotations

import copy
import os
import warnings
from collections.abc import Sequence
from typing import Any

from .._optional import require
from .._warnings import caller_stacklevel
from ..backends.device import resolve_device, resolve_dtype
from ..base import BatchedReranker, Scores
from ..engine.batching import padding_share, plan_batches, run_batched
from ..engine.cache import ScoreCache, make_cache
from ..engine.length_policy import (
    LengthPolicy,
    TruncationWarning,
    call_stats,
    document_score,
    policy_from_options,
    warn_truncated,
)
from ..errors import BackendError, ConfigError, InvalidInputError
from ..refs import ModelLike, ModelRef, resolve_model
from ..types import Candidate, LoadedModel, Query
from ..validation import check_int
from ._fast_paths import QUANTIZE_MODES, OnnxClassifier, quantize_int8
from ._pair_encoding import EncodedPairs, encode_pairs

__all__ = ["CrossEncoderReranker", "TruncationWarning"]

ACTIVATIONS = ("auto", "sigmoid", "softmax", "raw")
#: padded tokens per batch on CPU when ``max_tokens`` is not given. Smaller batches keep the activations of a layer
#: close to the cores: measured on MiniLM-L6 over 500 Cranfield BM25 pairs (262 tokens on average, 2-core Xeon with
#: AVX-512, quiet machine), budgets of 1024-4096 tokens ran 42 pairs/s, 8192 ran 39 and 16384 ran 32-36 (batch 32).
#: A long-context model still goes a few pairs at a time (8k-token pairs one by one).
CPU_TOKEN_BUDGET = 4096


class CrossEncoderReranker(BatchedReranker):
    """Rerank with a sequence-classification cross-encoder (one- or two-logit head).

    Args:
        model: a local folder, a hub id, a :class:`~rerank_plugins.models.ModelRef`, a sentence-transformers
            ``CrossEncoder``, or a transformers ``PreTrainedModel`` (then pass ``tokenizer``).
        max_length: tokens per pair, special tokens included (lowered to what the model supports).
        query_max_length / doc_max_length: cut the query / document to this many tokens first.
        activation: ``"auto"``, ``"sigmoid"``, ``"softmax"`` or ``"raw"`` (see the module docstring).
        batch_size: most pairs per forward pass.
        max_tokens: most padded tokens per forward pass; ``None`` is 4096 on CPU (``CPU_TOKEN_BUDGET``) and unbounded
            on GPU.
        device / dtype: as :func:`~rerank_plugins.backends.device.resolve_device` / ``resolve_dtype``.
        long_documents / max_chunks / chunk_overlap / chunk_aggregate: the length policy (module docstring).
        cache: ``True``, a shared :class:`~rerank_plugins.engine.cache.ScoreCache`, or ``None``.
        progress: show a progress bar over batches, and transformers' "Loading weights" bar (both off by
            default).
        quantize: ``None``, ``"int8"`` (torch dynamic quantisation), ``"onnx"`` or ``"onnx-int8"`` (ONNX Runtime,
            extra ``fast``).
        tokenizer: tokenizer path or object (default: the model's own).
        trust_remote_code: allow custom model code.
        query_prefix / document_prefix: text prepended to every query / document before tokenisation
            (``query_prefix`` is sentence-transformers' ``CrossEncoder.predict(prompt=...)``, which prepends the
            prompt to the first text of each pair).
        model_kwargs / tokenizer_kwargs: extra ``from_pretrained`` arguments for the model / tokenizer loaded here
            (e.g. ``{"token": ..., "revision": ...}``, ``{"attn_implementation": "sdpa"}``).
    """

    name = "cross-encoder"

    def __init__(
        self,
        model: ModelLike | LoadedModel,
        *,
        max_length: int = 512,
        query_max_length: int | None = None,
        doc_max_length: int | None = None,
        activation: str = "auto",
        batch_size: int = 32,
        max_tokens: int | None = None,
        device: str | None = None,
        dtype: str | None = None,
        long_documents: str | None = None,
        chunk_overlap: int | None = None,
        max_chunks: int | None = None,
        chunk_aggregate: str | None = None,
        cache: bool | ScoreCache | None = None,
        progress: bool = False,
        quantize: str | None = None,
        tokenizer: str | Any | None = None,
        trust_remote_code: bool = False,
        query_prefix: str | None = None,
        document_prefix: str | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
    ) -> None:
        for label, prefix in (("query_prefix", query_prefix), ("document_prefix", document_prefix)):
            if prefix is not None and not isinstance(prefix, str):
                raise ConfigError(f"{label} must be a str or None, got {type(prefix).__name__}")
        self.query_prefix = query_prefix
        self.document_prefix = document_prefix
        for label, kwargs in (("model_kwargs", model_kwargs), ("tokenizer_kwargs", tokenizer_kwargs)):
            if kwargs is not None and not isinstance(kwargs, dict):
                raise ConfigError(f"{label} must be a dict or None, got {type(kwargs).__name__}")
        self._model_kwargs = dict(model_kwargs or {})
        self._tokenizer_kwargs = dict(tokenizer_kwargs or {})
        check_int("max_length", max_length, 1)
        check_int("query_max_length", query_max_length, 1, optional=True)
        check_int("doc_max_length", doc_max_length, 1, optional=True)
        check_int("batch_size", batch_size, 1)
        check_int("max_tokens", max_tokens, 1, optional=True)
        self.policy = policy_from_options(long_documents=long_documents, chunk_overlap=chunk_overlap,
                                          max_chunks=max_chunks, chunk_aggregate=chunk_aggregate)
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        if quantize not in QUANTIZE_MODES:
            raise ConfigError(f"quantize must be one of {QUANTIZE_MODES}, got {quantize!r}")
        self._torch = require("torch", "hf", purpose="the cross-encoder")
        transformers = require("transformers", "hf", purpose="the cross-encoder")

        self.model_ref, hf_model, tok = self._load(model, tokenizer, trust_remote_code, transformers, bool(progress))
        self.tokenizer = tok
        built = self.model_ref is None
        # A model handed in keeps its device and dtype unless others are asked for.
        self.device = hf_model.device if built and device is None else resolve_device(device)
        torch_dtype = hf_model.dtype if built and dtype is None else resolve_dtype(dtype, self.device)
        if quantize is not None:
            if self.device.type != "cpu" and quantize == "int8":
                raise ConfigError("quantize='int8' runs on CPU only; use dtype='float16' on GPU instead")
            if dtype is not None and resolve_dtype(dtype, self.device) != self._torch.float32:
                raise ConfigError(f"quantize={quantize!r} starts from float32 weights; do not combine it with "
                                  f"dtype={dtype!r}")
            torch_dtype = self._torch.float32
        hf_model = hf_model.to(device=self.device, dtype=torch_dtype).eval()
        self.dtype = torch_dtype

        num_labels = int(hf_model.config.num_labels)
        if num_labels not in (1, 2):
            raise ConfigError(
                f"the cross-encoder needs a head with 1 or 2 logits; {self.model_id} has num_labels={num_labels}"
            )
        self.num_labels = num_labels
        self.activation = self._resolve_activation(activation, hf_model.config)
        self.max_length = self._cap_max_length(max_length, hf_model.config, tok)
        self.query_max_length = query_max_length
        self.doc_max_length = doc_max_length
        needs_fast = self.policy.chunking or query_max_length is not None or doc_max_length is not None
        if needs_fast and not getattr(tok, "is_fast", False):
            raise ConfigError(
                "long_documents chunking, query_max_length and doc_max_length need a fast (Rust) tokenizer; "
                f"{type(tok).__name__} is not one"
            )
        self.batch_size = batch_size
        self.max_tokens = max_tokens if max_tokens is not None else (
            CPU_TOKEN_BUDGET if self.device.type == "cpu" else None
        )
        self.progress = bool(progress)
        self.cache = make_cache(cache)
        self.quantize = quantize
        self._input_names = [n for n in ("input_ids", "attention_mask", "token_type_ids")
                             if n in tok.model_input_names or n == "input_ids"]
        self._onnx: OnnxClassifier | None = None
        self._closed = False
        if quantize == "int8":
            hf_model = quantize_int8(hf_model)
        elif quantize in ("onnx", "onnx-int8"):
            self._onnx = OnnxClassifier(
                hf_model, input_names=self._input_names, int8=quantize == "onnx-int8", device=self.device
            )
        self.model = hf_model
        short = os.path.basename(self.model_id.rstrip("/\\")) or self.model_id
        self.name = f"cross-encoder:{short}"
        self._cache_key = (
            f"cross-encoder|{self.model_id}|{self.dtype}|{self.activation}|{self.max_length}|{query_max_length}"
            f"|{doc_max_length}|{self.policy.describe()}|{quantize}"
            f"|qp={query_prefix!r}|dp={document_prefix!r}"
        )
        #: statistics of the last scoring call (pairs, rows, padded-token share, truncations)
        self.last_stats: dict[str, Any] = {}

    @property
    def long_documents(self) -> str:
        """The length policy's mode (``"truncate"`` or ``"chunk"``), read from :attr:`policy`."""
        return self.policy.long_documents

    @property
    def chunk_overlap(self) -> int:
        """The length policy's window overlap in tokens, read from :attr:`policy`."""
        return self.policy.chunk_overlap

    # ------------------------------------------------------------------ copies
    def __deepcopy__(self, memo: dict[int, Any]) -> CrossEncoderReranker:
        """A new reranker sharing this one's loaded model, tokenizer and score cache (weights are never copied:
        frameworks deep-copy components freely, and inference does not change them)."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.last_stats = dict(self.last_stats)
        memo[id(self)] = clone
        return clone

    def with_activation(self, activation: str) -> CrossEncoderReranker:
        """A copy sharing this reranker's model and score cache whose scores use ``activation`` (``"sigmoid"``,
        ``"softmax"``, ``"raw"``; ``"auto"`` reads the model's saved one): how an adapter honours a per-call
        ``scale_score`` (Haystack's rankers take one at run time) without loading the model twice."""
        if activation not in ACTIVATIONS:
            raise ConfigError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        clone = copy.deepcopy(self)
        clone.activation = clone._resolve_activation(activation, clone.model.config)
        if clone.activation != self.activation:
            clone._cache_key = f"{self._cache_key}|as={clone.activation}"
        return clone

    def with_length_policy(self, policy: LengthPolicy) -> CrossEncoderReranker:
        """A copy sharing this reranker's model, tokenizer and score cache that follows ``policy`` (its
        ``long_documents``, ``max_chunks``, ``chunk_overlap`` and ``chunk_aggregate``): how the service honours a
        per-request ``long_document_strategy`` / ``max_chunks_per_doc`` without loading the model twice. This
        reranker itself when ``policy`` is its own."""
        if policy == self.policy:
            return self
        if policy.chunking and not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(f"long_documents chunking needs a fast (Rust) tokenizer; {type(self.tokenizer).__name__} "
                              "is not one")
        clone = copy.deepcopy(self)
        clone.policy = policy
        clone._cache_key = self._cache_key.replace(f"|{self.policy.describe()}|", f"|{policy.describe()}|", 1)
        return clone

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state.pop("_torch", None)  # a module: imported again on unpickling
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._torch = require("torch", "hf", purpose="the cross-encoder")

    # ------------------------------------------------------------------ construction helpers
    def _load(
        self, model: Any, tokenizer: Any, trust_remote_code: bool, transformers: Any, progress: bool = False
    ) -> tuple[ModelRef | None, Any, Any]:
        if hasattr(model, "predict") and hasattr(model, "tokenizer") and hasattr(model, "model"):
            # sentence-transformers CrossEncoder: reuse its model and tokenizer.
            self.model_id = f"{type(model.model).__name__}@{id(model.model):x}"
            return None, model.model, tokenizer if tokenizer is not None and not isinstance(tokenizer, str) \
                else model.tokenizer
        if isinstance(model, transformers.PreTrainedModel):
            if tokenizer is None:
                raise ConfigError("pass tokenizer= (a path or tokenizer) with an already-built transformers model")
            tok = tokenizer if not isinstance(tokenizer, str) else self._load_tokenizer(
                tokenizer, trust_remote_code, transformers, self._tokenizer_kwargs
            )
            self.model_id = getattr(model, "name_or_path", None) or f"{type(model).__name__}@{id(model):x}"
            return None, model, tok
        ref = resolve_model(model)
        self.model_id = ref.bundled_name or ref.name_or_path
        from ..backends.encoders import load_sequence_classifier

        hf_model = load_sequence_classifier(
            ref, trust_remote_code=trust_remote_code, progress=progress, model_kwargs=self._model_kwargs
        )
        tok_source = tokenizer if tokenizer is not None else (ref.tokenizer or ref.name_or_path)
        tok = tok_source if not isinstance(tok_source, str) else self._load_tokenizer(
            tok_source, trust_remote_code, transformers, self._tokenizer_kwargs
        )
        return ref, hf_model, tok

    @staticmethod
    def _load_tokenizer(
        source: str, trust_remote_code: bool, transformers: Any, kwargs: dict[str, Any] | None = None
    ) -> Any:
        from ..backends.encoders import load_tokenizer

        return load_tokenizer(source, trust_remote_code=trust_remote_code, tokenizer_kwargs=kwargs)

    def _resolve_activation(self, activation: str, config: Any) -> str:
        if activation != "auto":
            return activation
        saved = None
        st_config = getattr(config, "sentence_transformers", None)
        if isinstance(st_config, dict):
            saved = st_config.get("activation_fn")
        saved = saved or getattr(config, "sbert_ce_default_activation_function", None)
        if self.num_labels == 1 and isinstance(saved, str):
            # sentence-transformers 6.2.0 CrossEncoder.get_default_activation_fn applies the saved torch.* activation.
            if saved.endswith("Identity"):
                return "raw"
            if not saved.endswith("Sigmoid"):
                raise ConfigError(
                    f"{self.model_id} saves the activation {saved!r}, which activation='auto' does not reproduce; "
                    "pass activation='sigmoid' or 'raw'"
                )
        return "sigmoid" if self.num_labels == 1 else "softmax"

    @staticmethod
    def _cap_max_length(max_length: int, config: Any, tokenizer: Any) -> int:
        limits = [max_length]
        positions = getattr(config, "max_position_embeddings", None)
        if isinstance(positions, int) and positions > 0:
            limits.append(positions)
        tok_max = getattr(tokenizer, "model_max_length", None)
        if isinstance(tok_max, int) and 0 < tok_max < 1_000_000:
            limits.append(tok_max)
        return min(limits)

    # ------------------------------------------------------------------ scoring
    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        pairs: list[tuple[str, str]] = []
        for q, cands in zip(queries, lists):
            for c in cands:
                if c.text is None:
                    raise InvalidInputError(f"{self.name} scores text; candidate {c.id!r} has an image but no text")
                pairs.append((q.text, c.text))
        details: list[dict[str, Any]] | None = None
        if self.policy.chunking:
            values, stats, details = self._score_chunked(pairs)
        else:
            values, stats = self.score_pairs(pairs)
        out, start = [], 0
        for cands in lists:
            end = start + len(cands)
            out.append(Scores(values[start:end], details=None if details is None else details[start:end],
                              extra=stats))
            start = end
        return out

    def score_pairs(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[float], dict[str, Any]]:
        """Score ``(query, document)`` pairs in input order; returns the scores and call statistics."""
        cached: list[float | None] = (
            self.cache.get_many(self._cache_key, pairs) if self.cache is not None else [None] * len(pairs)
        )
        todo = [i for i, s in enumerate(cached) if s is None]
        stats: dict[str, Any] = {"pairs": len(pairs), "cache_hits": len(pairs) - len(todo)}
        if todo:
            new, run_stats = self._compute([pairs[i] for i in todo])
            stats.update(run_stats)
            for i, v in zip(todo, new):
                cached[i] = v
            if self.cache is not None:
                self.cache.put_many(self._cache_key, [pairs[i] for i in todo], new)
        self.last_stats = stats
        return [float(v) for v in cached if v is not None], stats

    def _encode(self, pairs: Sequence[tuple[str, str]]) -> EncodedPairs:
        qp = self.query_prefix or ""
        return encode_pairs(
            self.tokenizer,
            [qp + q for q, _ in pairs],
            [d for _, d in pairs],
            max_length=self.max_length,
            policy=self.policy,
            query_max_length=self.query_max_length,
            doc_max_length=self.doc_max_length,
            document_prefix=self.document_prefix or "",
        )

    def _run_rows(self, enc: EncodedPairs, rows: Sequence[int]) -> tuple[list[float], dict[str, Any]]:
        """Model scores of the rows ``rows`` of ``enc`` (token-budget batches, OOM back-off) and batch stats."""
        lengths = [len(enc.input_ids[r]) for r in rows]
        types = enc.token_type_ids
        scores = run_batched(
            lengths,
            lambda idx: self._forward([enc.input_ids[rows[i]] for i in idx],
                                      None if types is None else [types[rows[i]] for i in idx]),
            max_batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            progress=self.progress,
            desc=self.name,
        )
        batches = plan_batches(lengths, max_batch_size=self.batch_size, max_tokens=self.max_tokens)
        return [float(s) for s in scores], {"rows": len(lengths), "tokens": sum(lengths),
                                            "padding_share": padding_share(lengths, batches)}

    def _compute(self, pairs: Sequence[tuple[str, str]]) -> tuple[list[float], dict[str, Any]]:
        enc = self._encode(pairs)
        scores, stats = self._run_rows(enc, list(range(len(enc.input_ids))))
        stats.update({"truncated": len(enc.truncated), "chunked": 0, "capped": len(enc.capped)})
        warn_truncated(self.name, len(enc.truncated), len(pairs), self.max_length, unit="(query, document) pairs")
        return scores, stats

    def _score_chunked(
        self, pairs: Sequence[tuple[str, str]]
    ) -> tuple[list[float], dict[str, Any], list[dict[str, Any]]]:
        """Chunk mode: every window of every pair, identical windows once, cached per window; MaxP/first/mean."""
        enc = self._encode(pairs)
        distinct: dict[tuple[str, str], int] = {}
        first_row: list[int] = []
        for r, key in enumerate(enc.row_texts):
            if key not in distinct:
                distinct[key] = len(distinct)
                first_row.append(r)
        keys = list(distinct)
        # a window row is the (cut query, prefixed window text) pair that fits max_length: its score depends on the
        # model, dtype, activation and lengths, not on how windows are planned or pooled, so every chunk policy
        # (max / first / mean, any max_chunks or overlap) shares the window scores
        window_key = self._cache_key.replace(f"|{self.policy.describe()}|", "|", 1) + "|window"
        cached: list[float | None] = (
            self.cache.get_many(window_key, keys) if self.cache is not None else [None] * len(keys)
        )
        todo = [k for k, v in enumerate(cached) if v is None]
        stats: dict[str, Any] = {"pairs": len(pairs), "cache_hits": len(keys) - len(todo), "rows": 0, "tokens": 0,
                                 "padding_share": 0.0}
        if todo:
            new, run_stats = self._run_rows(enc, [first_row[k] for k in todo])
            stats.update(run_stats)
            for k, v in zip(todo, new):
                cached[k] = v
            if self.cache is not None:
                self.cache.put_many(window_key, [keys[k] for k in todo], new)
        per_pair: list[list[float]] = [[] for _ in pairs]
        for owner, key in zip(enc.owner, enc.row_texts):
            value = cached[distinct[key]]
            assert value is not None
            per_pair[owner].append(value)
        values, details = [], []
        for plan, window_scores in zip(enc.plans, per_pair):
            value, info = document_score(self.policy, plan, window_scores)
            values.append(value)
            details.append(info)
        stats.update(call_stats(enc.plans, len(todo)))
        stats["capped"] = len(enc.capped)
        self.last_stats = stats
        warn_truncated(self.name, stats["truncated"], len(pairs), self.max_length, chunking=True)
        if enc.query_cut:
            warnings.warn(
                f"{self.name}: {len(enc.query_cut)} of {len(pairs)} queries were too long to leave room for "
                f"document windows within max_length={self.max_length} and were truncated; set query_max_length",
                TruncationWarning,
                stacklevel=caller_stacklevel(),
            )
        return values, stats, details

    def _forward(self, rows: list[list[int]], type_rows: list[list[int]] | None) -> list[float]:
        import numpy as np

        if self._closed:
            raise BackendError(f"{self.name} is closed")
        torch = self._torch
        width = max(len(r) for r in rows)
        pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = np.full((len(rows), width), pad_id, dtype=np.int64)
        mask = np.zeros((len(rows), width), dtype=np.int64)
        types = np.zeros((len(rows), width), dtype=np.int64) if type_rows is not None else None
        left = getattr(self.tokenizer, "padding_side", "right") == "left"
        for k, row in enumerate(rows):
            sl = slice(width - len(row), width) if left else slice(0, len(row))
            ids[k, sl] = row
            mask[k, sl] = 1
            if types is not None and type_rows is not None:
                types[k, sl] = type_rows[k]
        arrays = {"input_ids": ids, "attention_mask": mask}
        if types is not None:
            arrays["token_type_ids"] = types
        if self._onnx is not None:
            logits = torch.from_numpy(self._onnx(arrays))
        else:
            with torch.inference_mode():
                feed = {k: torch.from_numpy(v).to(self.device) for k, v in arrays.items() if k in self._input_names}
                logits = self.model(**feed).logits
        return self._activate(logits.float()).cpu().tolist()

    def _activate(self, logits: Any) -> Any:
        torch = self._torch
        if self.num_labels == 1:
            z = logits[:, 0]
            return z if self.activation == "raw" else torch.sigmoid(z)
        if self.activation == "raw":
            return logits[:, 1] - logits[:, 0]
        return torch.softmax(logits, dim=-1)[:, 1]

    def close(self) -> None:
        """Drop the model and any ONNX session (memory is freed once nothing else holds them). Idempotent."""
        self._onnx = None
        self.model = None
        self._closed = True

    def __repr__(self) -> str:
        fields = ("model_id", "device", "max_length", "activation", "long_documents", "quantize")
        shown = ", ".join(f"{f}={str(getattr(self, f, '?'))!r}" for f in fields)
        return f"CrossEncoderReranker({shown})"
