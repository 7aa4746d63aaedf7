"""Model recipes: how a public model becomes a one-line load, as data.

A :class:`Recipe` lists the exact hub ids it covers, the strategy kind that runs them, the constructor options
that reproduce the authors' own code (prompt template or raw format, special-token policy, label tokens and
score formula, default instruction, lengths, padding side, dtype advice) and the reference implementation it
was proven equal to (package, version, file). One table, filled by the family modules of this package
(``pointwise``, ``seq2seq``, ``late_interaction``, ``listwise``), listed by ``rerank-plugins models`` and read by
:func:`~rerank_plugins.load_reranker`:

* ``load_reranker("Qwen/Qwen3-Reranker-0.6B")`` finds the recipe by its exact hub id (hub ids are matched
  case-insensitively, as the hub resolves them) and builds its strategy with the recipe's options; every option
  the caller passes overrides the recipe's;
* a local folder of a listed model is recognised from the Hugging Face cache layout
  (``models--Org--Name/snapshots/<rev>``), from ``_name_or_path`` in its ``config.json``, or from its
  ``config.json`` values where a recipe lists them for its hub ids (:attr:`Recipe.configs`: the architecture and
  sizes of a ``--local-dir`` copy, whose config has no ``_name_or_path``) and they identify one family
  (:func:`match_recipe` says which rule matched); any other folder can name its recipe explicitly:
  ``load_reranker("./my-copy", recipe="Qwen/Qwen3-Reranker-0.6B")``;
* a model that is in no recipe still has its kind read from its own config (never from a substring of its name).

A family module registers its recipes with :func:`register_recipe` when it is imported; :func:`recipes` imports
every family module listed in :data:`FAMILY_MODULES` first, so the table is always complete.
"""

from __future__ import annotations

import difflib
import importlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ..errors import ConfigError

__all__ = [
    "FAMILY_MODULES",
    "Recipe",
    "RecipeMatch",
    "closest_recipes",
    "find_recipe",
    "get_recipe",
    "match_recipe",
    "recipes",
    "register_recipe",
]

#: Family modules that register recipes (imported lazily, in this order, by :func:`recipes`).
FAMILY_MODULES: list[str] = []
FAMILY_MODULES += [
    "rerank_plugins.recipes.cross_encoders",
    "rerank_plugins.recipes.seq2seq",
    "rerank_plugins.recipes.late_interaction",
    "rerank_plugins.recipes.pointwise",
]
FAMILY_MODULES += ["rerank_plugins.recipes.listwise"]


@dataclass(frozen=True)
class Recipe:
    """One model family's exact loading and scoring rules (see the module docstring)."""

    #: short unique name of the recipe (``"qwen3-reranker"``); also accepted by ``recipe=``
    name: str
    #: exact hub ids this recipe covers (``"Qwen/Qwen3-Reranker-0.6B"``, ...)
    ids: tuple[str, ...]
    #: model family shown by ``rerank-plugins models`` (``"Qwen3-Reranker"``)
    family: str
    #: strategy kind (a key of :func:`~rerank_plugins.strategies`)
    kind: str
    #: reference implementation the recipe was proven equal to: package==version and file
    reference: str
    #: constructor options of the strategy; the caller's options override these
    options: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""
    #: where a paper and the reference code disagree, and what was followed
    notes: str = ""
    #: model classes of the listed checkpoints (``config.json`` ``architectures``): names the closest recipes when
    #: a folder of a generative model matches none
    architectures: tuple[str, ...] = ()
    #: hub id -> ``config.json`` values of that published checkpoint that, all equal, identify a local copy without
    #: ``_name_or_path`` (architecture and sizes; only where no other family shares them)
    configs: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.name or not self.ids:
            raise ConfigError("a recipe needs a name and at least one hub id")
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "architectures", tuple(self.architectures))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))
        unknown = sorted(set(self.configs) - set(self.ids))
        if unknown:
            raise ConfigError(f"recipe {self.name!r}: configs given for ids it does not list: {unknown}")
        object.__setattr__(
            self, "configs", MappingProxyType({k: MappingProxyType(dict(v)) for k, v in self.configs.items()})
        )

    def merged_options(self, overrides: Mapping[str, Any]) -> dict[str, Any]:
        """The recipe's options with the caller's ``overrides`` applied on top."""
        return {**self.options, **overrides}


_RECIPES: dict[str, Recipe] = {}
_BY_ID: dict[str, str] = {}  # lower-cased hub id -> recipe name
_loaded = False


def register_recipe(recipe: Recipe) -> Recipe:
    """Add ``recipe`` to the table; a name or hub id already taken by another recipe is a :class:`ConfigError`."""
    if recipe.name in _RECIPES and _RECIPES[recipe.name] != recipe:
        raise ConfigError(f"recipe {recipe.name!r} is already registered")
    for hub_id in recipe.ids:
        owner = _BY_ID.get(hub_id.lower())
        if owner is not None and owner != recipe.name:
            raise ConfigError(f"hub id {hub_id!r} is already covered by recipe {owner!r}")
    _RECIPES[recipe.name] = recipe
    for hub_id in recipe.ids:
        _BY_ID[hub_id.lower()] = recipe.name
    return recipe


def _load_families() -> None:
    global _loaded
    if _loaded:
        return
    for module in FAMILY_MODULES:
        importlib.import_module(module)
    _loaded = True


def recipes() -> dict[str, Recipe]:
    """Every registered recipe by name."""
    _load_families()
    return dict(_RECIPES)


def get_recipe(name_or_id: str) -> Recipe:
    """A recipe by its name or by one of its hub ids; an unknown one is a :class:`ConfigError` listing the names."""
    _load_families()
    if name_or_id in _RECIPES:
        return _RECIPES[name_or_id]
    owner = _BY_ID.get(name_or_id.lower())
    if owner is not None:
        return _RECIPES[owner]
    raise ConfigError(f"unknown recipe {name_or_id!r}; known recipes: {sorted(_RECIPES)}")


_HF_CACHE = re.compile(r"models--(?P<org>[^/\\]+?)--(?P<name>[^/\\]+)[/\\]snapshots[/\\][^/\\]+[/\\]?$")


@dataclass(frozen=True)
class RecipeMatch:
    """How a hub id or a local folder was matched to a recipe (:func:`match_recipe`)."""

    recipe: Recipe
    #: the listed hub id the model is (or is a copy of)
    hub_id: str
    #: ``"hub id"``, ``"cache layout"``, ``"_name_or_path"`` or ``"config"`` (architecture and sizes)
    rule: str

    def describe(self, model: str) -> str:
        """One line saying which recipe ``model`` runs with and why (for logs and error messages)."""
        how = {
            "hub id": "is a listed hub id",
            "cache layout": f"is the Hugging Face cache entry of {self.hub_id}",
            "_name_or_path": f"names {self.hub_id} as _name_or_path in its config.json",
            "config": f"has the architecture and sizes of {self.hub_id} in its config.json",
        }[self.rule]
        return f"{model!r} {how}: recipe {self.recipe.name!r} ({self.recipe.family}, kind={self.recipe.kind!r})"


def _read_config(path: Path) -> dict[str, Any] | None:
    try:
        value = json.loads((path / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return value if isinstance(value, dict) else None


def _by_config(config: Mapping[str, Any]) -> RecipeMatch | None:
    """The one recipe family whose listed ``configs`` all agree with ``config`` (``None``: none, or several)."""
    found: dict[str, RecipeMatch] = {}
    for recipe in _RECIPES.values():
        for hub_id, values in recipe.configs.items():
            if values and all(_same(config.get(key), value) for key, value in values.items()):
                found.setdefault(recipe.family, RecipeMatch(recipe, hub_id, "config"))
    return next(iter(found.values())) if len(found) == 1 else None


def _same(got: Any, want: Any) -> bool:
    if isinstance(want, (list, tuple)):
        return isinstance(got, (list, tuple)) and list(got) == list(want)
    return bool(got == want) and isinstance(got, bool) == isinstance(want, bool)


def match_recipe(name_or_path: str | os.PathLike[str]) -> RecipeMatch | None:
    """The recipe covering a hub id or a local folder of a listed model, and the rule that matched, or ``None``.

    In this order: an exact hub id; a folder in the Hugging Face cache layout of a listed id; a folder whose
    ``config.json`` names a listed id as ``_name_or_path``; a folder whose ``config.json`` has the values a recipe
    lists for one of its ids (:attr:`Recipe.configs`), when they identify exactly one family.
    """
    _load_families()
    value = os.fspath(name_or_path)
    owner = _BY_ID.get(value.lower())
    if owner is not None:
        return RecipeMatch(_RECIPES[owner], value, "hub id")
    path = Path(value).expanduser()
    if not path.is_dir():
        return None
    path = path.resolve()
    cache = _HF_CACHE.search(str(path))
    config = _read_config(path)
    named = config.get("_name_or_path") if config is not None else None
    for hub_id, rule in ((f"{cache['org']}/{cache['name']}" if cache else None, "cache layout"),
                         (named if isinstance(named, str) and named else None, "_name_or_path")):
        if hub_id is not None:
            owner = _BY_ID.get(hub_id.lower())
            if owner is not None:
                return RecipeMatch(_RECIPES[owner], hub_id, rule)
    if config is None or (path / "modules.json").is_file():
        return None  # a sentence-transformers folder (Qwen3-Embedding has Qwen3-Reranker's sizes) is no copy
    return _by_config(config)


def find_recipe(name_or_path: str | os.PathLike[str]) -> Recipe | None:
    """The recipe covering a hub id or a local folder of a listed model, or ``None`` (see :func:`match_recipe`)."""
    match = match_recipe(name_or_path)
    return match.recipe if match is not None else None


def closest_recipes(architectures: list[str] | tuple[str, ...], name: str = "", *, n: int = 3) -> list[Recipe]:
    """Recipes a model of these ``architectures`` (and this folder or hub ``name``) most likely wants: those that list
    one of its architectures, the ones whose hub ids look most like ``name`` first; else the closest by name."""
    _load_families()
    tail = os.path.basename(os.path.normpath(name)).lower() if name else ""

    def likeness(recipe: Recipe) -> float:
        ids = [i.split("/")[-1].lower() for i in recipe.ids] + [recipe.name.lower()]
        return max(difflib.SequenceMatcher(None, tail, i).ratio() for i in ids) if tail else 0.0

    same_arch = [r for r in _RECIPES.values() if set(r.architectures) & set(architectures)]
    pool = same_arch or [r for r in _RECIPES.values() if r.architectures]
    ranked = sorted(pool, key=lambda r: (-likeness(r), r.name))
    return ranked[:n]
