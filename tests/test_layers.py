"""The import picture: the low layer (refs, file cache, engine, backends) never imports the registry or above.

Read from the source with ``ast`` (every ``import`` and ``from ... import``, also inside functions), so a lazy
import inside a function counts as an arrow too: importing a module in a subprocess would not catch those, and
``import rerank_plugins.<anything>`` runs the package ``__init__``, which imports the registry anyway.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

import rerank_plugins

PACKAGE = Path(rerank_plugins.__file__).parent
LOW_LAYER = [
    "refs.py",
    "file_cache.py",
    "errors.py",
    "types.py",
    "_optional.py",
    "_http.py",
    *sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "engine").glob("*.py")),
    *sorted(str(p.relative_to(PACKAGE)) for p in (PACKAGE / "backends").glob("*.py")),
]
#: the registry and everything built on it
UPPER = (
    "models", "resolution", "recipes", "rankers", "integration", "serve", "batch", "commands", "cli", "classify", "eval"
)


def _module_name(path: Path) -> list[str]:
    parts = ["rerank_plugins", *path.relative_to(PACKAGE).with_suffix("").parts]
    return parts[:-1] if parts[-1] == "__init__" else parts


def imported_modules(path: Path, source: str | None = None) -> set[str]:
    """Absolute names of every module ``path`` (or ``source`` read as that file) imports, relative ones resolved."""
    here = _module_name(path)
    package = here if path.name == "__init__.py" else here[:-1]
    out: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text() if source is None else source, str(path))):
        if isinstance(node, ast.Import):
            out.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *(node.module.split(".") if node.module else [])])
            out.add(module)
            out.update(f"{module}.{alias.name}" for alias in node.names)  # from . import models
    return out


def test_the_low_layer_lists_real_files() -> None:
    for name in LOW_LAYER:
        assert (PACKAGE / name).is_file(), name
    assert len(LOW_LAYER) > 15


@pytest.mark.parametrize("name", LOW_LAYER)
def test_no_arrow_from_the_low_layer_to_the_registry(name: str) -> None:
    upward = sorted(
        m for m in imported_modules(PACKAGE / name) if any(m.startswith(f"rerank_plugins.{u}") for u in UPPER)
    )
    assert upward == [], f"{name} imports {upward}"


def test_the_checker_sees_lazy_and_relative_imports() -> None:
    """The checker itself: a lazy relative import of the registry inside a function is found."""
    found = imported_modules(PACKAGE / "backends" / "loader.py")
    assert "rerank_plugins.refs" in found and "rerank_plugins.refs.resolve_model" in found
    source = "def f():\n    from ..models import load_reranker\n    from . import windows\n"
    found = imported_modules(PACKAGE / "engine" / "probe.py", source)
    assert {"rerank_plugins.models", "rerank_plugins.engine", "rerank_plugins.engine.windows"} <= found
