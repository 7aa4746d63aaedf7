"""Long documents through the service (issue 20): ``long_document_strategy`` and Cohere v1's
``max_chunks_per_doc`` mapped onto the engine's length policy, ``best_chunk`` per result, ``usage`` counting
every window, monoT5's hard documents scored, the CLI default."""

from __future__ import annotations

import asyncio
import warnings

import pytest

pytest.importorskip("fastapi")
httpx = pytest.importorskip("httpx")
pytest.importorskip("torch")
pytest.importorskip("transformers")
from fastapi.testclient import TestClient  # noqa: E402

from rerank_plugins.engine.length_policy import BEST_CHUNK_FIELDS, LengthPolicy, TruncationWarning  # noqa: E402
from rerank_plugins.errors import ConfigError  # noqa: E402
from rerank_plugins.serve import create_app  # noqa: E402
from rerank_plugins.testing.rerankers import KeywordReranker  # noqa: E402

QUERY = "what causes shock waves around aircraft"
FILLER = "boiling pasta in salted water takes nine minutes . "
NEEDLE = "shock waves form when an aircraft flies faster than sound . "
DOCS = [FILLER * 6 + NEEDLE + FILLER * 6, "Supersonic flow over a wedge produces an oblique shock.", FILLER * 9]
MAX_LENGTH = 48


@pytest.fixture(scope="module")
def ce_dir(tmp_path_factory):
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    return build_tiny_cross_encoder(tmp_path_factory.mktemp("serve-long-ce"), num_labels=1)


def ce(path, **kw):
    from rerank_plugins.rankers.cross_encoder import CrossEncoderReranker

    return CrossEncoderReranker(str(path), max_length=MAX_LENGTH, **kw)


def in_process(reranker, docs=DOCS, query=QUERY):
    """The reranker's ranked list in process (its TruncationWarning is expected here)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", TruncationWarning)
        return reranker.rerank(query, docs)


def expected(reranker, docs=DOCS):
    """{index: (score, best_chunk)} of the reranker in process."""
    return {r.original_position: (r.score, r.details.get("best_chunk")) for r in in_process(reranker, docs).results}


def window_tokens(engine, docs, policy):
    from rerank_plugins.rankers._pair_encoding import encode_pairs

    enc = encode_pairs(engine.tokenizer, [QUERY] * len(docs), docs, max_length=engine.max_length, policy=policy)
    return sum(enc.lengths)


def test_chunk_request_maps_onto_the_engines_policy(ce_dir):
    engine = ce(ce_dir, activation="raw")  # logits: relevance is their sigmoid, so the mapping is visible
    app = create_app(engine)
    relevance = app.state.scores.relevance
    want = expected(ce(ce_dir, activation="raw", long_documents="chunk", max_chunks=3))
    with TestClient(app) as c:
        r = c.post("/v1/rerank", json={"query": QUERY, "documents": DOCS, "long_document_strategy": "chunk",
                                       "max_chunks_per_doc": 3})
        assert r.status_code == 200, r.text
        data = r.json()
        for item in data["results"]:
            score, best = want[item["index"]]
            assert item["relevance_score"] == pytest.approx(relevance(score), abs=1e-6)
            assert set(item["best_chunk"]) == set(BEST_CHUNK_FIELDS)
            assert item["best_chunk"] == {**best, "score": pytest.approx(relevance(best["score"]), abs=1e-6)}
        assert want[0][1]["chunks"] == 3 and want[2][1]["chunks"] == 3 and want[1][1]["chunks"] == 1
        chunk_policy = LengthPolicy(long_documents="chunk", max_chunks=3)
        assert data["usage"]["total_tokens"] == window_tokens(engine, DOCS, chunk_policy)
        # Cohere v1: max_chunks_per_doc alone asks for chunks
        alone = c.post("/v1/rerank", json={"query": QUERY, "documents": DOCS, "max_chunks_per_doc": 3}).json()
        assert alone["results"] == data["results"]
        # the default stays the engine's own (truncate): no best_chunk, the usage of the cut pairs
        plain = c.post("/v1/rerank", json={"query": QUERY, "documents": DOCS}).json()
        assert all("best_chunk" not in item for item in plain["results"])
        assert plain["usage"]["total_tokens"] == window_tokens(engine, DOCS, LengthPolicy()) < \
            data["usage"]["total_tokens"]
        truncated = expected(engine)
        assert {i["index"]: i["relevance_score"] for i in plain["results"]} == pytest.approx(
            {i: relevance(s) for i, (s, _) in truncated.items()}, abs=1e-6)


def test_contradictions_and_unsupported_rerankers_are_422(ce_dir):
    with TestClient(create_app(ce(ce_dir))) as c:
        for body, fragment in [
            ({"long_document_strategy": "truncate", "max_chunks_per_doc": 2}, "leave one out"),
            ({"long_document_strategy": "chunk", "truncate": True}, "send one or the other"),
            ({"max_chunks_per_doc": 2, "truncate_prompt_tokens": 30}, "send one or the other"),
            ({"long_document_strategy": "split"}, "'truncate' or 'chunk'"),
            ({"max_chunks_per_doc": 0}, "max_chunks_per_doc"),
        ]:
            r = c.post("/rerank", json={"query": QUERY, "documents": DOCS, **body})
            assert r.status_code == 422 and fragment in r.json()["error"], (body, r.text)
    with TestClient(create_app(KeywordReranker(traces=False))) as c:
        r = c.post("/rerank", json={"query": QUERY, "documents": DOCS, "long_document_strategy": "chunk"})
        assert r.status_code == 422 and "does not chunk long documents" in r.json()["error"]
        ok = c.post("/rerank", json={"query": QUERY, "documents": DOCS, "long_document_strategy": "truncate"})
        assert ok.status_code == 200


def test_service_default_and_cli_flags(ce_dir):
    import inspect

    from rerank_plugins.commands import serve

    engine = ce(ce_dir)
    app = create_app(engine, long_document_strategy="chunk", max_chunks_per_doc=2)
    with TestClient(app) as c:
        data = c.post("/rerank", json={"query": QUERY, "documents": DOCS}).json()
        assert [item["best_chunk"]["chunks"] for item in sorted(data["results"], key=lambda i: i["index"])] == \
            [2, 1, 2]
        # the request's own fields win over the defaults
        wider = c.post("/rerank", json={"query": QUERY, "documents": DOCS, "max_chunks_per_doc": 3}).json()
        assert max(item["best_chunk"]["chunks"] for item in wider["results"]) == 3
        cut = c.post("/rerank", json={"query": QUERY, "documents": DOCS, "long_document_strategy": "truncate"})
        assert all("best_chunk" not in item for item in cut.json()["results"])
        tei = c.post("/rerank", json={"query": QUERY, "texts": DOCS, "truncate": True})
        assert tei.status_code == 200  # TEI's truncate: true cuts (a request's truncation wins over the default)
    command = inspect.signature(serve.serve_command).parameters
    app_params = inspect.signature(create_app).parameters
    for name in ("long_document_strategy", "max_chunks_per_doc"):
        assert command[name].default is None is app_params[name].default
    # a bad default is refused before any model is loaded (the name would fail to load otherwise)
    with pytest.raises(ConfigError, match="long_document_strategy"):
        create_app("no-such-model-anywhere", long_document_strategy="split")
    with pytest.raises(ConfigError, match="max_chunks_per_doc"):
        create_app("no-such-model-anywhere", max_chunks_per_doc=0)


async def test_requests_with_different_policies_share_a_batch_and_keep_their_answers(ce_dir):
    engine = ce(ce_dir)
    app = create_app(engine, batch_wait_ms=50)
    transport = httpx.ASGITransport(app=app)
    bodies = [{"query": QUERY, "documents": DOCS, **extra}
              for extra in ({}, {"max_chunks_per_doc": 2}, {"long_document_strategy": "chunk"}, {})]
    async with app.router.lifespan_context(app), httpx.AsyncClient(transport=transport, base_url="http://t") as c:
        answers = await asyncio.gather(*(c.post("/rerank", json=b) for b in bodies))
    assert app.state.batcher.batches == 1  # one engine call for the four (one rerank_batch per policy)
    assert all(a.status_code == 200 for a in answers)
    chunks = [sorted(i.get("best_chunk", {}).get("chunks", 0) for i in a.json()["results"]) for a in answers]
    assert chunks == [[0, 0, 0], [1, 2, 2], [1, 4, 6], [0, 0, 0]]  # max_chunks: 2, then the default 10


# ------------------------------------------------------------------------------------------------ monoT5
MONO_QUERY = "what is lift?"
#: the issue's document, and documents whose cut lands on a standalone SentencePiece "▁" (tests/rankers/
#: test_seq2seq_long_documents.py: "ж" and the combining accent are outside the tiny vocabulary)
HARD_DOCS = ["the wing ) " * 250, "\u0436 " * 600, "a " + "\u0436 " * 600, "e\u0301 " * 500]


@pytest.fixture(scope="module")
def t5_dir(tmp_path_factory):
    from rerank_plugins.testing.tiny_encoders import build_tiny_t5

    return build_tiny_t5(tmp_path_factory.mktemp("serve-t5"))


def test_monot5_hard_documents_are_scored_through_the_service(t5_dir):
    from rerank_plugins.rankers.seq2seq import DuoT5Reranker, MonoT5Reranker

    mono = MonoT5Reranker(str(t5_dir))
    docs = [*HARD_DOCS, "short"]
    with TestClient(create_app(mono)) as c:
        r = c.post("/v1/rerank", json={"query": MONO_QUERY, "documents": docs})
        assert r.status_code == 200, r.text
        want = {x.original_position: x.score for x in in_process(mono, docs, MONO_QUERY).results}
        assert {i["index"]: i["relevance_score"] for i in r.json()["results"]} == pytest.approx(want, abs=1e-6)
        chunked = c.post("/v1/rerank", json={"query": MONO_QUERY, "documents": docs, "max_chunks_per_doc": 4})
        assert chunked.status_code == 200, chunked.text
        ref = in_process(MonoT5Reranker(str(t5_dir), long_documents="chunk", max_chunks=4), docs, MONO_QUERY)
        for item, x in zip(sorted(chunked.json()["results"], key=lambda i: i["index"]),
                           sorted(ref.results, key=lambda x: x.original_position)):
            assert item["relevance_score"] == pytest.approx(x.score, abs=1e-6)
            assert item["best_chunk"] == {**x.details["best_chunk"], "score": pytest.approx(x.score, abs=1e-6)}
        # usage counts every window's prompt (the template rendered around the window, special tokens in)
        assert chunked.json()["usage"]["total_tokens"] > r.json()["usage"]["total_tokens"]
    with TestClient(create_app(DuoT5Reranker(str(t5_dir)))) as c:
        ok = c.post("/rerank", json={"query": MONO_QUERY, "documents": HARD_DOCS[:2]})
        assert ok.status_code == 200, ok.text
        refused = c.post("/rerank", json={"query": MONO_QUERY, "documents": HARD_DOCS[:2],
                                          "long_document_strategy": "chunk"})
        assert refused.status_code == 422 and "monoT5 first" in refused.json()["error"]


# ------------------------------------------------------------------------------------------- embedding
def test_the_default_models_kind_chunks_per_request(tmp_path):
    """An embedding reranker (the default bundled MiniLM is one) switches to chunk per request: the scores and
    best chunks are the in-process ones, usage counts the query once and every window's input."""
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.rankers.embedding import EmbeddingReranker
    from rerank_plugins.testing.tiny_models import build_tiny_sentence_transformer

    path = str(build_tiny_sentence_transformer(tmp_path / "st"))
    engine = EmbeddingReranker(path, document_prompt="passage: ")
    docs = [FILLER * 20 + NEEDLE + FILLER * 20, DOCS[1], FILLER * 30]
    app = create_app(engine)
    relevance = app.state.scores.relevance
    want = expected(EmbeddingReranker(path, document_prompt="passage: ", long_documents="chunk", max_chunks=4),
                    docs)
    assert want[0][1]["chunks"] == 4  # the long documents are over max_seq_length (128) several times
    with TestClient(app) as c:
        r = c.post("/v1/rerank", json={"query": QUERY, "documents": docs, "max_chunks_per_doc": 4})
        assert r.status_code == 200, r.text
        for item in r.json()["results"]:
            score, best = want[item["index"]]
            assert item["relevance_score"] == pytest.approx(relevance(score), abs=1e-6)
            assert item["best_chunk"] == {**best, "score": pytest.approx(relevance(best["score"]), abs=1e-6)}
        tok, limit = engine.model.tokenizer, engine.model.max_seq_length
        windows = [docs[i][b["start"]:b["end"]] for i, (_, b) in want.items()]
        assert all(len(tok("passage: " + w)["input_ids"]) <= limit for w in windows)
        from rerank_plugins.rankers._text_windows import plan_texts

        plans = plan_texts(tok, docs, LengthPolicy(long_documents="chunk", max_chunks=4), limit,
                           render=lambda t: "passage: " + t, who="test")
        usage = r.json()["usage"]["total_tokens"]
        assert usage == len(tok(QUERY)["input_ids"]) + sum(
            len(tok("passage: " + d[s:e])["input_ids"]) for d, p in zip(docs, plans) for s, e in p.spans)
        assert usage > 4 * limit  # every window of the two long documents, not each capped once
        plain = c.post("/v1/rerank", json={"query": QUERY, "documents": docs}).json()
        assert all("best_chunk" not in item for item in plain["results"]) and plain["usage"]["total_tokens"] < usage
