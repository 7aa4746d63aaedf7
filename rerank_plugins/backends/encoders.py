"""Loading Hugging Face encoders: sequence classifiers (cross-encoders), sentence-transformers models
(bi-encoders, CLIP / SigLIP dual encoders), seq2seq models (monoT5 / duoT5) and ColBERT backbones, beside the
causal-LM loading of :mod:`.hf_loading`.

The rankers (``rankers/cross_encoder.py``, ``rankers/embedding.py``, ``rankers/clip.py``, ``rankers/seq2seq.py``,
``rankers/late_interaction.py``) keep what is theirs
(devices, dtypes, scoring) and load through these functions, so every encoder load is quiet the same way (no
"Loading weights" bar unless ``progress``: :func:`.hf_loading.quiet_load`) and fails with the same documented
errors: :class:`~rerank_plugins.errors.ModelNotFoundError` when the files cannot be read,
:class:`~rerank_plugins.errors.ConfigError` when they are not the kind of model asked for.
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import ConfigError, ModelNotFoundError
from ..refs import ModelRef, require_cached_offline
from .hf_loading import check_vocabulary, load_tokenizer, quiet_load

__all__ = [
    "load_encoder_backbone",
    "load_sentence_transformer",
    "load_seq2seq_lm",
    "load_sequence_classifier",
    "load_tokenizer",
    "local_snapshot",
    "sentence_transformer_kwargs",
]


def load_sequence_classifier(
    ref: ModelRef,
    *,
    trust_remote_code: bool = False,
    progress: bool = False,
    model_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """An ``AutoModelForSequenceClassification`` with a trained head, from a hub id or a local folder
    (``model_kwargs``: more ``from_pretrained`` arguments).

    A GGUF file, a folder without ``config.json``, a model that is not a sequence classifier, or one whose
    classification head would be randomly initialised (its weights are missing: a sentence-embedding model, say)
    is a :class:`ConfigError` / :class:`ModelNotFoundError` naming it: a random head scores noise.
    """
    if ref.gguf_file is not None:
        raise ConfigError(f"{ref} is a GGUF file; the cross-encoder needs a sequence-classification model")
    local = Path(ref.name_or_path)
    if local.is_dir() and not (local / "config.json").is_file():
        raise ModelNotFoundError(f"{ref.name_or_path!r} is a folder without config.json: not a transformers model")
    require_cached_offline(ref.name_or_path, what="the cross-encoder")
    transformers = require("transformers", "hf", purpose="the cross-encoder")
    try:
        # no LOAD REPORT table: the loading info is checked below and a missing head is our own clear error
        with quiet_load(progress=progress, report=False):
            model, info = transformers.AutoModelForSequenceClassification.from_pretrained(
                ref.name_or_path, trust_remote_code=trust_remote_code, output_loading_info=True,
                **dict(model_kwargs or {}),
            )
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load the cross-encoder {ref.name_or_path!r}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{ref.name_or_path!r} is not a sequence-classification model: {exc}") from exc
    missing = sorted(info.get("missing_keys") or ())
    if missing:
        raise ConfigError(
            f"{ref.name_or_path!r} has no trained classification head (weights missing: {', '.join(missing)}); "
            "it is not a cross-encoder (for a sentence-embedding model use kind='embedding')"
        )
    return model


def sentence_transformer_kwargs(
    cls: Any, model_kwargs: Mapping[str, Any] | None, tokenizer_kwargs: Mapping[str, Any] | None
) -> dict[str, Any]:
    """``SentenceTransformer`` keyword arguments: a ``token`` goes to ``token=``; the tokenizer's under the name this
    sentence-transformers version takes (``processor_kwargs`` since 5.4, ``tokenizer_kwargs`` before)."""
    model_kwargs, tokenizer_kwargs = dict(model_kwargs or {}), dict(tokenizer_kwargs or {})
    model_token, tokenizer_token = model_kwargs.pop("token", None), tokenizer_kwargs.pop("token", None)
    token = model_token if model_token is not None else tokenizer_token
    out: dict[str, Any] = {}
    if token is not None:
        out["token"] = token
    if model_kwargs:
        out["model_kwargs"] = model_kwargs
    if tokenizer_kwargs:
        name = "processor_kwargs" if "processor_kwargs" in inspect.signature(cls.__init__).parameters \
            else "tokenizer_kwargs"
        out[name] = tokenizer_kwargs
    return out


def load_sentence_transformer(
    ref: ModelRef,
    *,
    device: Any,
    trust_remote_code: bool = False,
    progress: bool = False,
    model_kwargs: Mapping[str, Any] | None = None,
    tokenizer_kwargs: Mapping[str, Any] | None = None,
    what: str = "the sentence-transformers model",
) -> Any:
    """``SentenceTransformer(ref.name_or_path, device=...)`` (``model_kwargs`` / ``tokenizer_kwargs`` passed on as
    :func:`sentence_transformer_kwargs` says); unreadable files are a :class:`ModelNotFoundError` that names
    ``what`` (``"the dual encoder"`` for CLIP / SigLIP)."""
    require_cached_offline(ref.name_or_path, what=what)
    st = require("sentence_transformers", "hf", purpose="sentence-transformers models")
    extra = sentence_transformer_kwargs(st.SentenceTransformer, model_kwargs, tokenizer_kwargs)
    try:
        with quiet_load(progress=progress):  # no "Loading weights" bar unless progress=True
            model = st.SentenceTransformer(
                ref.name_or_path, device=str(device), trust_remote_code=trust_remote_code, **extra
            )
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load {what} {ref.name_or_path!r}: {exc}") from exc
    tokenizer = getattr(model, "tokenizer", None)
    if tokenizer is not None and hasattr(tokenizer, "get_vocab"):  # sentence-transformers loads its own
        check_vocabulary(tokenizer, ref.name_or_path)
    return model


def load_seq2seq_lm(ref: ModelRef, *, trust_remote_code: bool = False, progress: bool = False) -> Any:
    """An ``AutoModelForSeq2SeqLM`` (monoT5 / duoT5) from a hub id or a local folder; unreadable files are a
    :class:`ModelNotFoundError`, a model of another kind a :class:`ConfigError`."""
    if ref.gguf_file is not None:
        raise ConfigError(f"{ref} is a GGUF file; seq2seq reranking needs an AutoModelForSeq2SeqLM model")
    require_cached_offline(ref.name_or_path, what="the seq2seq model")
    transformers = require("transformers", "hf", purpose="seq2seq reranking")
    try:
        with quiet_load(progress=progress):
            return transformers.AutoModelForSeq2SeqLM.from_pretrained(
                ref.name_or_path, trust_remote_code=trust_remote_code
            )
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load the seq2seq model {ref.name_or_path!r}: {exc}") from exc
    except ValueError as exc:
        raise ConfigError(f"{ref.name_or_path!r} is not a sequence-to-sequence model: {exc}") from exc


def local_snapshot(ref: ModelRef, *, what: str = "the model") -> Path:
    """The local folder of ``ref``: the folder itself, or the hub snapshot (``huggingface_hub.snapshot_download``,
    which reads the cache); a :class:`ModelNotFoundError` naming ``what`` when it cannot be had (offline and not
    cached: :func:`~rerank_plugins.refs.require_cached_offline`, the check every loader makes)."""
    path = Path(ref.name_or_path).expanduser()
    if path.is_dir():
        return path
    require_cached_offline(ref.name_or_path, what=what)
    try:
        from huggingface_hub import snapshot_download
    except ImportError as exc:  # pragma: no cover - huggingface_hub comes with transformers
        raise ModelNotFoundError(f"{ref.name_or_path!r} is not a local folder and huggingface_hub is missing") from exc
    try:
        return Path(snapshot_download(ref.name_or_path))
    except Exception as exc:  # hub errors have many types (offline, missing repo, auth)
        raise ModelNotFoundError(f"cannot find {what} {ref.name_or_path!r}: {exc}") from exc


def load_encoder_backbone(
    folder: Path, *, trust_remote_code: bool = False, no_pooler_types: frozenset[str] | set[str] = frozenset(),
    report: bool = True,
) -> tuple[Any, Any]:
    """``(tokenizer, AutoModel)`` of the encoder in ``folder`` (a ColBERT backbone); models whose ``model_type`` is
    in ``no_pooler_types`` are built with ``add_pooling_layer=False`` (unless custom code is trusted, whose
    constructor may not take it); ``report=False`` hides transformers' "LOAD REPORT" table."""
    transformers = require("transformers", "hf", purpose="loading an encoder")
    try:
        tok = load_tokenizer(str(folder), trust_remote_code=trust_remote_code)
        config = transformers.AutoConfig.from_pretrained(str(folder), trust_remote_code=trust_remote_code)
        extra = {"add_pooling_layer": False} if config.model_type in no_pooler_types and not trust_remote_code else {}
        with quiet_load(report=report):
            backbone = transformers.AutoModel.from_pretrained(
                str(folder), config=config, trust_remote_code=trust_remote_code, **extra
            )
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load the encoder backbone from {folder}: {exc}") from exc
    return tok, backbone
