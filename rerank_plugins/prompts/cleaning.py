"""How the query and the passages are cleaned before they enter a listwise prompt, one rule set per reference.

Each reference cleans text its own way, and a fine-tuned model has only ever seen its own, so a recipe names its
rule set (``cleaning=``):

``"default"``
    ours (:func:`~rerank_plugins.prompts.clean_passage`): whitespace collapsed, ``[x]`` (1-3 word characters)
    rewritten to ``(x)``, the word cap applied; the query as given.
``"rank_llm"``
    rank_llm 0.25.7 (``rank_llm/rerank/inference_handler.py``: ``_convert_doc_to_prompt_content`` and
    ``_replace_number``; ``singleturn_listwise_inference_handler.py``): passage stripped, ``ftfy.fix_text``,
    cut to the word cap (``" ".join(text.split()[:n])``), ``[12]`` -> ``(12)``; the query gets ``[12]`` -> ``(12)``
    too; the rendered prompt is passed through ``ftfy.fix_text`` (``rank_listwise_os_llm.py`` ``create_prompt``).
``"reasonrank"``
    ReasonRank (8421BCD/ReasonRank ``utils.py`` ``convert_doc_to_prompt_content(truncate_by_word=False)``,
    ``rerank/rank_listwise_os_llm.py`` ``create_prompt``, commit ``06721fd``): as ``"rank_llm"`` but passages are
    cut by tokens (``max_document_tokens``) and the query is also stripped.
``"first"``
    FIRST (gangiswag/llm-reranker ``scripts/utils/rank_listwise_os_llm.py`` ``create_prompt`` and
    ``scripts/utils/rankllm.py`` ``_replace_number``, commit ``2d7cba4``): passage stripped and cut to the word
    cap, ``[A]`` (letters) -> ``(A)`` with alphabetical identifiers and ``[12]`` -> ``(12)`` with numeric ones;
    the query as given; the rendered prompt through ``ftfy.fix_text``.
``"none"``
    the text as given (Rank-R1: ielab/llm-rankers ``RankR1SetwiseLlmRanker.compare`` puts the passage text in the
    prompt untouched, after the run script's token truncation).

``ftfy`` is needed by the rule sets that use it (it is in the ``hf`` extra); a missing one is a
:class:`~rerank_plugins.errors.MissingDependencyError` when the reranker is built.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass

from .._optional import require
from ..errors import ConfigError

__all__ = ["CLEANINGS", "TextCleaning", "cut_words", "get_cleaning"]

_DIGITS = re.compile(r"\[(\d+)\]")
_LETTERS = re.compile(r"\[([A-z]+)\]")  # sic: FIRST's pattern ([A-z] also spans [\]^_`)


def cut_words(text: str, words: int | None) -> str:
    """``" ".join(text.split()[:words])`` (whitespace collapsed), or the text unchanged when ``words`` is None."""
    return text if words is None else " ".join(text.split()[: max(int(words), 0)])


@dataclass(frozen=True)
class TextCleaning:
    """One reference's cleaning rules (see the module docstring)."""

    name: str
    #: ftfy.fix_text on each passage (before cutting) and on the prompt's messages
    fix_passages: bool = False
    fix_prompt: bool = False
    #: passages: ``"default"`` (ours), ``"digits"`` ([12] -> (12)), ``"first"`` (letters or digits), ``None``
    passage_brackets: str | None = None
    strip_passages: bool = False
    #: query: [12] -> (12), then strip
    query_digits: bool = False
    strip_query: bool = False

    def fixer(self) -> Callable[[str], str] | None:
        if not (self.fix_passages or self.fix_prompt):
            return None
        ftfy = require("ftfy", "hf", purpose=f"the {self.name!r} text cleaning (ftfy.fix_text, as the reference)")
        return ftfy.fix_text  # type: ignore[no-any-return]

    def query(self, text: str) -> str:
        if self.query_digits:
            text = _DIGITS.sub(r"(\1)", text)
        return text.strip() if self.strip_query else text

    def prepare(self, text: str) -> str:
        """A passage before any cut: stripped and ftfy-fixed as the reference does."""
        if self.strip_passages:
            text = text.strip()
        if self.fix_passages:
            fix = self.fixer()
            assert fix is not None
            text = fix(text)
        return text

    def finish(self, text: str, *, alphabetical: bool = False) -> str:
        """A passage after its token cut: brackets rewritten (the word cut, applied later, commutes with it)."""
        if self.passage_brackets == "default":
            from . import clean_passage

            return clean_passage(text)[0]
        if self.passage_brackets == "digits":
            return _DIGITS.sub(r"(\1)", text)
        if self.passage_brackets == "first":
            return (_LETTERS if alphabetical else _DIGITS).sub(r"(\1)", text)
        return text


CLEANINGS: dict[str, TextCleaning] = {
    "default": TextCleaning("default", passage_brackets="default"),
    "rank_llm": TextCleaning(
        "rank_llm", fix_passages=True, fix_prompt=True, passage_brackets="digits", strip_passages=True,
        query_digits=True,
    ),
    "reasonrank": TextCleaning(
        "reasonrank", fix_passages=True, fix_prompt=True, passage_brackets="digits", strip_passages=True,
        query_digits=True, strip_query=True,
    ),
    "first": TextCleaning("first", fix_prompt=True, passage_brackets="first", strip_passages=True),
    "none": TextCleaning("none"),
}


def get_cleaning(name: str | TextCleaning) -> TextCleaning:
    if isinstance(name, TextCleaning):
        return name
    if name not in CLEANINGS:
        raise ConfigError(f"cleaning must be one of {sorted(CLEANINGS)}, got {name!r}")
    return CLEANINGS[name]
