"""The label-token rule on a toy longest-match tokenizer (pure Python)."""

from __future__ import annotations

from rerank_plugins.backends.tokens import LabelTokens, label_token_id

VOCAB = ["x", "[", "1", "[1", "2", " yes", "yes", " ", "y", "e", "s", "]"]
IDS = {t: i for i, t in enumerate(VOCAB)}


def encode(text: str) -> list[int]:
    out, i = [], 0
    while i < len(text):
        piece = max((t for t in VOCAB if text.startswith(t, i)), key=len)
        out.append(IDS[piece])
        i += len(piece)
    return out


def decode(ids: list[int]) -> str:
    return "".join(VOCAB[i] for i in ids)


def test_in_context_token_decides_leading_space() -> None:
    assert label_token_id(encode, decode, "x", " yes") == IDS[" yes"]
    assert label_token_id(encode, decode, "x", "yes") == IDS["yes"]


def test_label_merged_with_the_context_falls_back_to_its_own_token() -> None:
    # "x[" + "1" tokenises as [x, "[1"], yet a model that has read "x[" writes "1" as its own token
    assert encode("x[1") == [IDS["x"], IDS["[1"]]
    assert label_token_id(encode, decode, "x[", "1") == IDS["1"]


def test_multi_token_and_empty_labels_are_not_single() -> None:
    assert label_token_id(encode, decode, "x", "[1]") is None
    assert label_token_id(encode, decode, "x", "12") is None
    assert label_token_id(encode, decode, "x", "") is None


def test_cache_is_keyed_by_context_tail_and_label() -> None:
    calls: list[str] = []

    def counting(text: str) -> list[int]:
        calls.append(text)
        return encode(text)

    lt = LabelTokens(counting, decode)
    assert lt("x", " yes") == IDS[" yes"]
    n = len(calls)
    assert lt("x", " yes") == IDS[" yes"]
    assert len(calls) == n
    assert lt("x[", "1") == IDS["1"]
