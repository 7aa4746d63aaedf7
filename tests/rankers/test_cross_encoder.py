"""CrossEncoderReranker on tiny random BERTs (one- and two-logit heads): conformance, parity with
sentence-transformers CrossEncoder.predict, activations, truncation warnings, chunk pooling, cache, fast paths."""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("sentence_transformers")

from _support.extras import assert_names_the_extra  # noqa: E402

from rerank_plugins import (  # noqa: E402
    Candidate,
    ConfigError,
    InvalidInputError,
    ModelNotFoundError,
    load_reranker,
)
from rerank_plugins.engine.cache import ScoreCache  # noqa: E402
from rerank_plugins.rankers._pair_encoding import encode_pairs  # noqa: E402
from rerank_plugins.rankers.cross_encoder import CrossEncoderReranker, TruncationWarning  # noqa: E402
from rerank_plugins.testing import RerankerConformance  # noqa: E402

QUERY = "supersonic shock waves"
DOCS = [
    "Shock waves form when an aircraft exceeds the speed of sound.",
    "Boiling pasta in salted water.",
    "Boundary layer transition on a flat plate " * 4,
    "超音速の衝撃波 ünïcode — naïve",
    "x",
]
LONG = " ".join(f"token{i} flow" for i in range(400))


def _by_position(result: Any) -> list[float]:
    return [s for _, s in sorted((r.original_position, r.score) for r in result.results)]


@pytest.fixture(scope="module")
def ce1(tiny_ce_dir: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(str(tiny_ce_dir))


@pytest.fixture(scope="module")
def ce2(tiny_ce2_dir: Path) -> CrossEncoderReranker:
    return CrossEncoderReranker(str(tiny_ce2_dir))


@pytest.mark.filterwarnings("ignore::rerank_plugins.rankers.cross_encoder.TruncationWarning")
class TestOneLogitConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, ce1: CrossEncoderReranker) -> CrossEncoderReranker:
        return ce1


@pytest.mark.filterwarnings("ignore::rerank_plugins.rankers.cross_encoder.TruncationWarning")
class TestTwoLogitConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, ce2: CrossEncoderReranker) -> CrossEncoderReranker:
        return ce2


# ---------------------------------------------------------------------------------------------- parity
@pytest.mark.parametrize("max_length", [512, 24])
def test_parity_with_sentence_transformers_one_logit(tiny_ce_dir: Path, max_length: int) -> None:
    from sentence_transformers import CrossEncoder

    expected = CrossEncoder(str(tiny_ce_dir), max_length=max_length).predict([(QUERY, d) for d in DOCS])
    ours = CrossEncoderReranker(str(tiny_ce_dir), max_length=max_length, long_documents="truncate")
    assert _by_position(ours.rerank(QUERY, DOCS)) == pytest.approx(expected.tolist(), abs=1e-5)


def test_parity_with_sentence_transformers_two_logits(tiny_ce2_dir: Path, ce2: CrossEncoderReranker) -> None:
    from sentence_transformers import CrossEncoder

    logits = CrossEncoder(str(tiny_ce2_dir), max_length=512).predict([(QUERY, d) for d in DOCS])
    assert logits.shape == (len(DOCS), 2)
    expected = torch.softmax(torch.tensor(logits), dim=-1)[:, 1].tolist()
    assert _by_position(ce2.rerank(QUERY, DOCS)) == pytest.approx(expected, abs=1e-5)


def test_parity_across_queries_in_one_batch(tiny_ce_dir: Path, ce1: CrossEncoderReranker) -> None:
    from sentence_transformers import CrossEncoder

    st = CrossEncoder(str(tiny_ce_dir), max_length=512)
    queries = [QUERY, "heat transfer", "flutter"]
    lists = [DOCS, DOCS[:2], DOCS[2:]]
    for q, docs, got in zip(queries, lists, ce1.rerank_batch(queries, lists)):
        assert _by_position(got) == pytest.approx(st.predict([(q, d) for d in docs]).tolist(), abs=1e-5)


def test_batching_does_not_change_scores(tiny_ce_dir: Path, ce1: CrossEncoderReranker) -> None:
    one_by_one = CrossEncoderReranker(str(tiny_ce_dir), batch_size=1)
    budget = CrossEncoderReranker(str(tiny_ce_dir), max_tokens=40)
    ref = _by_position(ce1.rerank(QUERY, DOCS))
    assert _by_position(one_by_one.rerank(QUERY, DOCS)) == pytest.approx(ref, abs=1e-5)
    assert _by_position(budget.rerank(QUERY, DOCS)) == pytest.approx(ref, abs=1e-5)


def test_load_reranker_detects_a_cross_encoder(tiny_ce_dir: Path) -> None:
    ranker = load_reranker(str(tiny_ce_dir))
    assert isinstance(ranker, CrossEncoderReranker)
    assert ranker.name == f"cross-encoder:{tiny_ce_dir.name}"


def test_accepts_built_models(tiny_ce_dir: Path, ce1: CrossEncoderReranker) -> None:
    from sentence_transformers import CrossEncoder
    from transformers import AutoModelForSequenceClassification

    ref = _by_position(ce1.rerank(QUERY, DOCS))
    from_st = CrossEncoderReranker(CrossEncoder(str(tiny_ce_dir)))
    assert _by_position(from_st.rerank(QUERY, DOCS)) == pytest.approx(ref, abs=1e-5)
    hf = AutoModelForSequenceClassification.from_pretrained(str(tiny_ce_dir))
    from_hf = CrossEncoderReranker(hf, tokenizer=str(tiny_ce_dir))
    assert _by_position(from_hf.rerank(QUERY, DOCS)) == pytest.approx(ref, abs=1e-5)
    with pytest.raises(ConfigError, match="tokenizer"):
        CrossEncoderReranker(hf)


# ---------------------------------------------------------------------------------------------- activations
def test_one_logit_activations(tiny_ce_dir: Path, ce1: CrossEncoderReranker) -> None:
    raw = np.array(_by_position(CrossEncoderReranker(str(tiny_ce_dir), activation="raw").rerank(QUERY, DOCS)))
    sig = np.array(_by_position(ce1.rerank(QUERY, DOCS)))
    soft = _by_position(CrossEncoderReranker(str(tiny_ce_dir), activation="softmax").rerank(QUERY, DOCS))
    assert ce1.activation == "sigmoid"
    assert sig == pytest.approx(1 / (1 + np.exp(-raw)), abs=1e-6)
    assert soft == pytest.approx(sig.tolist(), abs=1e-6)


def test_two_logit_activations(tiny_ce2_dir: Path, ce2: CrossEncoderReranker) -> None:
    raw = np.array(_by_position(CrossEncoderReranker(str(tiny_ce2_dir), activation="raw").rerank(QUERY, DOCS)))
    prob = _by_position(ce2.rerank(QUERY, DOCS))
    sig = _by_position(CrossEncoderReranker(str(tiny_ce2_dir), activation="sigmoid").rerank(QUERY, DOCS))
    assert ce2.activation == "softmax"
    assert prob == pytest.approx((1 / (1 + np.exp(-raw))).tolist(), abs=1e-6)
    assert sig == pytest.approx(prob, abs=1e-6)


def test_unsupported_head_and_options(tmp_path: Path, tiny_ce_dir: Path) -> None:
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    three = build_tiny_cross_encoder(tmp_path / "three", num_labels=3)
    with pytest.raises(ConfigError, match="num_labels=3"):
        CrossEncoderReranker(str(three))
    for bad in ({"activation": "tanh"}, {"long_documents": "drop"}, {"quantize": "int4"}, {"max_length": 0},
                {"batch_size": True}, {"chunk_overlap": -1}, {"quantize": "int8", "dtype": "bfloat16"}):
        with pytest.raises(ConfigError):
            CrossEncoderReranker(str(tiny_ce_dir), **bad)


def test_max_length_capped_to_the_model(tiny_ce_dir: Path) -> None:
    assert CrossEncoderReranker(str(tiny_ce_dir), max_length=100_000).max_length == 512


# ---------------------------------------------------------------------------------------------- long documents
def test_truncation_warns_once_with_counts(tiny_ce_dir: Path) -> None:
    ranker = CrossEncoderReranker(str(tiny_ce_dir), max_length=32)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ranker.rerank(QUERY, [LONG, "short", LONG + " more"])
    ours = [w for w in caught if issubclass(w.category, TruncationWarning)]
    assert len(ours) == 1
    assert "2 of 3" in str(ours[0].message) and "long_documents='chunk'" in str(ours[0].message)
    assert result.details["truncated"] == 2


def test_legacy_long_document_spellings_warn_and_map(tiny_ce_dir: Path) -> None:
    for old, mode, how in (("warn", "truncate", "max"), ("chunk-max", "chunk", "max"),
                           ("chunk-mean", "chunk", "mean")):
        with pytest.warns(FutureWarning, match=f"long_documents={old!r} is deprecated") as record:
            ranker = CrossEncoderReranker(str(tiny_ce_dir), max_length=32, long_documents=old)
        assert record[0].filename == __file__  # the caller's line
        assert (ranker.policy.long_documents, ranker.policy.chunk_aggregate) == (mode, how)


@pytest.mark.parametrize("how", ["max", "first", "mean"])
def test_chunk_pooling_equals_window_scores(tiny_ce_dir: Path, how: str) -> None:
    ranker = CrossEncoderReranker(str(tiny_ce_dir), max_length=40, long_documents="chunk", chunk_overlap=6,
                                  chunk_aggregate=how, max_chunks=100)
    plain = CrossEncoderReranker(str(tiny_ce_dir), max_length=40)
    docs = [LONG, "short document", LONG]
    with warnings.catch_warnings():
        warnings.simplefilter("error", TruncationWarning)
        result = ranker.rerank(QUERY, docs)
    assert result.details["chunked"] == 2 and result.details["truncated"] == 0
    best = next(r for r in result.results if r.id == "0").details["best_chunk"]
    spans = ranker._encode([(QUERY, LONG)]).plans[0].spans
    assert best["chunks"] == len(spans) > 3
    # each window is scored exactly as the plain pair (query, window text) that fits
    window_scores = _by_position(plain.rerank(QUERY, [LONG[s:e] for s, e in spans]))
    pool = {"max": max, "first": lambda xs: xs[0], "mean": lambda xs: sum(xs) / len(xs)}[how]
    assert _by_position(result)[0] == pytest.approx(pool(window_scores), abs=1e-5)
    assert _by_position(result)[2] == _by_position(result)[0]
    k = max(range(len(spans)), key=lambda i: window_scores[i])
    assert (best["start"], best["end"], best["index"]) == (*spans[k], k)
    assert best["score"] == pytest.approx(window_scores[k], abs=1e-5)
    # identical windows (the repeated document) run once
    assert result.details["rows_scored"] == len(spans) + 1


def test_chunk_mode_warns_when_the_query_is_cut(tiny_ce_dir: Path) -> None:
    ranker = CrossEncoderReranker(str(tiny_ce_dir), max_length=40, long_documents="chunk")
    with pytest.warns(TruncationWarning, match="queries were too long"):
        ranker.rerank(LONG, [LONG])


def test_chunk_mode_caches_windows_and_keeps_the_best_chunk(tiny_ce_dir: Path) -> None:
    ranker = CrossEncoderReranker(str(tiny_ce_dir), max_length=40, long_documents="chunk", cache=True,
                                  max_chunks=100)
    first = ranker.rerank(QUERY, [LONG, "short"])
    again = ranker.rerank(QUERY, [LONG, "short"])
    assert again.details["rows_scored"] == 0 and again.details["cache_hits"] == first.details["rows_scored"]
    assert [r.details for r in again.results] == [r.details for r in first.results]
    assert again.scores == first.scores


def test_query_and_doc_caps(tiny_ce_dir: Path) -> None:
    capped = CrossEncoderReranker(str(tiny_ce_dir), query_max_length=3, doc_max_length=5)
    plain = CrossEncoderReranker(str(tiny_ce_dir))
    got = capped.rerank("alpha beta gamma delta epsilon", ["one two three four five six seven"])
    expected = plain.rerank("alpha beta gamma", ["one two three four five"])
    assert got.scores == pytest.approx(expected.scores, abs=1e-6)
    assert got.details["capped"] == 1


# ---------------------------------------------------------------------------------------------- cache
def test_cache_hits(tiny_ce_dir: Path) -> None:
    cache = ScoreCache()
    ranker = CrossEncoderReranker(str(tiny_ce_dir), cache=cache)
    first = ranker.rerank(QUERY, DOCS)
    assert (cache.hits, cache.misses) == (0, len(DOCS))
    second = ranker.rerank(QUERY, [*DOCS, "new one"])
    assert (cache.hits, cache.misses) == (len(DOCS), len(DOCS) + 1)
    assert second.details["cache_hits"] == len(DOCS)
    assert {r.id: r.score for r in first} == {r.id: r.score for r in second if r.id in {r.id for r in first}}
    other = CrossEncoderReranker(str(tiny_ce_dir), cache=cache, activation="raw")
    other.rerank(QUERY, DOCS[:1])
    assert cache.hits == len(DOCS)  # another activation is another key


# ---------------------------------------------------------------------------------------------- fast paths
def test_int8_runs_close_to_fp32(tiny_ce_dir: Path, ce1: CrossEncoderReranker) -> None:
    int8 = CrossEncoderReranker(str(tiny_ce_dir), quantize="int8")
    assert np.abs(np.array(_by_position(int8.rerank(QUERY, DOCS))) - _by_position(ce1.rerank(QUERY, DOCS))).max() < 0.05


def test_bfloat16_on_cpu(tiny_ce_dir: Path, ce1: CrossEncoderReranker) -> None:
    bf16 = CrossEncoderReranker(str(tiny_ce_dir), dtype="bfloat16")
    assert bf16.dtype == torch.bfloat16 and bf16.device.type == "cpu"
    got = _by_position(bf16.rerank(QUERY, DOCS))
    assert all(type(x) is float for x in got)
    assert got == pytest.approx(_by_position(ce1.rerank(QUERY, DOCS)), abs=2e-2)


@pytest.mark.parametrize("mode", ["onnx", "onnx-int8"])
def test_onnx_paths(tiny_ce_dir: Path, ce1: CrossEncoderReranker, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                    mode: str) -> None:
    pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    monkeypatch.setenv("RERANK_PLUGINS_CACHE", str(tmp_path))
    ranker = CrossEncoderReranker(str(tiny_ce_dir), quantize=mode)
    assert ranker._onnx is not None and ranker._onnx.path.is_file()
    assert ranker._onnx.fused  # BERT attention / GELU / layer norms fused by ONNX Runtime's optimizer
    assert str(ranker._onnx.path).startswith(str(tmp_path))
    ref = np.array(_by_position(ce1.rerank(QUERY, DOCS)))
    got = np.array(_by_position(ranker.rerank(QUERY, DOCS)))
    assert np.abs(got - ref).max() < (1e-5 if mode == "onnx" else 0.05)
    again = CrossEncoderReranker(str(tiny_ce_dir), quantize=mode)  # reuses the cached export
    assert again._onnx is not None and again._onnx.path == ranker._onnx.path


# ---------------------------------------------------------------------------------------------- errors
def test_bad_model_path(tmp_path: Path) -> None:
    with pytest.raises(ModelNotFoundError):
        CrossEncoderReranker(str(tmp_path / "missing-model"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(ModelNotFoundError):
        CrossEncoderReranker(str(empty))


def test_embedding_model_without_a_head_is_refused() -> None:
    with pytest.raises(ConfigError, match="no trained classification head"):
        load_reranker("minilm", kind="cross-encoder")


def test_missing_transformers_names_the_extra(monkeypatch: pytest.MonkeyPatch, tiny_ce_dir: Path) -> None:
    assert_names_the_extra(monkeypatch, "transformers", "hf", lambda: CrossEncoderReranker(str(tiny_ce_dir)))


def test_image_only_candidate_rejected(ce1: CrossEncoderReranker) -> None:
    with pytest.raises(InvalidInputError, match="image"):
        ce1.rerank(QUERY, [Candidate(id="img", image=b"\x89PNG")])


def test_close(tiny_ce_dir: Path) -> None:
    ranker = CrossEncoderReranker(str(tiny_ce_dir))
    ranker.close()
    ranker.close()
    with pytest.raises(Exception, match="closed"):
        ranker.rerank(QUERY, DOCS)


@pytest.mark.gpu
def test_cuda(tiny_ce_dir: Path) -> None:
    ranker = CrossEncoderReranker(str(tiny_ce_dir), device="cuda")
    assert ranker.device.type == "cuda" and ranker.dtype in (torch.float16, torch.bfloat16)
    cpu = CrossEncoderReranker(str(tiny_ce_dir), device="cpu")
    assert _by_position(ranker.rerank(QUERY, DOCS)) == pytest.approx(_by_position(cpu.rerank(QUERY, DOCS)), abs=2e-2)


# ------------------------------------------------------------------------------------ architectures (issue 15)
@pytest.fixture(scope="module")
def tiny_xlmr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_plugins.testing.tiny_encoders import build_tiny_xlmr_cross_encoder

    return build_tiny_xlmr_cross_encoder(tmp_path_factory.mktemp("tiny-xlmr"))


@pytest.fixture(scope="module")
def tiny_debertav2_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_plugins.testing.tiny_encoders import build_tiny_deberta_v2_cross_encoder

    return build_tiny_deberta_v2_cross_encoder(tmp_path_factory.mktemp("tiny-debertav2"))


@pytest.fixture(scope="module")
def tiny_modernbert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_plugins.testing.tiny_encoders import build_tiny_modernbert_cross_encoder

    return build_tiny_modernbert_cross_encoder(tmp_path_factory.mktemp("tiny-modernbert"))


def _st_token_ids(ce: Any, pairs: list[tuple[str, str]]) -> list[list[int]]:
    """The token ids sentence-transformers' CrossEncoder feeds its model (its own preprocess, unpadded)."""
    features = ce.preprocess(pairs)
    return [[t for t, m in zip(row, mask) if m] for row, mask in
            zip(features["input_ids"].tolist(), features["attention_mask"].tolist())]


@pytest.mark.parametrize("arch", ["xlmr", "modernbert", "debertav2"])
@pytest.mark.parametrize("max_length", [512, 20])
def test_parity_xlmr_modernbert_deberta(request: pytest.FixtureRequest, arch: str, max_length: int) -> None:
    """XLM-RoBERTa (bge-reranker-base/large/v2-m3 class), ModernBERT (gte-reranker-modernbert class) and DeBERTa-v2
    (mxbai-rerank v1 class): the same token ids as sentence-transformers' CrossEncoder, its scores to 1e-5."""
    from sentence_transformers import CrossEncoder

    folder = request.getfixturevalue(f"tiny_{arch}_dir")
    pairs = [(QUERY, d) for d in DOCS]
    st = CrossEncoder(str(folder), max_length=max_length)
    ours = CrossEncoderReranker(str(folder), max_length=max_length, long_documents="truncate")
    enc = encode_pairs(ours.tokenizer, [q for q, _ in pairs], [d for _, d in pairs], max_length=max_length)
    assert enc.input_ids == _st_token_ids(st, pairs)
    if arch == "debertav2":
        assert enc.token_type_ids is not None and enc.token_type_ids[0][-1] == 1  # second segment typed 1
    else:
        assert enc.token_type_ids is None  # XLM-R and ModernBERT take no token type ids
    if max_length == 20:
        assert enc.truncated
    expected = st.predict(pairs)
    assert _by_position(ours.rerank(QUERY, DOCS)) == pytest.approx(expected.tolist(), abs=1e-5)


def test_query_prefix_is_sentence_transformers_prompt(tiny_xlmr_dir: Path) -> None:
    from sentence_transformers import CrossEncoder

    st = CrossEncoder(str(tiny_xlmr_dir))
    pairs = [(QUERY, d) for d in DOCS]
    expected = st.predict(pairs, prompt="query: ")
    assert not np.allclose(expected, st.predict(pairs), atol=1e-4)  # the prompt changes the scores
    ours = CrossEncoderReranker(str(tiny_xlmr_dir), query_prefix="query: ")
    assert _by_position(ours.rerank(QUERY, DOCS)) == pytest.approx(expected.tolist(), abs=1e-5)
    with_doc = CrossEncoderReranker(str(tiny_xlmr_dir), query_prefix="query: ", document_prefix="passage: ")
    doc_expected = st.predict([("query: " + QUERY, "passage: " + d) for d in DOCS])
    assert _by_position(with_doc.rerank(QUERY, DOCS)) == pytest.approx(doc_expected.tolist(), abs=1e-5)
    with pytest.raises(ConfigError, match="query_prefix"):
        CrossEncoderReranker(str(tiny_xlmr_dir), query_prefix=3)


@pytest.mark.parametrize(("saved", "expected_kind"), [
    ({"sentence_transformers": {"activation_fn": "torch.nn.modules.linear.Identity"}}, "raw"),
    ({"sbert_ce_default_activation_function": "torch.nn.modules.linear.Identity"}, "raw"),
    ({"sentence_transformers": {"activation_fn": "torch.nn.modules.activation.Sigmoid"}}, "sigmoid"),
    ({}, "sigmoid"),
])
def test_saved_activation_as_sentence_transformers(tmp_path: Path, tiny_ce_dir: Path, saved: dict[str, Any],
                                                   expected_kind: str) -> None:
    """activation='auto' applies what CrossEncoder.get_default_activation_fn applies (config key, else Sigmoid)."""
    import json
    import shutil

    from sentence_transformers import CrossEncoder

    folder = tmp_path / "saved"
    shutil.copytree(tiny_ce_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config.update(saved)
    (folder / "config.json").write_text(json.dumps(config))
    ours = CrossEncoderReranker(str(folder))
    assert ours.activation == expected_kind
    expected = CrossEncoder(str(folder)).predict([(QUERY, d) for d in DOCS])
    assert _by_position(ours.rerank(QUERY, DOCS)) == pytest.approx(expected.tolist(), abs=1e-5)


def test_unsupported_saved_activation_is_a_config_error(tmp_path: Path, tiny_ce_dir: Path) -> None:
    import json
    import shutil

    folder = tmp_path / "tanh"
    shutil.copytree(tiny_ce_dir, folder)
    config = json.loads((folder / "config.json").read_text())
    config["sentence_transformers"] = {"activation_fn": "torch.nn.modules.activation.Tanh"}
    (folder / "config.json").write_text(json.dumps(config))
    with pytest.raises(ConfigError, match="Tanh"):
        CrossEncoderReranker(str(folder))
    assert CrossEncoderReranker(str(folder), activation="raw").activation == "raw"


def test_recipes_load_without_kind(tmp_path: Path, tiny_xlmr_dir: Path, tiny_modernbert_dir: Path) -> None:
    """load_reranker(hub id) with no kind: a local copy in the hub cache layout is found by its recipe."""
    import shutil

    from rerank_plugins.recipes import find_recipe

    for hub_id, source in (("BAAI/bge-reranker-v2-m3", tiny_xlmr_dir),
                           ("Alibaba-NLP/gte-reranker-modernbert-base", tiny_modernbert_dir)):
        org, name = hub_id.split("/")
        snap = tmp_path / f"models--{org}--{name}" / "snapshots" / "abc123"
        shutil.copytree(source, snap)
        recipe = find_recipe(snap)
        assert recipe is not None and recipe.kind == "cross-encoder"
        ranker = load_reranker(str(snap))
        assert isinstance(ranker, CrossEncoderReranker)
        assert ranker.max_length == min(recipe.options["max_length"], 512)
        scores = ranker.rerank(QUERY, DOCS).scores
        assert all(type(s) is float and 0.0 <= s <= 1.0 for s in scores)
    assert find_recipe("jinaai/jina-reranker-v1-turbo-en").options["trust_remote_code"] is True


def test_chunk_policies_share_window_scores(tiny_ce_dir: Path) -> None:
    """Window scores do not depend on the pooling or planning: max, first and mean (and another max_chunks) read
    the windows the first policy scored, and give what they give on a cold cache."""
    cache = ScoreCache()
    ranker = CrossEncoderReranker(str(tiny_ce_dir), max_length=40, long_documents="chunk", cache=cache,
                                  max_chunks=100)
    docs = [LONG, "short"]
    first = ranker.rerank(QUERY, docs)
    for how in ("first", "mean"):
        policy = dataclasses.replace(ranker.policy, chunk_aggregate=how)
        warm = ranker.with_length_policy(policy).rerank(QUERY, docs)
        assert warm.details["rows_scored"] == 0 and warm.details["cache_hits"] == first.details["rows_scored"]
        cold = CrossEncoderReranker(str(tiny_ce_dir), max_length=40, long_documents="chunk", chunk_aggregate=how,
                                    max_chunks=100).rerank(QUERY, docs)
        assert warm.scores == pytest.approx(cold.scores, abs=1e-6)
    # the pair scores of truncate mode stay under their own key: a truncated pair is not a window
    plain = ranker.with_length_policy(dataclasses.replace(ranker.policy, long_documents="truncate"))
    with pytest.warns(TruncationWarning):
        cut = plain.rerank(QUERY, docs)
    assert cut.details["cache_hits"] == 0
