"""Real clients against the service on 127.0.0.1 (no network): the ``cohere`` SDK (ClientV2 and v1 Client),
LangChain's ``JinaRerank``, and the TEI and vLLM request / response shapes, checking every field they read.

Fields the clients read (cohere 7.3.1, langchain-community 0.4.2, site-packages):

* cohere ``V2RerankResponse`` (``cohere/v2/types/v2rerank_response.py``): ``id``, ``results[].index``,
  ``results[].relevance_score``, ``meta`` (``ApiMeta``: ``api_version``, ``billed_units``, ``tokens``); v1
  ``RerankResponse`` (``cohere/types/rerank_response.py``) also ``results[].document.text``. Errors: any JSON body,
  raised as ``ApiError`` subclasses by status (``UnauthorizedError``, ``UnprocessableEntityError``).
* ``langchain_community/document_compressors/jina_rerank.py``: ``results[].index``, ``results[].relevance_score``;
  on error ``resp["detail"]`` (a ``KeyError`` if absent). Jina's API also answers ``usage.total_tokens``.
* TEI (text-embeddings-inference router ``/rerank``): a list of ``{"index", "score", "text"?}``; errors
  ``{"error", "error_type"}``.
* vLLM (``vllm/entrypoints/openai/protocol.py``): ``ScoreResponse`` = ``id``, ``object`` ("list"), ``created``,
  ``model``, ``data[]`` = ``{"index", "object": "score", "score"}``, ``usage`` = ``{"prompt_tokens",
  "total_tokens", "completion_tokens"}``; ``RerankResponse.usage`` = ``{"prompt_tokens", "total_tokens"}``;
  ``GET /v1/models``: ``{"object": "list", "data": [{"id", "object": "model", "created", "owned_by", ...}]}``.
"""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")
httpx = pytest.importorskip("httpx")

from _support.live_server import LiveServer  # noqa: E402

from rerank_plugins.serve import create_app  # noqa: E402
from rerank_plugins.serve.security import API_KEYS_ENV  # noqa: E402
from rerank_plugins.testing.rerankers import KeywordReranker  # noqa: E402

pytestmark = pytest.mark.server

DOCS = [
    "Cooking pasta requires boiling water.",
    "Shock waves form around supersonic aircraft.",
    "Supersonic shock waves and expansion fans.",
    "The stock market closed higher.",
]
QUERY = "supersonic shock waves"
KEY = "test-key-123"


@pytest.fixture(scope="module")
def server():
    import os

    saved = os.environ.pop(API_KEYS_ENV, None)
    app = create_app(KeywordReranker(traces=False), model_name="kw", api_keys=[KEY])
    with LiveServer(app) as live:
        yield live
    if saved is not None:
        os.environ[API_KEYS_ENV] = saved


def expected(query: str = QUERY, docs: list[str] = DOCS):
    return KeywordReranker(traces=False).rerank(query, docs)


def test_cohere_client_v2(server):
    cohere = pytest.importorskip("cohere")
    co = cohere.ClientV2(api_key=KEY, base_url=server.url, timeout=30)
    out = co.rerank(model="anything", query=QUERY, documents=DOCS, top_n=3)
    want = expected()
    assert [r.index for r in out.results] == [r.original_position for r in want][:3]
    assert [r.relevance_score for r in out.results] == pytest.approx([r.score for r in want][:3])
    assert out.id and out.meta.api_version.version == "2" and out.meta.billed_units.search_units == 1
    assert out.meta.tokens.input_tokens > 0
    with pytest.raises(cohere.errors.UnauthorizedError) as bad:
        cohere.ClientV2(api_key="wrong", base_url=server.url).rerank(model="m", query=QUERY, documents=DOCS)
    assert bad.value.body["error"] == "invalid API key"
    # the keyword reranker has no tokenizer: max_tokens_per_doc is refused, not ignored
    with pytest.raises(cohere.errors.UnprocessableEntityError) as refused:
        co.rerank(model="m", query=QUERY, documents=DOCS, max_tokens_per_doc=64)
    assert "max_tokens_per_doc needs a reranker that truncates by tokens" in refused.value.body["error"]


def test_cohere_client_v1_with_documents(server):
    cohere = pytest.importorskip("cohere")
    co = cohere.Client(api_key=KEY, base_url=server.url, timeout=30)
    docs = [DOCS[0], {"text": DOCS[1]}, DOCS[2], DOCS[3]]
    out = co.rerank(model="m", query=QUERY, documents=docs, top_n=2, return_documents=True)
    want = expected()
    assert [r.index for r in out.results] == [r.original_position for r in want][:2]
    for r, w in zip(out.results, want):
        assert r.document.text == DOCS[r.index]
        assert r.relevance_score == pytest.approx(w.score)  # the keyword reranker's scores are not activated
    assert out.meta.api_version.version == "1"


def test_langchain_jina_rerank(server, monkeypatch):
    jina = pytest.importorskip("langchain_community.document_compressors.jina_rerank")
    from langchain_core.documents import Document

    monkeypatch.setattr(jina, "JINA_API_URL", server.url + "/v1/rerank")
    compressor = jina.JinaRerank(jina_api_key=KEY, top_n=2)
    docs = [Document(page_content=t, metadata={"n": i}) for i, t in enumerate(DOCS)]
    out = compressor.compress_documents(docs, QUERY)
    want = expected()
    assert [d.metadata["n"] for d in out] == [r.original_position for r in want][:2]
    assert [d.metadata["relevance_score"] for d in out] == pytest.approx([r.score for r in want][:2])
    raw = httpx.post(server.url + "/v1/rerank", json={"model": "m", "query": QUERY, "documents": DOCS},
                     headers={"Authorization": f"Bearer {KEY}"}).json()
    assert raw["usage"]["total_tokens"] > 0 and raw["model"] == "kw"
    # errors: JinaRerank raises RuntimeError(resp["detail"])
    wrong = jina.JinaRerank(jina_api_key="wrong", top_n=2)
    with pytest.raises(RuntimeError, match="invalid API key"):
        wrong.compress_documents(docs, QUERY)


def test_tei_request_and_error_shapes(server):
    auth = {"Authorization": f"Bearer {KEY}"}
    r = httpx.post(server.url + "/rerank", headers=auth, json={
        "query": QUERY, "texts": DOCS, "raw_scores": False, "return_text": True})
    assert r.status_code == 200
    data = r.json()
    want = expected()
    assert isinstance(data, list) and [x["index"] for x in data] == [w.original_position for w in want]
    assert [x["score"] for x in data] == pytest.approx([w.score for w in want])
    assert all(set(x) == {"index", "score", "text"} and x["text"] == DOCS[x["index"]] for x in data)
    no_text = httpx.post(server.url + "/rerank", headers=auth, json={"query": QUERY, "texts": DOCS}).json()
    assert all(set(x) == {"index", "score"} for x in no_text)
    bad = httpx.post(server.url + "/rerank", headers=auth, json={"query": QUERY, "texts": DOCS, "truncate": True,
                                                                  "truncation_direction": "Right"})
    assert bad.status_code == 422
    assert bad.json()["error_type"] == "validation" and "truncate" in bad.json()["error"]
    unauthorized = httpx.post(server.url + "/rerank", json={"query": QUERY, "texts": DOCS})
    assert set(unauthorized.json()) >= {"error", "error_type"}


def test_vllm_score_rerank_and_models_shapes(server):
    auth = {"Authorization": f"Bearer {KEY}"}
    want = {w.original_position: w.score for w in expected()}
    for path in ("/score", "/v1/score"):
        r = httpx.post(server.url + path, headers=auth, json={"model": "kw", "text_1": QUERY, "text_2": DOCS})
        assert r.status_code == 200, r.text
        data = r.json()
        assert set(data) == {"id", "object", "created", "model", "data", "usage"}
        assert data["object"] == "list" and isinstance(data["created"], int) and data["model"] == "kw"
        assert [d["index"] for d in data["data"]] == [0, 1, 2, 3]
        assert all(d["object"] == "score" for d in data["data"])
        assert [d["score"] for d in data["data"]] == pytest.approx([want[i] for i in range(4)])
        assert set(data["usage"]) == {"prompt_tokens", "total_tokens", "completion_tokens"}
        assert data["usage"]["total_tokens"] > 0
    # one query per pair, and both sides single strings
    pairs = httpx.post(server.url + "/score", headers=auth,
                       json={"text_1": ["pasta water", QUERY], "text_2": [DOCS[0], DOCS[1]]}).json()
    assert [d["score"] for d in pairs["data"]] == pytest.approx(
        [expected("pasta water", [DOCS[0]])[0].score, expected(QUERY, [DOCS[1]])[0].score])
    single = httpx.post(server.url + "/score", headers=auth, json={"text_1": QUERY, "text_2": DOCS[2]}).json()
    assert len(single["data"]) == 1
    mismatch = httpx.post(server.url + "/score", headers=auth, json={"text_1": ["a", "b"], "text_2": ["c"]})
    assert mismatch.status_code == 422 and "one text_1, or one per text_2" in mismatch.json()["error"]
    rerank = httpx.post(server.url + "/v1/rerank", headers=auth,
                        json={"model": "kw", "query": QUERY, "documents": DOCS, "top_n": 2,
                              "return_documents": True}).json()
    assert {"id", "model", "usage", "results"} <= set(rerank)
    assert {"prompt_tokens", "total_tokens"} <= set(rerank["usage"])
    assert all(set(x) == {"index", "document", "relevance_score"} for x in rerank["results"])
    models = httpx.get(server.url + "/v1/models", headers=auth).json()
    assert models["object"] == "list" and len(models["data"]) == 1
    card = models["data"][0]
    assert card["id"] == "kw" and card["object"] == "model" and isinstance(card["created"], int) and card["owned_by"]


def test_cohere_clients_read_chunked_answers_with_best_chunk(tmp_path):
    """Chunk mode (issue 20): each result carries ``best_chunk``; the cohere SDK (v1 ``max_chunks_per_doc``, v2
    with the field as an extra body parameter) parses the answer without error and reads the same scores.
    LangChain's and LlamaIndex's Cohere clients read ``results[].index`` / ``relevance_score`` from this SDK's
    response (langchain-cohere 0.6 and llama-index-postprocessor-cohere-rerank 0.10 pin cohere 5.x, so they are
    not installed beside cohere 7)."""
    cohere = pytest.importorskip("cohere")
    pytest.importorskip("torch")
    from rerank_plugins.rankers.cross_encoder import CrossEncoderReranker
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    engine = CrossEncoderReranker(str(build_tiny_cross_encoder(tmp_path / "ce", num_labels=1)), max_length=32)
    long_docs = [DOCS[0] + " " + " ".join(DOCS) * 4, DOCS[1], " ".join(DOCS[2:]) * 5]
    with LiveServer(create_app(engine, api_keys_from_env=False)) as live:
        raw = httpx.post(live.url + "/v1/rerank", json={"query": QUERY, "documents": long_docs,
                                                         "max_chunks_per_doc": 3}).json()
        assert all(set(r["best_chunk"]) == {"start", "end", "score", "index", "chunks"} for r in raw["results"])
        v1 = cohere.Client(api_key="none", base_url=live.url, timeout=30).rerank(
            model="m", query=QUERY, documents=long_docs, max_chunks_per_doc=3, return_documents=True)
        v2 = cohere.ClientV2(api_key="none", base_url=live.url, timeout=30).rerank(
            model="m", query=QUERY, documents=long_docs,
            request_options={"additional_body_parameters": {"long_document_strategy": "chunk",
                                                            "max_chunks_per_doc": 3}})
    for out in (v1, v2):
        assert [(r.index, r.relevance_score) for r in out.results] == \
            [(r["index"], pytest.approx(r["relevance_score"])) for r in raw["results"]]
    assert [r.document.text for r in v1.results] == [long_docs[r["index"]] for r in raw["results"]]
