"""The import picture of docs/architecture.md, checked: each module imports only its own layer and those below.

The layers are read from the table in docs/architecture.md and the modules from the package itself (``pkgutil``),
so no module name is written here: a module that sits in no layer fails, and so does a layer entry that names
nothing. Imports are read from the source with ``ast`` (every ``import`` and ``from ... import``, also inside
functions and under ``if TYPE_CHECKING:``), so a lazy import counts as an arrow too: importing a module in a
subprocess would not catch those, and ``import rerank_plugins.<anything>`` runs the package ``__init__``, which
imports the registry anyway. The adapters (``integrations/*``) may import only the public API,
``rerank_plugins.integration`` and ``rerank_plugins.validation``.
"""

from __future__ import annotations

import ast
import pkgutil
import re
from functools import cache
from pathlib import Path

import pytest

import rerank_plugins

PACKAGE = Path(rerank_plugins.__file__).parent
ROOT = PACKAGE.parent
DOC = ROOT / "docs" / "architecture.md"
ADAPTERS = "adapters"
#: what an adapter may import: the public API, the helpers the adapters share and the argument checks
ADAPTER_API = {"rerank_plugins", "rerank_plugins.integration", "rerank_plugins.validation"}


@cache
def modules() -> dict[str, Path]:
    """Every module of the package (``rerank_plugins.x.y``) and its source file, walked with pkgutil."""
    out = {"rerank_plugins": PACKAGE / "__init__.py"}
    for info in pkgutil.walk_packages(rerank_plugins.__path__, "rerank_plugins."):
        rel = Path(*info.name.split(".")[1:])
        out[info.name] = PACKAGE / rel / "__init__.py" if info.ispkg else (PACKAGE / rel).with_suffix(".py")
    return out


@cache
def layers() -> list[tuple[str, list[str]]]:
    """``(layer, entries)`` from the code block of docs/architecture.md, top layer first."""
    block = DOC.read_text().split("```\n")[1]
    out = []
    for line in block.splitlines()[1:]:  # the first line is the header
        m = re.match(r"^ (\w+(?: \w+)?)\s{2,}(\S.*)$", line)
        assert m, f"unreadable layer line in {DOC.name}: {line!r}"
        out.append((m.group(1), m.group(2).split()))
    return out


def entry_module(entry: str) -> str:
    """``models.py`` -> ``rerank_plugins.models``, ``rankers/`` -> ``rerank_plugins.rankers``."""
    if entry == "__init__.py":
        return "rerank_plugins"
    return "rerank_plugins." + entry.removesuffix("/").removesuffix(".py").replace("/", ".")


@cache
def layer_of() -> dict[str, int]:
    """Module -> layer height (0 is the bottom) for every module of the package; the longest entry wins."""
    height = {name: len(layers()) - 1 - i for i, (name, _) in enumerate(layers())}
    prefixes: dict[str, int] = {}
    for name, entries in layers():
        if name == ADAPTERS:
            continue
        for entry in entries:
            prefixes[entry_module(entry)] = height[name]
    out: dict[str, int] = {}
    for module in modules():
        owners = [p for p in prefixes if module == p or (p != "rerank_plugins" and module.startswith(p + "."))]
        if owners:
            out[module] = prefixes[max(owners, key=len)]
    return out


def layer_name(height: int) -> str:
    return layers()[len(layers()) - 1 - height][0]


def imported_modules(module: str, path: Path, source: str | None = None) -> set[str]:
    """The package modules ``module`` (or ``source`` read as that module) imports, relative imports resolved,
    ``from x import name`` counted as ``x.name`` where that is a module."""
    here = module.split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            target = ".".join([*base, *(node.module.split(".") if node.module else [])])
            found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)  # from . import models
    known = modules()
    out = set()
    for name in found:
        while name and name not in known:
            name = name.rpartition(".")[0]
        if name.startswith("rerank_plugins") and name != module:
            out.add(name)
    return out


def upward_imports(module: str, source: str | None = None) -> list[str]:
    """The imports of ``module`` (its file, or ``source`` read as it) that point to a higher layer."""
    height = layer_of()
    return sorted(
        f"{module} ({layer_name(height[module])}) -> {target} ({layer_name(height[target])})"
        for target in imported_modules(module, modules()[module], source)
        if height[target] > height[module]
    )


# ---------------------------------------------------------------------------------------------- the doc itself
def test_the_doc_lists_the_layers_top_to_bottom() -> None:
    names = [name for name, _ in layers()]
    assert names[0] == ADAPTERS and names[-1] == "core values" and len(set(names)) == len(names) >= 6


def test_every_module_sits_in_a_layer() -> None:
    unplaced = sorted(set(modules()) - set(layer_of()))
    assert unplaced == [], f"add these modules to the layer table of {DOC.name}: {unplaced}"
    assert "rerank_plugins._classify" in layer_of()  # the module, not a public name that shadows it


def test_every_layer_entry_names_real_code() -> None:
    for name, entries in layers():
        for entry in entries:
            if name == ADAPTERS:
                assert (ROOT / entry).is_dir(), entry
            else:
                assert entry_module(entry) in modules(), f"{DOC.name} names {entry!r}, which is no module"


# ---------------------------------------------------------------------------------------------- the arrows
@pytest.mark.parametrize("module", sorted(modules()))
def test_no_arrow_runs_up_the_layers(module: str) -> None:
    assert upward_imports(module) == []


def _adapter_sources() -> list[Path]:
    entries = dict(layers())[ADAPTERS]
    return sorted(
        p for entry in entries for p in (ROOT / entry).rglob("*.py")
        if "tests" not in p.relative_to(ROOT / entry).parts
    )


def adapter_imports(path: Path, source: str | None = None) -> set[str]:
    """The ``rerank_plugins`` modules an adapter file imports (absolute imports: it is another package)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return {name for name in found if name in modules()}


def test_the_adapters_use_only_the_public_api() -> None:
    sources = _adapter_sources()
    assert len(sources) >= 3
    beyond = {str(p.relative_to(ROOT)): sorted(adapter_imports(p) - ADAPTER_API) for p in sources}
    assert {p: b for p, b in beyond.items() if b} == {}


# ---------------------------------------------------------------------------------------------- the checker
def _relative(module: str, target: str) -> str:
    """``from <dots><rest> import <last>`` of ``target`` as written inside ``module``."""
    path = modules()[module]
    package = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    parent, _, last = target.rpartition(".")
    rest = parent.split(".")[1:]
    return f"from {'.' * len(package)}{'.'.join(rest)} import {last}"


def test_a_planted_upward_import_fails_from_every_module() -> None:
    """Every module, given a lazy import (inside a function) of one module of each layer above its own, the
    strategies layer's ``_classify`` among them, is caught: once per planted import, relative or absolute."""
    height = layer_of()
    top = max(height.values())
    representative = {h: min((m for m in height if height[m] == h), key=len) for h in set(height.values())}
    representative[height["rerank_plugins._classify"]] = "rerank_plugins._classify"
    planted_total = 0
    for module, path in modules().items():
        targets = sorted(representative[h] for h in range(height[module] + 1, top + 1))
        if not targets:
            continue
        lines = []
        for i, target in enumerate(targets):
            statement = _relative(module, target) if i % 2 == 0 else f"import {target}"
            lines.append(f"def _planted_{i}():\n    {statement}\n")
        source = path.read_text() + "\n\n" + "\n".join(lines)
        caught = {entry.split(" -> ")[1].split(" ")[0] for entry in upward_imports(module, source)}
        assert caught == set(targets), module
        planted_total += len(targets)
    assert planted_total > 100


def test_the_checker_reads_lazy_relative_and_type_checking_imports() -> None:
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from ..models import load_reranker\n"
        "def f():\n    from .. import _classify\n    from . import windows\n"
    )
    found = imported_modules("rerank_plugins.engine.fusion", PACKAGE / "engine" / "fusion.py", source)
    assert found == {"rerank_plugins", "rerank_plugins.models", "rerank_plugins._classify",
                     "rerank_plugins.engine", "rerank_plugins.engine.windows"}
    assert upward_imports("rerank_plugins.engine.fusion", source) == [
        "rerank_plugins.engine.fusion (low layer) -> rerank_plugins (public API)",
        "rerank_plugins.engine.fusion (low layer) -> rerank_plugins._classify (strategies)",
        "rerank_plugins.engine.fusion (low layer) -> rerank_plugins.models (registry)",
    ]
    planted = "from rerank_plugins.rankers.listwise import ListwiseReranker\n"
    assert adapter_imports(Path("x.py"), planted) == {"rerank_plugins.rankers.listwise"}
