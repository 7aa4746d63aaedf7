"""Score activation (per model, per request), token truncation and token counts, on tiny random models."""

from __future__ import annotations

import math

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
pytest.importorskip("torch")
pytest.importorskip("transformers")
from fastapi.testclient import TestClient

from rerank_plugins.serve import create_app
from rerank_plugins.serve.scoring import ScoreMapper, score_kind
from rerank_plugins.testing.rerankers import KeywordReranker

QUERY = "what causes shock waves around aircraft"
DOCS = [
    "Shock waves form when an aircraft flies faster than sound and the air cannot move aside in time. " * 3,
    "Boil the pasta in salted water for nine minutes.",
    "Supersonic flow over a wedge produces an oblique shock.",
    "The market closed higher on Tuesday after a quiet session.",
]


@pytest.fixture(scope="module")
def ce_dir(tmp_path_factory):
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("serve-ce"), num_labels=1)


@pytest.fixture(scope="module")
def ce2_dir(tmp_path_factory):
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("serve-ce2"), num_labels=2)


def ce(path, **kw):
    from rerank_plugins.rankers.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(str(path), long_documents="truncate", **kw)


def by_index(results, key="relevance_score"):
    return {r["index"]: r[key] for r in results}


def in_process(reranker, docs=DOCS, query=QUERY):
    return {r.original_position: r.score for r in reranker.rerank(query, docs)}


@pytest.mark.parametrize("labels", [1, 2])
def test_cross_encoder_scores_activated_by_default_and_raw_on_request(ce_dir, ce2_dir, labels):
    path = ce_dir if labels == 1 else ce2_dir
    prob, raw = ce(path), ce(path, activation="raw")
    want_p, want_raw = in_process(prob), in_process(raw)
    assert score_kind(prob) == "probability" and score_kind(raw) == "logit"
    for engine in (prob, raw):  # whichever activation the model was built with, the answers agree
        with TestClient(create_app(engine)) as c:
            cohere = c.post("/v2/rerank", json={"query": QUERY, "documents": DOCS}).json()
            got = by_index(cohere["results"])
            assert got == pytest.approx(want_p, abs=1e-6) and all(0.0 <= v <= 1.0 for v in got.values())
            raw_answer = c.post("/rerank", json={"query": QUERY, "documents": DOCS, "raw_scores": True}).json()
            assert by_index(raw_answer["results"]) == pytest.approx(want_raw, abs=1e-4)
            tei = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": True}).json()
            assert by_index(tei, "score") == pytest.approx(want_raw, abs=1e-4)
            tei_p = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "raw_scores": False}).json()
            assert by_index(tei_p, "score") == pytest.approx(want_p, abs=1e-6)
            vllm = c.post("/score", json={"text_1": QUERY, "text_2": DOCS, "activation": False}).json()
            assert {d["index"]: d["score"] for d in vllm["data"]} == pytest.approx(want_raw, abs=1e-4)
            assert c.get("/health").json()["scores"]["relevance_in_0_1"] is True


def test_service_score_activation_options(ce_dir):
    raw_engine = ce(ce_dir, activation="raw")
    want_raw = in_process(raw_engine)
    with TestClient(create_app(raw_engine, score_activation="raw")) as c:
        got = by_index(c.post("/rerank", json={"query": QUERY, "documents": DOCS}).json()["results"])
        assert got == pytest.approx(want_raw, abs=1e-6)
    # an engine of unknown kind whose scores the operator declares logits
    kw = KeywordReranker(traces=False, offset=-0.5)
    want = in_process(kw)
    with TestClient(create_app(kw, score_activation="sigmoid")) as c:
        got = by_index(c.post("/rerank", json={"query": QUERY, "documents": DOCS}).json()["results"])
        assert got == pytest.approx({i: 1 / (1 + math.exp(-v)) for i, v in want.items()})
    with TestClient(create_app(KeywordReranker(traces=False, offset=-0.5))) as c:  # unknown: passed through
        got = by_index(c.post("/rerank", json={"query": QUERY, "documents": DOCS}).json()["results"])
        assert got == pytest.approx(want) and min(got.values()) < 0
        assert c.get("/health").json()["scores"] == {"score_activation": "model", "engine_scores": "unknown",
                                                      "relevance_in_0_1": False}


def test_embedding_cosines_map_to_0_1(tmp_path):
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.rankers.embedding import EmbeddingReranker
    from rerank_plugins.testing.tiny_models import build_tiny_sentence_transformer

    engine = EmbeddingReranker(str(build_tiny_sentence_transformer(tmp_path / "st")))
    cos = in_process(engine)
    with TestClient(create_app(engine)) as c:
        got = by_index(c.post("/rerank", json={"query": QUERY, "documents": DOCS}).json()["results"])
        raw = by_index(c.post("/rerank", json={"query": QUERY, "documents": DOCS, "raw_scores": True}).json()[
            "results"])
    assert got == pytest.approx({i: (1 + min(1.0, v)) / 2 for i, v in cos.items()}, abs=1e-6)
    assert raw == pytest.approx(cos, abs=1e-6) and all(-1.0 <= v <= 1.0 for v in raw.values())


def test_score_mapper_edges():
    class Prob(KeywordReranker):
        activation, num_labels = "sigmoid", 1

    m = ScoreMapper(Prob())
    assert m.raw(0.5) == 0.0 and m.raw(1.0) == 1e300 and m.raw(0.0) == -1e300
    assert m.relevance(1.0000002) == 1.0
    assert m.raw(1 / (1 + math.exp(-3.0))) == pytest.approx(3.0)
    from rerank_plugins.errors import ConfigError

    with pytest.raises(ConfigError, match="score_activation"):
        ScoreMapper(Prob(), "softmax")


def test_max_tokens_per_doc_is_the_engines_doc_max_length(ce_dir):
    from rerank_plugins.rankers.cross_encoder import CrossEncoderReranker

    engine = ce(ce_dir)
    capped = CrossEncoderReranker(str(ce_dir), doc_max_length=6, long_documents="truncate")
    want = in_process(capped)
    with TestClient(create_app(engine)) as c:
        got = by_index(c.post("/v2/rerank", json={"query": QUERY, "documents": DOCS,
                                                  "max_tokens_per_doc": 6}).json()["results"])
        assert got == pytest.approx(want, abs=1e-6)
        assert got != pytest.approx(in_process(engine), abs=1e-6)  # the option changed what the model read
        bad = c.post("/rerank", json={"query": QUERY, "documents": DOCS, "max_tokens_per_doc": 0})
        assert bad.status_code == 422 and "max_tokens_per_doc" in bad.json()["error"]


def test_tei_truncate_and_direction(ce_dir):
    engine = ce(ce_dir, max_length=24)
    tok = engine.tokenizer
    q_tokens = len(tok(QUERY, add_special_tokens=False)["input_ids"])
    room = 24 - tok.num_special_tokens_to_add(pair=True) - q_tokens
    enc = tok(DOCS, add_special_tokens=False, return_offsets_mapping=True)
    right = [d[: o[room - 1][1]] if len(o) > room else d for d, o in zip(DOCS, enc["offset_mapping"])]
    left = [d[o[-room][0]:] if len(o) > room else d for d, o in zip(DOCS, enc["offset_mapping"])]
    with TestClient(create_app(engine)) as c:
        too_long = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "truncate": False})
        assert too_long.status_code == 413 and too_long.json()["error_type"] == "validation"
        assert "send truncate: true" in too_long.json()["error"]
        r = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "truncate": True, "truncation_direction": "Right"})
        assert by_index(r.json(), "score") == pytest.approx(in_process(engine, right), abs=1e-6)
        r = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "truncate": True, "truncation_direction": "Left"})
        assert by_index(r.json(), "score") == pytest.approx(in_process(engine, left), abs=1e-6)
        assert in_process(engine, left) != pytest.approx(in_process(engine, right), abs=1e-6)
        short = c.post("/rerank", json={"query": QUERY, "texts": DOCS[1:2], "truncate": False})
        assert short.status_code == 200
        vllm = c.post("/score", json={"text_1": QUERY, "text_2": DOCS, "truncate_prompt_tokens": -1}).json()
        assert {d["index"]: d["score"] for d in vllm["data"]} == pytest.approx(in_process(engine, right), abs=1e-6)
        wrong = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "truncation_direction": "up"})
        assert wrong.status_code == 422 and "'left' or 'right'" in wrong.json()["error"]


def test_usage_counts_the_tokens_the_model_reads(ce_dir):
    engine = ce(ce_dir, max_length=24)
    tok = engine.tokenizer
    lengths = [min(24, len(ids)) for ids in tok([QUERY] * len(DOCS), DOCS)["input_ids"]]
    with TestClient(create_app(engine)) as c:
        data = c.post("/v1/rerank", json={"query": QUERY, "documents": DOCS}).json()
        assert data["usage"]["total_tokens"] == sum(lengths) == data["meta"]["tokens"]["input_tokens"]
        capped = c.post("/v1/rerank", json={"query": QUERY, "documents": DOCS, "max_tokens_per_doc": 2}).json()
        assert capped["usage"]["total_tokens"] < sum(lengths)
        models = c.get("/v1/models").json()
        assert models["data"][0]["max_model_len"] == 24


# ---------------------------------------------------------------- the default model's path (issue 21 item 5)
# An embedding reranker (the default bundled MiniLM is one) reads the query once and each document alone, cut at
# max_seq_length: the service counts and cuts by that tokenizer.
LONG_DOCS = [DOCS[0] * 4, *DOCS[1:3]]


@pytest.fixture(scope="module")
def st_dir(tmp_path_factory):
    from rerank_plugins.testing.tiny_models import build_tiny_sentence_transformer

    return build_tiny_sentence_transformer(tmp_path_factory.mktemp("serve-st"))


def embedding(path, **kw):
    from rerank_plugins.rankers.embedding import EmbeddingReranker

    return EmbeddingReranker(str(path), **kw)


def scores(reranker, docs):
    return {r.original_position: r.score for r in reranker.rerank(QUERY, docs)}


def cut(tok, texts, n):
    enc = tok(texts, add_special_tokens=False, return_offsets_mapping=True)
    return [t[: o[n - 1][1]] if len(o) > n else t for t, o in zip(texts, enc["offset_mapping"])]


def read_tokens(engine, query, docs):
    """What the sentence-transformers model reads: prompt + text, special tokens in, cut at max_seq_length."""
    tok, limit = engine.model.tokenizer, engine.model.max_seq_length
    q = min(limit, len(tok((engine.query_prompt or "") + query)["input_ids"]))
    return q + sum(min(limit, len(ids)) for ids in tok([(engine.document_prompt or "") + d for d in docs])["input_ids"])


def test_embedding_usage_counts_the_models_tokens_not_words(st_dir):
    engine = embedding(st_dir, query_prompt="query: ", document_prompt="passage: ")
    want = read_tokens(engine, QUERY, LONG_DOCS)
    words = len(QUERY.split()) * len(LONG_DOCS) + sum(len(d.split()) for d in LONG_DOCS)
    assert want != words
    with TestClient(create_app(engine)) as c:
        data = c.post("/v1/rerank", json={"query": QUERY, "documents": LONG_DOCS}).json()
        assert data["usage"]["total_tokens"] == want == data["meta"]["tokens"]["input_tokens"]
        score = c.post("/score", json={"text_1": QUERY, "text_2": LONG_DOCS}).json()
        assert score["usage"]["total_tokens"] == want


def test_embedding_token_options_cut_with_the_models_tokenizer(st_dir):
    engine = embedding(st_dir)
    tok, limit = engine.model.tokenizer, engine.model.max_seq_length
    assert len(tok(LONG_DOCS[0])["input_ids"]) > limit  # the long document is over the model's limit
    relevance = create_app(engine).state.scores.relevance
    with TestClient(create_app(engine)) as c:
        capped = c.post("/v2/rerank", json={"query": QUERY, "documents": LONG_DOCS, "max_tokens_per_doc": 5})
        assert capped.status_code == 200, capped.text
        want = {i: relevance(s) for i, s in scores(engine, cut(tok, LONG_DOCS, 5)).items()}
        assert {r["index"]: r["relevance_score"] for r in capped.json()["results"]} == pytest.approx(want, abs=1e-6)
        assert capped.json()["usage"]["total_tokens"] == read_tokens(engine, QUERY, cut(tok, LONG_DOCS, 5))

        # truncate: true cuts where sentence-transformers cuts (its max_seq_length): the scores do not change
        tei = c.post("/rerank", json={"query": QUERY, "texts": LONG_DOCS, "truncate": True})
        assert tei.status_code == 200, tei.text
        full = {i: relevance(s) for i, s in scores(engine, LONG_DOCS).items()}
        assert {r["index"]: r["score"] for r in tei.json()} == pytest.approx(full, abs=1e-5)
        refused = c.post("/rerank", json={"query": QUERY, "texts": LONG_DOCS, "truncate": False})
        assert refused.status_code == 413 and "document 0" in refused.json()["error"]
        assert c.post("/rerank", json={"query": QUERY, "texts": LONG_DOCS[1:], "truncate": False}).status_code == 200

        # vLLM's truncate_prompt_tokens: tokens per model input, special tokens in
        budget = 9
        room = budget - tok.num_special_tokens_to_add(pair=False)
        vllm = c.post("/score", json={"text_1": QUERY, "text_2": LONG_DOCS, "truncate_prompt_tokens": budget})
        assert vllm.status_code == 200, vllm.text
        want = {i: relevance(s) for i, s in scores(engine, cut(tok, LONG_DOCS, room)).items()}
        assert {d["index"]: d["score"] for d in vllm.json()["data"]} == pytest.approx(want, abs=1e-6)


@pytest.mark.slow
def test_the_default_model_has_a_token_path():
    """The bundled MiniLM (the service's default model) counts and cuts by its own WordPiece tokens."""
    from rerank_plugins import load_reranker

    engine = load_reranker("minilm")
    want = read_tokens(engine, QUERY, LONG_DOCS)
    with TestClient(create_app(engine)) as c:
        data = c.post("/v1/rerank", json={"query": QUERY, "documents": LONG_DOCS}).json()
        assert data["usage"]["total_tokens"] == want
        for body in ({"max_tokens_per_doc": 16}, {"truncate": True}, {"truncate_prompt_tokens": 64}):
            r = c.post("/v2/rerank", json={"query": QUERY, "documents": LONG_DOCS, **body})
            assert r.status_code == 200, (body, r.text)


def test_tokens_are_counted_only_for_answers_that_report_them(ce_dir, monkeypatch):
    """Counting usage tokenizes every document: it runs after ranking and only where the answer has usage (not
    for TEI's list, not for a request whose client left), so abandoned large requests cost no tokenizer time."""
    app = create_app(ce(ce_dir, max_length=24))
    tokens = app.state.pipeline.tokens
    calls = []
    real = tokens.input_lengths
    monkeypatch.setattr(tokens, "input_lengths", lambda *a, **k: calls.append(1) or real(*a, **k))
    with TestClient(app) as c:
        assert c.post("/rerank", json={"query": QUERY, "texts": DOCS}).status_code == 200
        assert calls == []
        assert c.post("/rerank", json={"query": QUERY, "documents": DOCS}).json()["usage"]["total_tokens"] > 0
        assert calls == [1]
