"""The strategy registry, :func:`detect_kind`, and the one loader :func:`load_reranker` / :func:`build_reranker`.

* **strategies** - a kind name (``"cross-encoder"``, ``"embedding"``, ``"listwise"``, ...) mapped to the class
  that implements it, stored as an import path so that importing this module stays light (explicit: no guessing
  a model family from a substring of its name);
* **model references and bundled models** live one layer down, in :mod:`rerank_plugins.refs` (backends and
  rankers import them from there; their names are re-exported here for existing imports).

``load_reranker(name_or_path, kind=None, **options)`` resolves, in this order: a strategy name (options are
passed to its class), a bundled model name, a model recipe (:mod:`rerank_plugins.recipes`: an exact hub id, a
local copy of a listed model, or ``recipe=``), then a hub id or a local path, whose kind is read from the
model's own config (``*ForSequenceClassification`` is a cross-encoder; a sentence-transformers folder is an
embedding model; a causal LM needs an explicit ``kind``). Options are checked against the strategy's
constructor before anything loads: an unknown one is a :class:`~rerank_plugins.errors.ConfigError` naming the
valid ones, and so is a strategy that needs a model and gets none.

:func:`build_reranker` is the one place "a reranker from a name or an instance" is decided: the framework
adapters (:func:`rerank_plugins.integration.build_reranker`), the composed rankers
(:func:`rerank_plugins.rankers._compose.as_reranker`), the service and the Ray job all call it.
"""

from __future__ import annotations

import importlib
import inspect
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .errors import ConfigError, ModelNotFoundError
from .rankers import _compose
from .refs import _MODELS as _MODELS
from .refs import (
    QWEN_INSTALL,
    BundledModel,
    ModelRef,
    bundled_models,
    cached_snapshot,
    package_dir,
    register_model,
    require_cached_offline,
    resolve_model,
)

if TYPE_CHECKING:
    from .base import Reranker

__all__ = [
    "LLM_KINDS",
    "QWEN_INSTALL",
    "BundledModel",
    "ModelRef",
    "StrategySpec",
    "accepted_options",
    "build_reranker",
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
class StrategySpec:
    name: str
    target: str  # "module:ClassName"
    description: str
    #: True when the strategy needs a ``model`` (first positional argument)
    needs_model: bool = True

    def load_class(self) -> type:
        module, _, attr = self.target.partition(":")
        return getattr(importlib.import_module(module), attr)  # type: ignore[no-any-return]


_STRATEGIES: dict[str, StrategySpec] = {}


def register_strategy(name: str, target: str, description: str, *, needs_model: bool = True) -> None:
    """Register a strategy kind implemented by ``target`` (``"package.module:Class"``)."""
    if name in _STRATEGIES and _STRATEGIES[name].target != target:
        raise ConfigError(f"strategy {name!r} is already registered to {_STRATEGIES[name].target}")
    _STRATEGIES[name] = StrategySpec(name, target, description, needs_model)


def strategies() -> dict[str, StrategySpec]:
    return dict(_STRATEGIES)


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
# encoder families (issue 15): seq2seq (monoT5 / duoT5) and late interaction (ColBERT)
register_strategy(
    "monot5",
    "rerank_plugins.rankers.seq2seq:MonoT5Reranker",
    "monoT5 pointwise seq2seq: P(true) of the first decoder step after 'Query: .. Document: .. Relevant:'",
)
register_strategy(
    "duot5",
    "rerank_plugins.rankers.seq2seq:DuoT5Reranker",
    "duoT5 pairwise seq2seq: P(Document0 beats Document1) over all ordered pairs, sym-sum aggregated",
)
register_strategy(
    "colbert",
    "rerank_plugins.rankers.late_interaction:ColBERTReranker",
    "ColBERT late interaction (MaxSim over token embeddings) of PyLate / Stanford ColBERT models",
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
)
register_strategy(
    "vision-reasoning",
    "rerank_plugins.rankers.vision_reasoning:VisionReasoningReranker",
    "MM-R5-style reasoning listwise reranking of page images (<think> then <answer>[ids]</answer>)",
)
register_strategy(
    "clip",
    "rerank_plugins.rankers.clip:ClipReranker",
    "CLIP / SigLIP dual-encoder cosine for text, image or mixed candidates (sentence-transformers)",
)
register_strategy(
    "remote",
    "rerank_plugins.rankers.remote:RemoteReranker",
    "client of a remote /rerank service (rerank-plugins serve, Cohere, Jina, TEI): load_reranker('remote', url=...)",
    needs_model=False,
)


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
    if not local.is_dir():  # a hub id: its cached snapshot when there is one (the same answer online and offline)
        local = cached_snapshot(ref.name_or_path) or local
    config: dict[str, Any] | None = None
    if local.is_dir():
        if (local / "modules.json").exists():
            modules = json.loads((local / "modules.json").read_text())
            if any("Pooling" in m.get("type", "") for m in modules):
                return "embedding"
            st_config = local / "config_sentence_transformers.json"
            if any(m.get("type", "").startswith("pylate.") for m in modules) or (
                st_config.exists() and json.loads(st_config.read_text()).get("model_type") == "ColBERT"
            ):
                return "colbert"  # a PyLate ColBERT folder: Transformer + Dense, MaxSim
        if (local / "config.json").exists():
            config = json.loads((local / "config.json").read_text())
    if config is None:
        require_cached_offline(ref.name_or_path)
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
    if "HF_ColBERT" in archs:
        return "colbert"  # a Stanford ColBERT checkpoint
    if config.get("is_encoder_decoder") and any(a.endswith("ForConditionalGeneration") for a in archs):
        seq2seq = sorted(k for k in ("monot5", "duot5") if k in _STRATEGIES)
        raise ConfigError(f"{ref} is a sequence-to-sequence model{_recipe_hint(ref, archs)} kind= one of {seq2seq}")
    if any(a.endswith("ForCausalLM") or a.endswith("ForConditionalGeneration") for a in archs):
        llm_kinds = sorted(k for k in LLM_KINDS if k in _STRATEGIES)
        raise ConfigError(f"{ref} is a generative model{_recipe_hint(ref, archs)} kind= one of {llm_kinds}")
    raise ConfigError(
        f"cannot tell how to rerank with {ref} (architectures={archs}); pass kind= one of {sorted(_STRATEGIES)}"
    )


def _recipe_hint(ref: ModelRef, archs: list[str]) -> str:
    """``": no model recipe matches it; pass recipe= (closest: ...) for a copy of a listed model, or"``."""
    from .recipes import closest_recipes

    close = [r.ids[0] if len(r.ids) == 1 else r.name for r in closest_recipes(archs, ref.name_or_path)]
    listed = f" (closest: {', '.join(map(repr, close))}; all: rerank-plugins models)" if close else ""
    return f" that no model recipe matches: for a copy of a listed model pass recipe={listed}; otherwise pass"


# ---------------------------------------------------------------------------------------------- loading
_NAMED = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)


def accepted_options(cls: type) -> frozenset[str] | None:
    """The keyword arguments ``cls(...)`` accepts, or ``None`` when they cannot be read.

    A constructor with ``**options`` that hands them to ``super().__init__`` (``FirstReranker``,
    ``YesNoLLMReranker``, ...) accepts its own names plus those of the base classes up the MRO, up to the first
    ``__init__`` without ``**``; one that ends at ``object`` with ``**`` still open accepts anything (``None``).
    """
    names: set[str] = set()
    for klass in cls.__mro__:
        if klass is object:
            return None
        init = klass.__dict__.get("__init__")
        if init is None:
            continue
        try:
            params = inspect.signature(init).parameters
        except (TypeError, ValueError):  # pragma: no cover - builtins without a signature
            return None
        names |= {p.name for i, p in enumerate(params.values()) if i > 0 and p.kind in _NAMED}
        if not any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values()):
            return frozenset(names)
    return None  # pragma: no cover - every MRO ends at object


def _model_parameter(cls: type) -> str | None:
    """The name of the constructor's first parameter (the model), or ``None`` when it takes none."""
    params = [p for p in inspect.signature(cls).parameters.values() if p.kind in _NAMED]
    return params[0].name if params else None


def _check_options(spec: StrategySpec, cls: type, options: Mapping[str, Any], *, model_given: bool) -> None:
    """Reject an unknown option, or a strategy that needs a model and gets none, before anything loads."""
    valid = accepted_options(cls)
    if valid is not None:
        if model_given:  # the model goes in positionally: naming it again is not an option
            valid = valid - {_model_parameter(cls) or ""}
        unknown = sorted(set(options) - valid)
        if unknown:
            raise ConfigError(
                f"unknown option{'s' if len(unknown) > 1 else ''} {', '.join(map(repr, unknown))} for strategy "
                f"{spec.name!r} ({cls.__name__}); valid options: {', '.join(sorted(valid))}"
            )
    if spec.needs_model and not model_given:
        first = _model_parameter(cls)
        params = inspect.signature(cls).parameters
        if first is not None and first not in options and params[first].default is inspect.Parameter.empty:
            raise ConfigError(
                f"strategy {spec.name!r} needs a model: load_reranker(<bundled name, hub id or path>, "
                f"kind={spec.name!r}) or load_reranker({spec.name!r}, {first}=...); "
                f"bundled models: {', '.join(sorted(_MODELS))}"
            )


def _construct(spec: StrategySpec, options: dict[str, Any], model: ModelRef | None = None) -> Reranker:
    from .base import Reranker

    cls = spec.load_class()
    _check_options(spec, cls, options, model_given=model is not None)
    built = cls(**options) if model is None else cls(model, **options)
    if not isinstance(built, Reranker):
        raise ConfigError(
            f"strategy {spec.name!r} ({spec.target}) did not build a Reranker (got {type(built).__name__})"
        )
    return built


def load_reranker(
    name_or_path: str | ModelRef | os.PathLike[str], kind: str | None = None, **options: Any
) -> Reranker:
    """Build a reranker from a strategy name, a bundled model name, a hub id or a local path.

    Examples::

        load_reranker("minilm")                                   # bundled embedding model
        load_reranker("cross-encoder/ms-marco-MiniLM-L6-v2")      # hub cross-encoder (kind from its config)
        load_reranker("./my-model", kind="cross-encoder", max_length=256)
        load_reranker("smollm2-135m", kind="first")               # bundled LLM, FIRST strategy

    What is built is decided by :func:`rerank_plugins.resolution.resolve` (the one resolution the adapters, the
    service and the Ray job share). Raises :class:`~rerank_plugins.errors.ConfigError` for an unknown kind or
    option (naming the valid ones) and for a strategy that needs a model when none is given
    (``load_reranker("listwise")``).
    """
    from .resolution import resolve

    resolution = resolve(name_or_path, kind, options)
    if resolution.model is None:
        return _construct(resolution.spec, dict(resolution.options))
    ref = resolution.ref()
    if ref.gguf_file is None and resolution.options.get("backend", "transformers") in ("transformers", "vllm"):
        # loaded in this process: offline and not cached is said before torch and transformers are imported
        require_cached_offline(ref.name_or_path)
    return _construct(resolution.spec, dict(resolution.options), ref)


def build_reranker(
    model: Any,
    kind: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    what: str = "model",
    instruction: str | None = None,
) -> Reranker:
    """A :class:`~rerank_plugins.base.Reranker` from what a caller was given (the one place this is decided).

    * a built :class:`Reranker`: used as is (``kind`` / ``options`` with it are an error: they would be ignored);
    * a name, path or :class:`~rerank_plugins.refs.ModelRef`: ``load_reranker(model, kind, **options)``;
    * a mapping ``{"name": ..., "kind": ..., "options": {...}}`` (``kind`` and ``options`` optional): loaded the
      same way, so nested pipelines can be written as JSON (CLI ``-o``).

    ``what`` names the argument in error messages (``"reranker"``, ``"stage 2"``, ...). ``instruction`` is the
    ``instruction=`` option of the LLM strategies and recipes given as a separate field (the adapters' field): an
    error with a built reranker, where it would be silently ignored, and when ``options`` holds another one.
    """
    from .base import Reranker

    if instruction is not None:
        if not isinstance(instruction, str):
            raise ConfigError(f"instruction must be a str or None, got {type(instruction).__name__}")
        if isinstance(model, Reranker):
            raise ConfigError(
                f"kind/options/instruction apply only when the {what} is given by name; got an already-built "
                f"{type(model).__name__} as well: configure that object instead"
            )
        if options is not None and not isinstance(options, Mapping):
            raise ConfigError(
                f"{what}: 'options' must be a mapping of keyword arguments, got {type(options).__name__}"
            )
        given = dict(options or {})
        if given.get("instruction", instruction) != instruction:
            raise ConfigError("instruction is given twice, as a field and in options, with different values")
        options = {**given, "instruction": instruction}

    if isinstance(model, Reranker):
        if kind is not None or (options is not None and len(options) > 0):
            raise ConfigError(
                f"kind/options apply only when the {what} is given by name; got an already-built "
                f"{type(model).__name__} as well: configure that object instead"
            )
        return model
    if isinstance(model, Mapping):
        unknown = set(model) - {"name", "kind", "options"}
        if unknown or "name" not in model:
            raise ConfigError(
                f"{what}: a reranker spec is {{'name': ..., 'kind': ..., 'options': {{...}}}}, got {dict(model)!r}"
            )
        if kind is not None or options:
            raise ConfigError(f"{what}: give kind/options inside the reranker spec, not beside it")
        kind, options = model.get("kind"), model.get("options") or {}
        model = model["name"]
    if not isinstance(model, (str, os.PathLike, ModelRef)):
        raise ConfigError(
            f"{what} must be a Reranker, a model or strategy name, a path, a ModelRef or a "
            f"{{'name', 'kind', 'options'}} spec, got {type(model).__name__}"
        )
    if options is not None and not isinstance(options, Mapping):
        raise ConfigError(f"{what}: 'options' must be a mapping of keyword arguments, got {type(options).__name__}")
    return load_reranker(model, kind, **(dict(options) if options is not None else {}))


# The composite rankers (fusion, cascade, PRF, label ranking) build nested rerankers from names through this
# registry; handed down so that the strategies layer never imports the registry (tests/test_layers.py).
_compose.set_reranker_builder(build_reranker)
