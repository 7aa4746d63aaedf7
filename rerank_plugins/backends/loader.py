"""One entry point that turns a model reference into an :class:`LLMBackend`, loading each model once per process.

``load_llm_backend(model, backend="transformers", **options)``:

* an :class:`LLMBackend` instance passes through unchanged (options that are not ``None`` are refused, as
  they could not apply to an already built backend);
* ``"transformers"`` and ``"vllm"``: ``model`` is a bundled name, hub id, local folder, ``.gguf`` path or
  :class:`ModelRef`; the built backend is cached for the process under the resolved reference, device,
  dtype and the other options, so two rerankers over the same model share one copy of its weights;
* ``"openai"``: ``model`` is the model name the server knows (or a :class:`ModelRef`, passed through);
  the client is built each time (it is cheap and holds connections the caller closes).

Pass ``cache=False`` to build a private instance. :func:`clear_llm_backend_cache` drops the cache.
"""

from __future__ import annotations

import importlib
import os
import threading
from typing import Any

from ..errors import ConfigError
from ..refs import ModelRef, require_cached_offline, resolve_model
from .base import LLMBackend

__all__ = ["BACKENDS", "cached_llm_backends", "clear_llm_backend_cache", "load_llm_backend"]

#: backend name -> "module:Class", imported only when used
BACKENDS: dict[str, str] = {
    "transformers": "rerank_plugins.backends.transformers:TransformersLLMBackend",
    "vllm": "rerank_plugins.backends.vllm:VLLMBackend",
    "openai": "rerank_plugins.backends.openai:OpenAIBackend",
}
_CACHED = ("transformers", "vllm")

_cache: dict[tuple[Any, ...], LLMBackend] = {}
_lock = threading.Lock()


def _backend_class(name: str) -> Any:
    module, _, attr = BACKENDS[name].partition(":")
    return getattr(importlib.import_module(module), attr)


def _freeze(value: Any) -> Any:
    if isinstance(value, dict):
        return tuple(sorted((str(k), _freeze(v)) for k, v in value.items()))
    if isinstance(value, (list, tuple, set, frozenset)):
        items = [_freeze(v) for v in value]
        return tuple(sorted(items, key=repr) if isinstance(value, (set, frozenset)) else items)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _device_key(backend: str, options: dict[str, Any]) -> tuple[str, str]:
    """Device and dtype as they will be resolved, so ``device=None`` and ``device="cpu"`` share an entry."""
    if backend != "transformers":
        return str(options.get("device")), str(options.get("dtype"))
    from .device import resolve_device, resolve_dtype

    device = resolve_device(options.get("device"))
    return str(device), str(resolve_dtype(options.get("dtype"), device))


def load_llm_backend(
    model: str | os.PathLike[str] | ModelRef | LLMBackend,
    *,
    backend: str = "transformers",
    cache: bool = True,
    **options: Any,
) -> LLMBackend:
    """Build (or fetch from the process cache) the backend for ``model``; see the module docstring."""
    if isinstance(model, LLMBackend):
        given = sorted(k for k, v in options.items() if v is not None)
        if given:
            raise ConfigError(f"options {given} cannot apply to an already built backend {model!r}")
        return model
    if backend not in BACKENDS:
        raise ConfigError(f"unknown LLM backend {backend!r}; choose one of {sorted(BACKENDS)}")
    options = {k: v for k, v in options.items() if v is not None}
    if backend == "openai":
        # the server's model name (a ModelRef is passed through: the OpenAI backend reads a GGUF's template)
        name = os.fspath(model) if isinstance(model, os.PathLike) else model
        return _backend_class("openai")(name, **options)
    ref = model if isinstance(model, ModelRef) else resolve_model(model)
    if ref.gguf_file is None:  # before the backend's heavy imports
        require_cached_offline(ref.name_or_path, what="the LLM")
    if not cache or backend not in _CACHED:
        return _backend_class(backend)(ref, **options)
    device, dtype = _device_key(backend, options)
    rest = {k: v for k, v in options.items() if k not in ("device", "dtype", "progress")}
    key = (backend, ref, device, dtype, _freeze(rest))
    with _lock:
        found = _cache.get(key)
        if found is None:
            found = _backend_class(backend)(ref, **options)
            _cache[key] = found
    return found


def cached_llm_backends() -> list[LLMBackend]:
    """The backends held by the process cache."""
    with _lock:
        return list(_cache.values())


def clear_llm_backend_cache(close: bool = False) -> None:
    """Forget every cached backend; with ``close`` also release their models (rerankers still holding one break)."""
    with _lock:
        backends = list(_cache.values())
        _cache.clear()
    if close:
        for b in backends:
            b.close()
