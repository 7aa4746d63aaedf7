"""The one resolution: (model, kind, recipe, options) -> (strategy, recipe, merged options).

:func:`resolve` is the only place that decides which strategy class a model runs with and under which options:
:func:`~rerank_plugins.models.load_reranker` (and so :func:`~rerank_plugins.models.build_reranker`, the service and
the Ray job) builds what it answers, and the adapters' :func:`~rerank_plugins.integration.host_options` reads the
strategy class from it to place the host's loading conventions. It reads nothing from the environment (tokens,
offline mode): the same arguments give the same answer everywhere. In this order:

1. a strategy name with no ``kind`` (``"fusion"``, ``"remote"``): that strategy, the options as given;
2. a bundled model name: its default kind unless ``kind`` is given;
3. a recipe (:mod:`rerank_plugins.recipes`): ``recipe=`` (an argument or ``options["recipe"]``), else the one
   :func:`~rerank_plugins.recipes.match_recipe` finds for a hub id or a local folder (cache layout,
   ``_name_or_path``, or the architecture and sizes in its ``config.json``). Its kind and options apply, the
   caller's options on top. A recipe found from a folder's config is reported in a log line; one whose kind
   contradicts an explicit ``kind`` is left out with a warning (the caller's choice wins), and an explicit
   ``recipe=`` that contradicts ``kind`` is a :class:`~rerank_plugins.errors.ConfigError`;
4. otherwise the kind is read from the model's own files (:func:`~rerank_plugins.models.detect_kind`).
"""

from __future__ import annotations

import logging
import os
import warnings
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ._warnings import caller_stacklevel
from .errors import ConfigError
from .models import StrategySpec, detect_kind, strategies
from .refs import ModelRef, bundled_models, resolve_model

if TYPE_CHECKING:
    from .recipes import Recipe, RecipeMatch

__all__ = ["Resolution", "resolve"]

logger = logging.getLogger(__name__)

ModelArg = str | os.PathLike[str] | ModelRef


@dataclass(frozen=True)
class Resolution:
    """What :func:`resolve` decided: the strategy, the recipe (if any) and how it was found, the merged options."""

    spec: StrategySpec
    #: the options the strategy is built with: the recipe's, then the caller's (``recipe`` itself taken out)
    options: Mapping[str, Any]
    #: the model as given (``None``: a strategy used by name, whose options carry its models)
    model: ModelArg | None = None
    recipe: Recipe | None = None
    #: how the recipe was found (``None`` with ``recipe=`` or without a recipe)
    match: RecipeMatch | None = None
    _ref: list[ModelRef] = field(default_factory=list, repr=False, compare=False)

    @property
    def kind(self) -> str:
        return self.spec.name

    def strategy_class(self) -> type:
        return self.spec.load_class()

    def ref(self) -> ModelRef:
        """The model's :class:`ModelRef` (a bundled model's files are located here, once)."""
        if self.model is None:
            raise ConfigError(f"strategy {self.kind!r} was resolved without a model")
        if not self._ref:
            self._ref.append(resolve_model(self.model))
        return self._ref[0]


def _model_text(model: ModelArg) -> str:
    return model.name_or_path if isinstance(model, ModelRef) else os.fspath(model)


def _recipe_argument(recipe: Any, options: dict[str, Any]) -> Recipe | None:
    from .recipes import get_recipe

    in_options = options.pop("recipe", None)
    if recipe is not None and in_options is not None and in_options != recipe:
        raise ConfigError(f"recipe is given twice with different values: {recipe!r} and options {in_options!r}")
    name = recipe if recipe is not None else in_options
    if name is None:
        return None
    if not isinstance(name, str):
        raise ConfigError(f"recipe must be a recipe name or hub id, got {name!r}")
    return get_recipe(name)


def resolve(
    model: ModelArg,
    kind: str | None = None,
    options: Mapping[str, Any] | None = None,
    *,
    recipe: str | None = None,
    report: bool = True,
) -> Resolution:
    """Which strategy, recipe and options ``model`` (with ``kind``, ``recipe`` and ``options``) loads with.

    Reads at most the model's ``config.json`` (and, for a hub id that is in no recipe and has no ``kind``, its
    config through transformers, as :func:`~rerank_plugins.models.detect_kind` does); loads no weights.
    ``report=False`` keeps the log line and the warning for a second resolution of the same arguments (the
    adapters resolve once to place their options, then load). Unknown kinds and recipes, and a strategy name
    with ``recipe=``, are a :class:`ConfigError`.
    """
    known = strategies()
    given = dict(options or {})
    if kind is not None and kind not in known:
        raise ConfigError(f"unknown kind {kind!r}; known kinds: {sorted(known)}")
    if isinstance(model, str) and model in known and kind is None:
        if recipe is not None or "recipe" in given:
            raise ConfigError(f"recipe= needs a model; {model!r} is a strategy name")
        return Resolution(known[model], given)
    explicit = _recipe_argument(recipe, given)
    if isinstance(model, str) and model in bundled_models():
        kind = kind if kind is not None else bundled_models()[model].default_kind
    chosen, match = explicit, None
    if explicit is not None:
        if kind is not None and kind != explicit.kind:
            raise ConfigError(
                f"recipe {explicit.name!r} runs kind={explicit.kind!r}, but kind={kind!r} was given: pass one of them"
            )
    elif not (isinstance(model, ModelRef) and model.gguf_file is not None) and not (
        isinstance(model, str) and model in bundled_models()
    ):
        from .recipes import match_recipe

        match = match_recipe(_model_text(model))
        if match is not None and kind is not None and kind != match.recipe.kind:
            if match.rule == "config" and report:  # a folder taken for a listed model: say what is left out
                warnings.warn(
                    f"{match.describe(_model_text(model))}; kind={kind!r} was given, so the recipe's prompt and "
                    f"options are not used (leave kind out to use them, or pass recipe= for another)",
                    UserWarning, stacklevel=caller_stacklevel(),
                )
            match = None  # the caller's explicit kind wins
        elif match is not None and match.rule == "config" and report:
            logger.info("%s: using its options (pass recipe= to choose another)", match.describe(_model_text(model)))
        chosen = match.recipe if match is not None else None
    if chosen is not None:
        return Resolution(known[chosen.kind], chosen.merged_options(given), model, chosen, match)
    if kind is None:
        ref = resolve_model(model)
        return Resolution(known[detect_kind(ref)], given, model, _ref=[ref])
    return Resolution(known[kind], given, model)
