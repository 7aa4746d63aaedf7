"""monoT5 / duoT5 on a tiny random T5ForConditionalGeneration with a sentencepiece-style tokenizer built offline:
conformance, parity with rerankers' T5Ranker (the reference itself) and with pygaggle's duoT5 aggregation
(transcribed), score modes, token-level truncation, recipes and errors."""

from __future__ import annotations

import itertools
import shutil
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from rerank_plugins import Candidate, ConfigError, InvalidInputError, load_reranker  # noqa: E402
from rerank_plugins.rankers.cross_encoder import TruncationWarning  # noqa: E402
from rerank_plugins.rankers.seq2seq import DuoT5Reranker, MonoT5Reranker  # noqa: E402
from rerank_plugins.testing import RerankerConformance  # noqa: E402

QUERY = "supersonic shock waves"
DOCS = [
    "Shock waves form when an aircraft exceeds the speed of sound.",
    "Boiling pasta in salted water.",
    "The boundary layer thickens downstream of the leading edge of a flat plate.",
    "x",
]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_plugins.testing.tiny_encoders import build_tiny_t5

    return build_tiny_t5(tmp_path_factory.mktemp("tiny-t5"))


@pytest.fixture(scope="module")
def mono(t5_dir: Path) -> MonoT5Reranker:
    return MonoT5Reranker(str(t5_dir))


@pytest.fixture(scope="module")
def duo(t5_dir: Path) -> DuoT5Reranker:
    return DuoT5Reranker(str(t5_dir))


def _by_position(result: Any) -> list[float]:
    return [s for _, s in sorted((r.original_position, r.score) for r in result.results)]


@pytest.mark.filterwarnings("ignore::rerank_plugins.rankers.cross_encoder.TruncationWarning")
class TestMonoT5Conformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, mono: MonoT5Reranker) -> MonoT5Reranker:
        return mono


@pytest.mark.filterwarnings("ignore::rerank_plugins.rankers.cross_encoder.TruncationWarning")
class TestDuoT5Conformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, duo: DuoT5Reranker) -> DuoT5Reranker:
        return duo


def _rerankers_t5(t5_dir: Path) -> tuple[Any, list[list[int]]]:
    """rerankers' own T5Ranker, with a spy on its greedy decoder that records the encoder input ids it builds."""
    from rerankers.models.t5ranker import T5Ranker

    ref = T5Ranker(str(t5_dir), device="cpu", dtype=torch.float32, verbose=0, batch_size=3)
    seen: list[list[int]] = []
    original = ref._greedy_decode

    def spy(model: Any, input_ids: Any, length: int, attention_mask: Any = None,
            return_last_logits: bool = True) -> Any:
        for row, mask in zip(input_ids.tolist(), attention_mask.tolist()):
            seen.append([t for t, m in zip(row, mask) if m])
        return original(model=model, input_ids=input_ids, length=length, attention_mask=attention_mask,
                        return_last_logits=return_last_logits)

    ref._greedy_decode = spy
    return ref, seen


def test_monot5_parity_with_rerankers_t5ranker(t5_dir: Path, mono: MonoT5Reranker) -> None:
    """rerankers 0.10.0 T5Ranker._get_scores (rerankers/models/t5ranker.py): same prompt ids, P(true) to 1e-5."""
    ref, seen = _rerankers_t5(t5_dir)
    assert (ref.token_false_id, ref.token_true_id) == tuple(mono.scorer.label_ids)
    expected = ref._get_scores(QUERY, DOCS)
    plans, rows = mono.encode(QUERY, DOCS)
    assert not any(p.truncated or p.chunked for p in plans)
    ids = [r[0] for r in rows]
    assert ids == seen
    assert ids[0][-1] == mono.tokenizer.eos_token_id  # T5 appends </s>, like the reference
    got = _by_position(mono.rerank(QUERY, DOCS))
    assert got == pytest.approx(expected, abs=1e-5)
    assert all(0.0 < s < 1.0 for s in got)
    assert max(got) - min(got) > 1e-4  # the tiny model separates the documents (the test can fail)


def test_monot5_score_modes(t5_dir: Path, mono: MonoT5Reranker) -> None:
    import math

    from rerankers.models.t5ranker import T5Ranker

    prob = _by_position(mono.rerank(QUERY, DOCS))
    logp = _by_position(MonoT5Reranker(str(t5_dir), score="log-probability").rerank(QUERY, DOCS))
    assert logp == pytest.approx([math.log(p) for p in prob], abs=1e-6)
    raw_ref = T5Ranker(str(t5_dir), device="cpu", dtype=torch.float32, verbose=0, return_logits=True)
    logit = _by_position(MonoT5Reranker(str(t5_dir), score="logit").rerank(QUERY, DOCS))
    assert logit == pytest.approx(raw_ref._get_scores(QUERY, DOCS), abs=1e-5)


def test_monot5_batches_across_queries(t5_dir: Path, mono: MonoT5Reranker) -> None:
    ref, _ = _rerankers_t5(t5_dir)
    queries = [QUERY, "heat transfer", "flutter"]
    lists = [DOCS, DOCS[:2], DOCS[1:]]
    one_by_one = MonoT5Reranker(str(t5_dir), batch_size=1)
    for q, docs, got, single in zip(queries, lists, mono.rerank_batch(queries, lists),
                                    one_by_one.rerank_batch(queries, lists)):
        assert _by_position(got) == pytest.approx(ref._get_scores(q, docs), abs=1e-5)
        assert _by_position(single) == pytest.approx(_by_position(got), abs=1e-5)


def _pygaggle_duot5(ref: Any, query: str, texts: list[str], false_id: int, true_id: int) -> list[float]:
    """Transcription of castorini/pygaggle DuoT5.rescore (pygaggle/rerank/transformer.py, master; pygaggle needs a
    Java runtime, so it is not installed): all ordered pairs of permutations(texts, 2), the T5DuoBatchTokenizer
    pattern 'Query: {query} Document0: {document0} Document1: {document1} Relevant:' (pygaggle/model/tokenize.py,
    padding longest, truncation, max_length 512), greedy_decode(length=1, return_last_logits=True), softmax over the
    [false, true] logits (pygaggle hard-codes T5's ids 6136 / 1176; this tokenizer's ids of the same pieces are
    used), scores[d0] += p and scores[d1] += 1 - p. The greedy decode is rerankers' T5Ranker._greedy_decode, which
    is the same InRanker/pygaggle greedy_decode."""
    pattern = "Query: {query} Document0: {document0} Document1: {document1} Relevant:"
    doc_pairs = list(itertools.permutations(range(len(texts)), 2))
    scores: dict[int, float] = defaultdict(float)
    for start in range(0, len(doc_pairs), 8):  # pygaggle's batch_size=8
        batch = doc_pairs[start : start + 8]
        enc = ref.tokenizer([pattern.format(query=query, document0=texts[a], document1=texts[b]) for a, b in batch],
                            padding="longest", truncation=True, max_length=512, return_tensors="pt")
        _, batch_scores = ref._greedy_decode(model=ref.model, input_ids=enc["input_ids"], length=1,
                                             attention_mask=enc["attention_mask"], return_last_logits=True)
        batch_scores = torch.nn.functional.softmax(batch_scores[:, [false_id, true_id]], dim=1)
        for (a, b), p in zip(batch, batch_scores[:, 1].tolist()):
            scores[a] += p
            scores[b] += 1 - p
    return [scores[i] for i in range(len(texts))]


def test_duot5_parity_with_pygaggle_aggregation(t5_dir: Path, duo: DuoT5Reranker) -> None:
    ref, _ = _rerankers_t5(t5_dir)
    false_id, true_id = duo.scorer.label_ids
    expected = _pygaggle_duot5(ref, QUERY, DOCS, false_id, true_id)
    result = duo.rerank(QUERY, DOCS)
    assert _by_position(result) == pytest.approx(expected, abs=1e-5)
    assert result.details["pairs"] == len(DOCS) * (len(DOCS) - 1)
    assert sum(expected) == pytest.approx(len(DOCS) * (len(DOCS) - 1), abs=1e-5)  # each pair hands out 2 in total
    ids, cut = duo.encode_pair(QUERY, DOCS[0], DOCS[1])
    pattern = f"Query: {QUERY} Document0: {DOCS[0]} Document1: {DOCS[1]} Relevant:"
    assert not cut and ids == ref.tokenizer(pattern)["input_ids"]


def test_truncation_keeps_the_template_tail(t5_dir: Path) -> None:
    long_doc = " ".join(["boundary layer flow"] * 200)
    ranker = MonoT5Reranker(str(t5_dir), max_length=40)
    with pytest.warns(TruncationWarning, match="1 of 2 documents"):
        result = ranker.rerank(QUERY, [long_doc, "x"])
    assert result.details["truncated"] == 1
    by_id = {r.id: r for r in result.results}
    assert by_id["0"].details == {"truncated": True} and not by_id["1"].details
    plans, rows = ranker.encode(QUERY, [long_doc])
    assert plans[0].truncated and len(rows[0]) == 1 and len(rows[0][0]) <= 40
    (start, end), = plans[0].spans
    assert start == 0 and long_doc.startswith(long_doc[start:end]) and 0 < end < len(long_doc)
    tail = ranker.tokenizer("Relevant:", add_special_tokens=False)["input_ids"]
    assert rows[0][0][-len(tail) - 1 : -1] == tail  # "... Relevant:" then </s>
    with pytest.warns(FutureWarning, match="long_documents='warn' is deprecated"):
        legacy = MonoT5Reranker(str(t5_dir), max_length=40, long_documents="warn")
    assert legacy.policy.long_documents == "truncate"
    duo = DuoT5Reranker(str(t5_dir), max_length=48)
    pair, cut = duo.encode_pair(QUERY, long_doc, long_doc)
    assert cut and len(pair) <= 48
    assert pair[-len(tail) - 1 : -1] == tail


def test_recipes_load_without_kind(tmp_path: Path, t5_dir: Path) -> None:
    for hub_id, cls in (("castorini/monot5-base-msmarco-10k", MonoT5Reranker),
                        ("castorini/duot5-base-msmarco", DuoT5Reranker)):
        org, name = hub_id.split("/")
        snap = tmp_path / f"models--{org}--{name}" / "snapshots" / "rev"
        shutil.copytree(t5_dir, snap)
        ranker = load_reranker(str(snap))
        assert isinstance(ranker, cls)
        assert all(type(s) is float for s in ranker.rerank(QUERY, DOCS).scores)
    assert isinstance(load_reranker(str(t5_dir), kind="monot5", score="logit"), MonoT5Reranker)


def test_bad_options_and_inputs(t5_dir: Path, mono: MonoT5Reranker) -> None:
    for bad in ({"token_true": "\u2581maybe"}, {"score": "softmax"}, {"max_length": 0}, {"batch_size": True},
                {"template": "Query: {query}"}, {"long_documents": "chunks"}, {"max_chunks": 0},
                {"chunk_aggregate": "median"}, {"token_false": ""}):
        with pytest.raises(ConfigError):
            MonoT5Reranker(str(t5_dir), **bad)
    with pytest.raises(ConfigError, match="maybe"):
        MonoT5Reranker(str(t5_dir), token_true="\u2581maybe")
    with pytest.raises(ConfigError, match="document0"):
        DuoT5Reranker(str(t5_dir), template="Query: {query} Document: {document}")
    with pytest.raises(InvalidInputError, match="image"):
        mono.rerank(QUERY, [Candidate(id="img", image=b"\x89PNG")])
    with pytest.raises(ConfigError, match="tokenizer"):
        from transformers import AutoModelForSeq2SeqLM

        MonoT5Reranker(AutoModelForSeq2SeqLM.from_pretrained(str(t5_dir)))


def test_close(t5_dir: Path) -> None:
    ranker = MonoT5Reranker(str(t5_dir))
    ranker.close()
    ranker.close()
    with pytest.raises(Exception, match="closed"):
        ranker.rerank(QUERY, DOCS)


def test_a_t5_folder_outside_the_recipes_asks_for_the_kind(t5_dir: Path) -> None:
    with pytest.raises(ConfigError, match="monot5"):
        load_reranker(str(t5_dir))
