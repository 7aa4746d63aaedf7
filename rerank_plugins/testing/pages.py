"""Page screenshots rendered from real text, for multimodal tests, examples and benchmarks (needs Pillow).

Document-retrieval benchmarks such as MMDocIR rank *page images*. :func:`render_page` draws a title and a
word-wrapped body on a white page with Pillow's bundled font, so a test can rank screenshots of real documents
without shipping images. :func:`page_candidates` builds such a set from Cranfield (its abstracts, with the
collection's relevance judgments) or, when Cranfield is not on disk, from the bundled construction FAQ.
"""

from __future__ import annotations

import io
import random
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._optional import require
from ..types import Candidate

__all__ = ["PageSet", "page_candidates", "page_png", "render_page"]

#: An A4-shaped page (1 : 1.414) at a screen-like width.
DEFAULT_SIZE = (640, 905)


def _font(size: int) -> Any:
    font_mod = require("PIL.ImageFont", "vision")
    try:
        return font_mod.load_default(size=size)
    except TypeError:  # Pillow < 10.1: one bitmap size only
        return font_mod.load_default()


def _wrap(draw: Any, text: str, font: Any, width: int) -> list[str]:
    lines: list[str] = []
    current = ""
    for word in text.split():
        trial = f"{current} {word}".strip()
        if current and draw.textlength(trial, font=font) > width:
            lines.append(current)
            current = word
        else:
            current = trial
    if current:
        lines.append(current)
    return lines


def render_page(
    text: str,
    *,
    title: str | None = None,
    size: tuple[int, int] = DEFAULT_SIZE,
    font_size: int = 16,
    margin: int = 40,
    footer: str | None = None,
) -> Any:
    """A white RGB page with ``title`` (larger) and ``text`` word-wrapped; text that does not fit is left off."""
    image_mod = require("PIL.Image", "vision")
    draw_mod = require("PIL.ImageDraw", "vision")
    page = image_mod.new("RGB", size, "white")
    draw = draw_mod.Draw(page)
    width = size[0] - 2 * margin
    y = margin
    if title:
        big = _font(int(font_size * 1.4))
        for line in _wrap(draw, title, big, width):
            draw.text((margin, y), line, fill=(10, 10, 10), font=big)
            y += int(font_size * 1.4 * 1.35)
        y += font_size
    body = _font(font_size)
    bottom = size[1] - margin - (2 * font_size if footer else 0)
    for line in _wrap(draw, text, body, width):
        if y + font_size > bottom:
            break
        draw.text((margin, y), line, fill=(30, 30, 30), font=body)
        y += int(font_size * 1.45)
    if footer:
        draw.text((margin, size[1] - margin - font_size), footer, fill=(120, 120, 120), font=_font(font_size - 3))
    return page


def page_png(text: str, **options: Any) -> bytes:
    """:func:`render_page` encoded as PNG bytes."""
    buf = io.BytesIO()
    render_page(text, **options).save(buf, "PNG")
    return buf.getvalue()


@dataclass(frozen=True)
class PageSet:
    """A query and candidate pages rendered from a test collection, with the collection's judgments."""

    query: str
    candidates: list[Candidate]
    gains: dict[str, int]
    source: str


def page_candidates(
    k: int = 8,
    *,
    query_index: int = 0,
    folder: str | Path | None = None,
    with_text: bool = False,
    seed: int = 13,
    size: tuple[int, int] = DEFAULT_SIZE,
) -> PageSet:
    """``k`` candidate pages for one judged query: its relevant documents first found in the judgments (up to
    half of ``k``), then non-relevant ones drawn with ``seed``, shuffled with ``seed``.

    Pages are written as PNG files into ``folder`` (candidates carry the path) or kept as PNG bytes. With
    ``with_text`` each candidate also carries the document text (a mixed image+text candidate).
    """
    from ..eval.datasets import DataFormatError, load_cranfield, load_faq

    try:
        ds = load_cranfield()
    except DataFormatError:
        ds = load_faq()
    qid = ds.judged_query_ids[query_index]
    judged = ds.qrels[qid]
    rng = random.Random(seed)
    relevant = [d for d, g in judged.items() if g > 0 and d in ds.corpus][: max(1, k // 2)]
    others = sorted(d for d in ds.corpus if judged.get(d, 0) <= 0 and any(ds.corpus[d]))
    chosen: Sequence[str] = relevant + rng.sample(others, k - len(relevant))
    chosen = list(chosen)
    rng.shuffle(chosen)
    out_dir = Path(folder) if folder is not None else None
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    candidates = []
    for doc_id in chosen:
        title, text = ds.corpus[doc_id]
        if title and text.startswith(title):  # Cranfield's text repeats the title
            text = text[len(title) :].strip()
        png = page_png(text or title, title=title or None, size=size, footer=f"{ds.name} document {doc_id}")
        image: Any = png
        if out_dir is not None:
            path = out_dir / f"{ds.name}-{doc_id}.png"
            path.write_bytes(png)
            image = str(path)
        candidates.append(
            Candidate(
                id=doc_id,
                text=ds.document_text(doc_id) if with_text else None,
                image=image,
                metadata={"source": ds.name, "gain": judged.get(doc_id, 0)},
            )
        )
    return PageSet(ds.queries[qid], candidates, {d: judged.get(d, 0) for d in chosen}, ds.name)
