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
  (``models--Org--Name/snapshots/<rev>``) or from ``_name_or_path`` in its ``config.json``; any other folder can
  name its recipe explicitly: ``load_reranker("./my-copy", recipe="Qwen/Qwen3-Reranker-0.6B")``;
* a model that is in no recipe still has its kind read from its own config (never from a substring of its name).

A family module registers its recipes with :func:`register_recipe` when it is imported; :func:`recipes` imports
every family module listed in :data:`FAMILY_MODULES` first, so the table is always complete.
"""

from __future__ import annotations

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

__all__ = ["FAMILY_MODULES", "Recipe", "find_recipe", "get_recipe", "recipes", "register_recipe"]

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

    def __post_init__(self) -> None:
        if not self.name or not self.ids:
            raise ConfigError("a recipe needs a name and at least one hub id")
        object.__setattr__(self, "ids", tuple(self.ids))
        object.__setattr__(self, "options", MappingProxyType(dict(self.options)))

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


def _hub_id_of_folder(path: Path) -> str | None:
    match = _HF_CACHE.search(str(path))
    if match:
        return f"{match['org']}/{match['name']}"
    config = path / "config.json"
    if config.is_file():
        try:
            value = json.loads(config.read_text(encoding="utf-8")).get("_name_or_path")
        except (OSError, ValueError):
            return None
        if isinstance(value, str) and value:
            return value
    return None


def find_recipe(name_or_path: str | os.PathLike[str]) -> Recipe | None:
    """The recipe covering a hub id or a local folder of a listed model, or ``None``."""
    _load_families()
    value = os.fspath(name_or_path)
    owner = _BY_ID.get(value.lower())
    if owner is None:
        path = Path(value).expanduser()
        if path.is_dir():
            hub_id = _hub_id_of_folder(path.resolve())
            owner = _BY_ID.get(hub_id.lower()) if hub_id else None
    return _RECIPES[owner] if owner is not None else None
