"""Which token a model emits to write a given label right after a prompt (shared by the local backends).

The rule (documented once, used by ``single_token`` and ``label_logprobs`` of the transformers and vLLM
backends): with ``c`` the prompt text as the model reads it,

1. if ``tokenize(c + label) == tokenize(c) + [t]``, the label is the single token ``t``. This settles the
   leading-space question the way the tokenizer itself does: ``" yes"`` and ``"yes"`` are different tokens,
   and which one follows ``c`` is what the model would emit;
2. otherwise, if the label alone tokenises to one token ``t`` and ``decode(tokenize(c) + [t]) == c + label``,
   that ``t``: the label merged with the end of ``c`` when the two were tokenised together (``"["`` then
   ``"1"`` may become one ``"[1"`` token), but a model that has read ``c`` writes it as the separate ``t``;
3. otherwise the label is not a single token at that position (``None``).

Only the last :data:`TAIL_CHARS` characters of ``c`` are tokenised: token boundaries are local, and the
prompt may be long. Tokenisation adds no special tokens.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

__all__ = ["TAIL_CHARS", "LabelTokens", "label_token_id"]

TAIL_CHARS = 64

Encode = Callable[[str], Sequence[int]]
Decode = Callable[[Sequence[int]], str]


def label_token_id(encode: Encode, decode: Decode, context: str, label: str) -> int | None:
    """The token id of ``label`` written right after ``context``, or ``None`` (rule in the module docstring)."""
    if not label:
        return None
    tail = context[-TAIL_CHARS:]
    base = list(encode(tail))
    full = list(encode(tail + label))
    if len(full) == len(base) + 1 and full[: len(base)] == base:
        return int(full[-1])
    alone = list(encode(label))
    if len(alone) == 1 and decode([*base, alone[0]]) == decode(base) + label:
        return int(alone[0])
    return None


class LabelTokens:
    """:func:`label_token_id` with a cache keyed by (context tail, label)."""

    def __init__(self, encode: Encode, decode: Decode) -> None:
        self._encode = encode
        self._decode = decode
        self._cache: dict[tuple[str, str], int | None] = {}

    def __call__(self, context: str, label: str) -> int | None:
        key = (context[-TAIL_CHARS:], label)
        if key not in self._cache:
            self._cache[key] = label_token_id(self._encode, self._decode, context, label)
        return self._cache[key]
