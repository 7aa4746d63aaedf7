"""Prompts assembled from separately tokenised pieces, with token-level truncation (pure, no model).

Reference rerankers do not tokenise one rendered prompt: they tokenise static pieces once, tokenise the query and
the document separately, cut them to token budgets and concatenate the ids. Tokenising the joined text can give
other ids at the piece boundaries, and cutting words instead of tokens gives other lengths, so a model recipe
that must equal its reference describes the assembly as data, a :class:`TokenPromptFormat`, and
:func:`build_token_prompt` reproduces it:

``joint=True`` (Qwen3-Reranker's model card)
    ``ids = [BOS] + prefix + encode(middle)[:budget] + suffix`` where ``middle`` is ``query`` rendered with the
    query, the document and the instruction, and ``budget = max_length - len(prefix) - len(suffix)`` (the card
    tokenises the formatted pair with ``truncation=True, max_length=max_length - len(prefix_tokens) -
    len(suffix_tokens)``, which cuts the end of the document first).
``joint=False`` (FlagEmbedding ``FlagLLMReranker``, mxbai-rerank v2)
    ``q = encode(query)[:max_length * 3 // 4]`` (``query_fraction``), ``d = encode(document)[:max_length]``,
    ``first = [BOS] + q``, ``second = encode(separator) + d``; when ``len(first) + len(second)`` exceeds the pair
    budget (``max_length``, plus the suffix's length with ``pair_budget_adds_suffix``) the end of ``second`` is
    cut (the legacy ``prepare_for_model(truncation="only_second")`` rule: only when ``second`` is longer than the
    excess); ``ids = prefix + first + second + suffix``.

Each piece of ``prefix`` and ``suffix`` is tokenised alone, as the references do. Placeholders: ``{query}``,
``{document}``, ``{instruction}`` (the caller's instruction, else ``default_instruction``); ``query_with_
instruction`` replaces ``query`` when an instruction is given (mxbai's ``instruction: ...\\nquery: ...``).
``context_length`` (the model's), when known, keeps the prompt inside it: ``max_length`` is lowered to
``context_length - static tokens`` (mxbai-rerank's rule; it never binds for the real models' contexts).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

from ..errors import ConfigError

__all__ = ["TokenPrompt", "TokenPromptFormat", "build_token_prompt"]

Encode = Callable[[str], Sequence[int]]


@dataclass(frozen=True)
class TokenPromptFormat:
    """How a reference reranker assembles its input ids (see the module docstring)."""

    query: str = "{query}"
    document: str = "{document}"
    prefix: tuple[str, ...] = ()
    suffix: tuple[str, ...] = ()
    separator: str = ""
    query_with_instruction: str | None = None
    default_instruction: str | None = None
    joint: bool = False
    bos: bool = False
    max_length: int | None = None
    query_fraction: tuple[int, int] = (3, 4)
    pair_budget_adds_suffix: bool = False
    #: free text for docs: where the format comes from
    source: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "prefix", tuple(self.prefix))
        object.__setattr__(self, "suffix", tuple(self.suffix))
        object.__setattr__(self, "query_fraction", tuple(self.query_fraction))
        if self.max_length is not None and (isinstance(self.max_length, bool) or self.max_length < 1):
            raise ConfigError(f"max_length must be an int >= 1 or None, got {self.max_length!r}")
        num, den = self.query_fraction
        if not (isinstance(num, int) and isinstance(den, int) and 0 < num <= den):
            raise ConfigError(f"query_fraction must be two ints 0 < a <= b, got {self.query_fraction!r}")
        if self.joint and "{document}" not in self.query:
            raise ConfigError("a joint token prompt format renders query and document in 'query' ({document})")
        if not self.joint and "{document}" not in self.document:
            raise ConfigError("the 'document' piece of a token prompt format needs a {document} placeholder")

    @classmethod
    def from_options(cls, value: TokenPromptFormat | Mapping[str, Any]) -> TokenPromptFormat:
        """A format from itself or from a mapping of its fields (unknown fields are a :class:`ConfigError`)."""
        if isinstance(value, TokenPromptFormat):
            return value
        if not isinstance(value, Mapping):
            raise ConfigError(f"prompt_format must be a TokenPromptFormat or a mapping, got {type(value).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = set(value) - known
        if unknown:
            raise ConfigError(f"prompt_format: unknown fields {sorted(unknown)}; known: {sorted(known)}")
        return cls(**dict(value))


@dataclass(frozen=True)
class TokenPrompt:
    """One assembled prompt: its ids, its text pieces, and whether a piece was cut."""

    ids: tuple[int, ...]
    #: the rendered text pieces in order (before truncation); their concatenation is the uncut prompt text
    pieces: tuple[str, ...]
    truncated: bool
    #: ``ids`` starts with a BOS token added here (not spelled by any piece)
    bos_added: bool


def _render(template: str, values: Mapping[str, str]) -> str:
    try:
        return template.format(**values)
    except (KeyError, IndexError) as exc:
        raise ConfigError(f"token prompt piece {template!r} uses an unknown placeholder {exc}") from None


def build_token_prompt(
    fmt: TokenPromptFormat,
    encode: Encode,
    query: str,
    document: str,
    *,
    instruction: str | None = None,
    max_length: int | None = None,
    bos_token_id: int | None = None,
    context_length: int | None = None,
    static_ids: dict[str, list[int]] | None = None,
) -> TokenPrompt:
    """Assemble one prompt (module docstring). ``max_length`` overrides the format's; ``static_ids`` caches the
    ids of static pieces by text (the caller may keep it across calls)."""
    cache: dict[str, list[int]] = static_ids if static_ids is not None else {}

    def static(text: str) -> list[int]:
        if text not in cache:
            cache[text] = list(encode(text))
        return cache[text]

    bos = [int(bos_token_id)] if fmt.bos and bos_token_id is not None else []
    chosen = instruction if instruction is not None else fmt.default_instruction
    values = {"query": query, "document": document, "instruction": chosen if chosen is not None else ""}
    prefix_text = [_render(p, values) for p in fmt.prefix]
    suffix_text = [_render(p, values) for p in fmt.suffix]
    prefix = [t for p in prefix_text for t in static(p)]
    suffix = [t for p in suffix_text for t in static(p)]
    limit = max_length if max_length is not None else fmt.max_length

    if fmt.joint:
        middle_text = _render(fmt.query, values)
        middle = list(encode(middle_text))
        cut = False
        if limit is not None:
            top = limit if context_length is None else min(limit, context_length)
            budget = max(0, top - len(prefix) - len(suffix) - len(bos))
            cut = len(middle) > budget
            middle = middle[:budget]
        ids = [*bos, *prefix, *middle, *suffix]
        return TokenPrompt(tuple(ids), (*prefix_text, middle_text, *suffix_text), cut, bool(bos))

    template = fmt.query_with_instruction if (instruction is not None and fmt.query_with_instruction) else fmt.query
    query_text = _render(template, values)
    doc_text = _render(fmt.document, values)
    sep = static(fmt.separator) if fmt.separator else []
    q = list(encode(query_text))
    d = list(encode(doc_text))
    cut = False
    if limit is not None:
        if context_length is not None:
            fixed = len(prefix) + len(suffix) + len(sep) + len(bos)
            limit = min(limit, max(1, context_length - fixed))
        num, den = fmt.query_fraction
        q_max = limit * num // den
        cut = len(q) > q_max
        q = q[:q_max]
        d_max = limit
        if context_length is not None:
            d_max = min(d_max, max(0, context_length - len(q) - len(prefix) - len(suffix) - len(sep) - len(bos)))
        cut = cut or len(d) > d_max
        d = d[:d_max]
    first = [*bos, *q]
    second = [*sep, *d]
    if limit is not None:
        pair_max = limit + (len(suffix) if fmt.pair_budget_adds_suffix else 0)
        excess = len(first) + len(second) - pair_max
        if 0 < excess < len(second):
            second = second[:-excess]
            cut = True
    ids = [*prefix, *first, *second, *suffix]
    pieces = (*prefix_text, query_text, fmt.separator, doc_text, *suffix_text)
    return TokenPrompt(tuple(ids), pieces, cut, bool(bos))
