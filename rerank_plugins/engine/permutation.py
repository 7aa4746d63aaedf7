"""Parse a listwise model's answer (``[3] > [1] > [2]`` and its common variants) into a permutation.

:func:`parse_permutation` never guesses silently: it returns the permutation together with
:class:`RepairCounts` saying what had to be fixed, and raises :class:`~rerank_plugins.errors.ModelOutputError`
(with the raw text) when the answer contains no usable identifier at all.

Rules, in order:

1. The text is NFKC-normalised, so full-width digits and brackets (``［３］``) read as ASCII; other Unicode
   decimal digits (Arabic-Indic, Devanagari, ...) are read by their digit value.
2. Identifiers are searched in tiers, and the first tier that finds any is used alone (so numbers in prose
   around a bracketed answer are never mistaken for identifiers):

   a. bracketed: ``[3]``, ``(3)``, ``【3】`` (and ``[C]`` for letter schemes);
   b. prefixed: ``Passage 3``, ``passage #3``, ``Document C``, ``doc 2``, ``ID 4``;
   c. the longest chain of bare identifiers joined by ``>``, ``,``, ``;``, ``|`` or an arrow: ``3 > 1 > 2``,
      ``3, 1, 2``, ``C > A``;
   d. numbers only: any standalone number; letters only: the whole answer is letters and separators
      (``"C A B"``), because single letters in prose (``I``, ``a``) are words, not identifiers.
3. Repairs: a repeated identifier keeps its first occurrence (``duplicates``); an identifier outside the
   window (``[25]`` in a window of 20) is dropped (``out_of_range``); identifiers the answer left out are
   appended in input order (``missing``; not counted when ``complete=False``, for formats that name only the
   best passage such as Rank-R1). ``garbage_tokens`` counts the words of the answer that are neither
   identifiers nor separators (``"Sure! Here is the ranking:"`` adds 5).
4. No identifier inside the window at all is total garbage: :class:`ModelOutputError`, or with
   ``fallback=True`` the input order with every id counted as missing.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from ..errors import ModelOutputError
from .identifiers import IdScheme, get_scheme

__all__ = ["RepairCounts", "extract_identifiers", "format_permutation", "parse_permutation"]


@dataclass(frozen=True)
class RepairCounts:
    """What :func:`parse_permutation` had to fix in one answer."""

    duplicates: int = 0
    out_of_range: int = 0
    missing: int = 0
    garbage_tokens: int = 0

    @property
    def total(self) -> int:
        """Repairs that changed the permutation (garbage words around a valid answer are not counted)."""
        return self.duplicates + self.out_of_range + self.missing

    def as_dict(self) -> dict[str, int]:
        return {
            "duplicates": self.duplicates,
            "out_of_range": self.out_of_range,
            "missing": self.missing,
            "garbage_tokens": self.garbage_tokens,
        }

    def __add__(self, other: RepairCounts) -> RepairCounts:
        return RepairCounts(
            self.duplicates + other.duplicates,
            self.out_of_range + other.out_of_range,
            self.missing + other.missing,
            self.garbage_tokens + other.garbage_tokens,
        )


_OPEN = r"[\[(【]"
_CLOSE = r"[\])】]"
_SEP = r"\s*(?:>>?|≻|→|->|=>|,|;|\|)\s*"
_PREFIX = r"(?:passages?|documents?|docs?|candidates?|ids?|identifiers?)"
_NOISE = re.compile(r"[\s\[\]()【】>≻→=,;|.:\-\"'`*]+")


def _label_pattern(scheme: IdScheme) -> str:
    if scheme.alphabet is None:
        return r"\d+"
    chars = scheme.alphabet if scheme.case_sensitive else scheme.alphabet.upper() + scheme.alphabet.lower()
    return "[" + re.escape("".join(sorted(set(chars)))) + "]"


def _numeric_value(token: str) -> str:
    """Map any Unicode decimal digits to ASCII (``'٣'`` -> ``'3'``)."""
    return "".join(str(unicodedata.decimal(ch)) if not ch.isascii() else ch for ch in token)


def extract_identifiers(text: str, scheme: IdScheme | str = "numeric") -> tuple[list[str], list[tuple[int, int]]]:
    """Identifier strings found in ``text`` (already NFKC-normalised) and their spans, using the first tier
    of the module rules that finds any. Returns empty lists when there is none."""
    scheme = get_scheme(scheme)
    label = _label_pattern(scheme)
    letters = scheme.alphabet is not None
    lb, rb = (r"(?<![A-Za-z])", r"(?![A-Za-z])") if letters else (r"(?<!\w)", r"(?!\w)")

    bracketed = re.compile(_OPEN + r"\s*(" + label + r")\s*" + _CLOSE)
    found = [(m.group(1), m.span()) for m in bracketed.finditer(text)]
    if found:
        return [f[0] for f in found], [f[1] for f in found]

    prefixed = re.compile(r"\b" + _PREFIX + r"\s*(?:#|no\.?|number)?\s*(" + label + r")" + rb, re.IGNORECASE)
    found = [(m.group(1), m.span()) for m in prefixed.finditer(text)]
    if found:
        return [f[0] for f in found], [f[1] for f in found]

    bare = lb + "(" + label + ")" + rb
    chain = re.compile(bare + r"(?:" + _SEP + bare + r")+")
    best: re.Match[str] | None = None
    best_len = 0
    for m in chain.finditer(text):
        count = len(re.findall(bare, m.group(0)))
        if count > best_len:
            best, best_len = m, count
    if best is not None:
        offset = best.start()
        items = [(m.group(1), (offset + m.start(), offset + m.end())) for m in re.finditer(bare, best.group(0))]
        return [i[0] for i in items], [i[1] for i in items]

    if not letters:
        found = [(m.group(1), m.span()) for m in re.finditer(bare, text)]
        return [f[0] for f in found], [f[1] for f in found]
    words = [w for w in _NOISE.split(text) if w]
    if words and all(re.fullmatch(label, w) for w in words):
        found = [(m.group(1), m.span()) for m in re.finditer(bare, text)]
        return [f[0] for f in found], [f[1] for f in found]
    return [], []


def _garbage_words(text: str, spans: Sequence[tuple[int, int]]) -> int:
    pieces: list[str] = []
    last = 0
    for start, end in sorted(spans):
        pieces.append(text[last:start])
        last = end
    pieces.append(text[last:])
    return sum(len([w for w in _NOISE.split(p) if w]) for p in pieces)


def parse_permutation(
    text: str,
    n: int,
    *,
    scheme: IdScheme | str = "numeric",
    complete: bool = True,
    fallback: bool = False,
) -> tuple[list[int], RepairCounts]:
    """Parse ``text`` into a permutation of ``range(n)`` (best first) and the repairs it needed.

    See the module docstring for the exact rules. Raises :class:`ModelOutputError` carrying ``raw_text``
    when no identifier of the window is found, unless ``fallback`` (then the input order is returned).
    """
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}")
    scheme = get_scheme(scheme)
    normalized = unicodedata.normalize("NFKC", text if isinstance(text, str) else "")
    tokens, spans = extract_identifiers(normalized, scheme)
    garbage = _garbage_words(normalized, spans)

    order: list[int] = []
    seen: set[int] = set()
    duplicates = out_of_range = 0
    for token in tokens:
        index = scheme.index(_numeric_value(token) if scheme.alphabet is None else token)
        if index is None or not 0 <= index < n:
            out_of_range += 1
            continue
        if index in seen:
            duplicates += 1
            continue
        seen.add(index)
        order.append(index)

    if not order and n > 0:
        if not fallback:
            what = "no identifier" if not tokens else f"only identifiers outside 1..{n} ({', '.join(tokens[:5])})"
            raise ModelOutputError(
                f"could not read a ranking of {n} passages from the model output: {what} found",
                raw_text=text,
            )
        return list(range(n)), RepairCounts(0, out_of_range, n, garbage)

    missing = [i for i in range(n) if i not in seen]
    order.extend(missing)
    return order, RepairCounts(duplicates, out_of_range, len(missing) if complete else 0, garbage)


def format_permutation(order: Sequence[int], scheme: IdScheme | str = "numeric") -> str:
    """``[2] > [1] > [3]`` for ``order = [1, 0, 2]``."""
    scheme = get_scheme(scheme)
    return " > ".join(f"[{scheme.label(i)}]" for i in order)
