"""docs/choosing.md quotes only figures measured in docs/benchmarks.md and docs/methods.md, and every link it
makes (page and section) resolves; docs/index.md and the README link to it (issue 21 item 20)."""

from __future__ import annotations

import re
from pathlib import Path

DOCS = Path(__file__).resolve().parents[2] / "docs"
PAGE = DOCS / "choosing.md"
#: figures the page derives from measured ones (said so where they appear)
DERIVED = {"2.7"}  # 110.5 / 41.3 pairs/s


def _anchor(heading: str) -> str:
    """GitHub's anchor of a markdown heading: lower case, punctuation dropped, spaces as hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def _anchors(page: Path) -> set[str]:
    return {_anchor(m.group(1)) for m in re.finditer(r"^#+ (.+)$", page.read_text(encoding="utf-8"), re.M)}


def test_every_figure_is_one_measured_in_benchmarks_or_methods() -> None:
    text = PAGE.read_text(encoding="utf-8")
    prose = re.sub(r"\]\([^)]*\)", "]", text)  # link targets hold no figures
    measured = (DOCS / "benchmarks.md").read_text(encoding="utf-8") + (DOCS / "methods.md").read_text(encoding="utf-8")
    figures = set(re.findall(r"(?<![\w.])[+-]?\d+\.\d+(?:e-\d+)?", prose))
    assert len(figures) > 40
    missing = sorted(f for f in figures - DERIVED if f.lstrip("+-") not in measured)
    assert not missing, f"figures in choosing.md found in neither benchmarks.md nor methods.md: {missing}"


def test_every_link_resolves_to_a_page_and_a_section() -> None:
    links = re.findall(r"\]\(([^)#\s]+\.md)(?:#([^)\s]+))?\)", PAGE.read_text(encoding="utf-8"))
    assert len(links) > 10
    for page, anchor in links:
        target = DOCS / page
        assert target.is_file(), page
        if anchor:
            assert anchor in _anchors(target), f"{page}#{anchor} names no section of {page}"


def test_the_index_and_the_readme_link_to_it() -> None:
    assert "(choosing.md)" in (DOCS / "index.md").read_text(encoding="utf-8")
    assert "(docs/choosing.md)" in (DOCS.parent / "README.md").read_text(encoding="utf-8")
