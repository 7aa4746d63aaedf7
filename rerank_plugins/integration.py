"""The three framework-free pieces every framework adapter needs (LlamaIndex, Haystack, LangChain).

An adapter converts the host's documents to :class:`~rerank_plugins.types.Candidate` objects, calls a
:class:`~rerank_plugins.base.Reranker`, and turns the :class:`~rerank_plugins.types.RankedList` back into host
documents. Everything that is not host-specific lives here, so the adapters hold no logic of their own and the
three behave the same:

* :func:`build_reranker` - a reranker from a name, path or hub id (through :func:`~rerank_plugins.load_reranker`)
  or an already-built :class:`~rerank_plugins.base.Reranker`, used as is (:func:`rerank_plugins.models.build_reranker`,
  the one implementation the service, the Ray job and the composed rankers use too, plus the adapters'
  ``instruction`` field);
* :func:`candidate_ids` - the host's document ids when every document has one and they are unique, else the
  positions ``"0", "1", ...`` (so duplicates in a host list are reranked, never rejected or merged);
* :func:`result_metadata` - for each result, the plain (JSON-serialisable) metadata an adapter adds to the
  document it returns: ``rerank_rank`` always; ``rerank_reasoning``, ``rerank_details`` and ``rerank_windows``
  (the listwise windows the document took part in) when the strategy produced them; ``best_chunk`` (a copy of
  ``details["best_chunk"]``: ``{"start", "end", "score", "index", "chunks"}``, the character span of the
  best-scoring window in the document's text, its score, position and the number of windows) when the reranker
  chunked long documents (``options={"long_documents": "chunk", "max_chunks": ...}``, see
  :mod:`rerank_plugins.engine.length_policy`);
* :func:`model_name` - the serialisable form of a ``model`` argument (``pathlib.Path`` -> ``str``);
* :func:`affixed` and :func:`document_text` - the query and document texts a reranker sees, with the prefixes,
  suffixes and embedded meta fields of Haystack's rankers (the same rule in every adapter);
* :func:`check_limits` - an adapter's default ``top_k`` / ``score_threshold`` checked when it is built;
* :func:`host_options` - Haystack-style loading conventions (``device``, ``batch_size``, ``model_kwargs``,
  ``tokenizer_kwargs``, ``token``, ``scale_score``, ``trust_remote_code``, ``config_kwargs`` and
  sentence-transformers' ``backend``) turned into the options of the strategy that will be loaded.
"""

from __future__ import annotations

import os
from collections.abc import Container, Mapping, Sequence
from typing import Any

from .base import Reranker
from .engine.length_policy import BEST_CHUNK_KEY
from .errors import ConfigError
from .models import accepted_options, build_reranker
from .refs import ModelRef
from .resolution import resolve
from .types import RankedList, WindowTrace
from .validation import check_bool, check_choice, check_int, check_number

__all__ = [
    "BEST_CHUNK_KEY",
    "DETAILS_KEY",
    "RANK_KEY",
    "REASONING_KEY",
    "RESULT_KEYS",
    "WINDOWS_KEY",
    "affixed",
    "build_reranker",
    "candidate_ids",
    "check_limits",
    "document_text",
    "host_options",
    "model_name",
    "result_metadata",
]

RANK_KEY = "rerank_rank"
REASONING_KEY = "rerank_reasoning"
DETAILS_KEY = "rerank_details"
WINDOWS_KEY = "rerank_windows"
#: Every metadata key :func:`result_metadata` may set (``BEST_CHUNK_KEY`` is ``"best_chunk"``).
RESULT_KEYS = (RANK_KEY, REASONING_KEY, DETAILS_KEY, WINDOWS_KEY, BEST_CHUNK_KEY)


def candidate_ids(host_ids: Sequence[Any]) -> list[str]:
    """The host's ids (as ``str``) when every one is present and they are unique, else positions as ``str``."""
    ids = [None if i is None else str(i) for i in host_ids]
    if all(i is not None for i in ids) and len(set(ids)) == len(ids):
        return ids  # type: ignore[return-value]
    return [str(p) for p in range(len(ids))]


def _plain(value: Any) -> Any:
    """Read-only mappings and tuples as plain dicts and lists, recursively (hosts copy and serialise metadata)."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _window(trace: WindowTrace) -> dict[str, Any]:
    return {
        "pass": trace.pass_index,
        "start": trace.start,
        "end": trace.end,
        "input_ids": list(trace.input_ids),
        "output_ids": list(trace.output_ids),
        "raw_output": trace.raw_output,
        "reasoning": trace.reasoning,
        "repairs": dict(trace.repairs),
        "failed": trace.failed,
        "error": trace.error,
    }


def result_metadata(ranked: RankedList) -> list[dict[str, Any]]:
    """One fresh metadata dict per entry of ``ranked.results`` (same order); see the module docstring."""
    windows: dict[str, list[int]] = {}
    for index, trace in enumerate(ranked.traces):
        for cid in trace.input_ids:
            windows.setdefault(cid, []).append(index)
    out: list[dict[str, Any]] = []
    for item in ranked.results:
        meta: dict[str, Any] = {RANK_KEY: item.rank}
        if item.reasoning is not None:
            meta[REASONING_KEY] = item.reasoning
        if item.details:
            meta[DETAILS_KEY] = _plain(item.details)
            if BEST_CHUNK_KEY in item.details:
                meta[BEST_CHUNK_KEY] = _plain(item.details[BEST_CHUNK_KEY])
        if item.id in windows:
            meta[WINDOWS_KEY] = [_window(ranked.traces[i]) for i in windows[item.id]]
        out.append(meta)
    return out


def model_name(model: str | os.PathLike[str] | ModelRef | Reranker) -> str:
    """What an adapter stores (and serialises) for its ``model`` argument: a path as ``str``, a reranker's name."""
    if isinstance(model, Reranker):
        return model.name
    if isinstance(model, os.PathLike):
        return os.fspath(model)
    if isinstance(model, ModelRef):
        return str(model)
    if not isinstance(model, str):
        raise ConfigError(
            f"model must be a model or strategy name, a path, a ModelRef or a rerank_plugins Reranker, "
            f"got {type(model).__name__}"
        )
    return model


def _check_text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{name} must be a str, got {type(value).__name__}")
    return value


def affixed(text: str, prefix: str = "", suffix: str = "") -> str:
    """``prefix + text + suffix`` (Haystack's ``query_prefix`` / ``query_suffix`` rule)."""
    return _check_text("prefix", prefix) + text + _check_text("suffix", suffix)


def document_text(
    content: str | None,
    meta: Mapping[str, Any] | None = None,
    *,
    prefix: str = "",
    suffix: str = "",
    meta_fields: Sequence[str] | None = None,
    separator: str = "\n",
) -> str:
    """The document text a reranker sees, exactly as Haystack's rankers build it::

        prefix + separator.join([str(meta[k]) for k in meta_fields if meta.get(k) is not None] + [content or ""])
               + suffix

    (haystack ``SentenceTransformersSimilarityRanker.run``, sentence-transformers-haystack 2.0.0,
    ``haystack_integrations/components/rankers/sentence_transformers/sentence_transformers_similarity.py``).
    """
    meta = meta or {}
    values = [str(meta[k]) for k in (meta_fields or []) if k in meta and meta[k] is not None]
    body = _check_text("embedding_separator", separator).join([*values, content or ""])
    return affixed(body, prefix, suffix)


#: Haystack loading conventions and the keyword each is passed to a strategy under.
_HOST_OPTIONS = ("device", "batch_size", "model_kwargs", "tokenizer_kwargs")


def host_options(
    model: str | os.PathLike[str] | ModelRef,
    kind: str | None,
    options: Mapping[str, Any] | None,
    *,
    device: str | None = None,
    batch_size: int | None = None,
    model_kwargs: Mapping[str, Any] | None = None,
    tokenizer_kwargs: Mapping[str, Any] | None = None,
    token: str | None = None,
    scale_score: bool | None = None,
    trust_remote_code: bool | None = None,
    config_kwargs: Mapping[str, Any] | None = None,
    runtime: str | None = None,
) -> dict[str, Any]:
    """``options`` plus the host's loading conventions, under the keywords of the strategy that will be loaded.

    ``None`` means "not given" for every convention. A strategy that takes the keyword itself (the cross-encoder's
    and embedding model's ``device``, ``batch_size``, ``model_kwargs``, ``tokenizer_kwargs``) gets it there; an
    LLM strategy gets it in ``backend_options`` (its backend's keywords). ``token`` (a resolved Hugging Face token)
    goes into both ``model_kwargs`` and ``tokenizer_kwargs``. ``scale_score=False`` asks a cross-encoder for raw
    logits (``activation="raw"``); ``True`` keeps its default, which maps logits to probabilities. A convention
    the strategy cannot take, or one also given in ``options`` with another value, is a :class:`ConfigError`.

    As in sentence-transformers' ``CrossEncoder`` (which Haystack's rankers load): ``trust_remote_code`` may be
    given itself or inside ``model_kwargs`` (it becomes the strategy's or backend's ``trust_remote_code``);
    ``config_kwargs`` (``AutoConfig`` overrides) join ``model_kwargs``, whose config-attribute keys transformers'
    ``from_pretrained`` applies to the config; ``runtime`` is sentence-transformers' ``backend``: ``"torch"`` (the
    default) or ``"onnx"`` (a cross-encoder's ``quantize="onnx"``; ``"openvino"`` is not supported).
    """
    out = dict(options or {})
    model_kwargs, trust_remote_code = _split_trust(model_kwargs, trust_remote_code)
    if config_kwargs is not None:
        model_kwargs = _merged("config_kwargs", dict(config_kwargs), model_kwargs)
    given: dict[str, Any] = {
        "device": device, "batch_size": batch_size,
        "model_kwargs": dict(model_kwargs) if model_kwargs is not None else None,
        "tokenizer_kwargs": dict(tokenizer_kwargs) if tokenizer_kwargs is not None else None,
        "trust_remote_code": check_bool("trust_remote_code", trust_remote_code, optional=True),
    }
    check_choice("backend", runtime, RUNTIMES, optional=True)
    wanted = {k: v for k, v in given.items() if v is not None}
    if not wanted and scale_score is None and token is None and runtime in (None, "torch"):
        return out
    # the strategy load_reranker will build (the one resolution: options["recipe"] included)
    cls = resolve(model, kind, out, report=False).strategy_class()
    valid = accepted_options(cls)
    params: Container[str] = valid if valid is not None else _Anything()
    name = getattr(cls, "kind", None) or getattr(cls, "name", cls.__name__)
    in_process = "backend_options" in params and out.get("backend", "transformers") == "transformers"
    if token is not None and ("model_kwargs" in params or in_process):
        # an ambient credential (Haystack reads HF_TOKEN by default): passed where a Hugging Face model is
        # loaded, skipped by strategies that load none (fusion, remote, an HTTP backend)
        for key in ("model_kwargs", "tokenizer_kwargs"):
            wanted[key] = {"token": token, **(wanted.get(key) or {})}
    for key, value in wanted.items():
        if key in params:
            target, where = out, key
        elif "backend_options" in params:
            target = out["backend_options"] = dict(out.get("backend_options") or {})
            where = f"backend_options[{key!r}]"
        elif key == "trust_remote_code" and not value:
            continue  # nothing to trust where no model code is loaded
        else:
            raise ConfigError(f"{key} does not apply to the {name!r} strategy ({cls.__name__})")
        if key in target and target[key] != value:
            raise ConfigError(f"{key} is given twice, as a field and as {where} in options, with different values")
        target[key] = value
    if runtime == "onnx":
        if "quantize" not in params:
            raise ConfigError(f"backend='onnx' applies to cross-encoders; the {name!r} strategy has no ONNX path")
        if out.get("quantize", "onnx") not in ("onnx", "onnx-int8"):
            raise ConfigError(f"backend='onnx' and quantize={out['quantize']!r} in options disagree")
        out.setdefault("quantize", "onnx")
    if scale_score is not None:
        check_bool("scale_score", scale_score)
        if "activation" in params:
            if not scale_score:
                if out.get("activation", "raw") != "raw":
                    raise ConfigError("scale_score=False asks for raw scores, but options set activation")
                out["activation"] = "raw"
        elif not scale_score:
            raise ConfigError(
                f"scale_score=False (raw logits) applies to cross-encoders; the {name!r} strategy has no score scaling"
            )
    return out


class _Anything:
    """The keywords of a constructor whose ``**options`` reach ``object`` open: every name."""

    def __contains__(self, key: object) -> bool:
        return True


#: sentence-transformers' ``backend`` values (Haystack's rankers pass theirs on) that :func:`host_options` maps.
RUNTIMES = ("torch", "onnx")


def _split_trust(
    model_kwargs: Mapping[str, Any] | None, trust_remote_code: bool | None
) -> tuple[dict[str, Any] | None, bool | None]:
    """``trust_remote_code`` taken out of ``model_kwargs`` (where Haystack users put it) and checked against the
    argument itself: one value, never two (a duplicated keyword is a bare ``TypeError`` in ``from_pretrained``)."""
    if model_kwargs is None or "trust_remote_code" not in model_kwargs:
        return (dict(model_kwargs) if model_kwargs is not None else None), trust_remote_code
    rest = dict(model_kwargs)
    inner = check_bool("model_kwargs['trust_remote_code']", rest.pop("trust_remote_code"))
    if trust_remote_code is not None and trust_remote_code != inner:
        raise ConfigError(
            f"trust_remote_code={trust_remote_code} and model_kwargs['trust_remote_code']={inner} disagree"
        )
    return rest, inner


def _merged(name: str, extra: dict[str, Any], model_kwargs: dict[str, Any] | None) -> dict[str, Any]:
    """``model_kwargs`` plus ``extra`` (``config_kwargs``); a key in both with different values is an error."""
    out = dict(model_kwargs or {})
    for key, value in extra.items():
        if key in out and out[key] != value:
            raise ConfigError(f"{key!r} is given in both {name} and model_kwargs, with different values")
        out[key] = value
    return out


def check_limits(top_k: Any, score_threshold: Any) -> None:
    """Refuse a ``top_k`` that is not ``None`` or an int ``>= 0`` and a ``score_threshold`` that is not ``None`` or a
    number (NaN included) with a :class:`ConfigError`: adapters check their defaults when built, not at the first
    run."""
    check_int("top_k", top_k, 0, optional=True)
    check_number("score_threshold", score_threshold, optional=True)
