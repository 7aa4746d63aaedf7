"""RemoteReranker against our own service (uvicorn on 127.0.0.1) and against scripted Cohere/TEI-shaped stubs."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

from _support.http_stub import Recorded, Reply, StubHTTPServer
from _support.live_server import LiveServer

from rerank_plugins.errors import BackendError, ConfigError, InvalidInputError, ModelOutputError
from rerank_plugins.models import load_reranker
from rerank_plugins.rankers.remote import RemoteReranker
from rerank_plugins.serve import create_app
from rerank_plugins.testing.conformance import RerankerConformance, sample_candidates
from rerank_plugins.testing.rerankers import KeywordReranker
from rerank_plugins.types import Candidate

pytestmark = pytest.mark.server

QUERY = "What causes shock waves around supersonic aircraft?"


@pytest.fixture(scope="module")
def service():
    with LiveServer(create_app(KeywordReranker(traces=False), batch_wait_ms=1)) as server:
        yield server


@pytest.fixture()
def remote(service):
    r = load_reranker("remote", url=service.url + "/rerank", model="keyword", backoff=0.0)
    yield r
    r.close()


class TestRemoteConformance(RerankerConformance):
    @pytest.fixture()
    def reranker(self, remote):
        return remote


def test_equals_in_process(remote):
    cands = sample_candidates()
    got = remote.rerank(QUERY, cands)
    want = KeywordReranker().rerank(QUERY, cands)
    assert got.ids == want.ids
    assert got.scores == pytest.approx(want.scores)
    assert got.reranker == "remote:keyword"


def test_batch_and_async_forms(remote):
    queries = [QUERY, "pasta boiling water", "stock market"]
    lists = [sample_candidates()] * 3
    want = [KeywordReranker().rerank(q, c).ids for q, c in zip(queries, lists)]
    assert [r.ids for r in remote.rerank_batch(queries, lists)] == want


async def test_native_async(remote):
    queries = [QUERY, "pasta boiling water", "stock market"]
    lists = [sample_candidates()] * 3
    want = [KeywordReranker().rerank(q, c).ids for q, c in zip(queries, lists)]
    got = await remote.arerank_batch(queries, lists)
    assert [r.ids for r in got] == want
    assert (await remote.arerank(QUERY, sample_candidates(), top_k=2)).ids == want[0][:2]
    await remote.aclose()


def test_service_errors_surface_with_their_message(service):
    r = RemoteReranker(service.url + "/rerank", backoff=0.0)
    with pytest.raises(BackendError, match=r"413.*too many documents"):
        r.rerank(QUERY, [f"doc {i}" for i in range(1001)])
    r.close()


def test_tei_request_and_answer_shape():
    def reply(rec: Recorded) -> Reply:
        n = len(rec.body["texts"])
        return Reply(200, [{"index": i, "score": float(i)} for i in reversed(range(n))])

    with StubHTTPServer(reply) as stub:
        r = RemoteReranker(stub.url + "/rerank", api="tei", api_key="k")
        out = r.rerank(QUERY, ["a", "b", "c"])
        r.close()
    assert out.ids == ["2", "1", "0"]
    assert stub.requests[0].body == {"query": QUERY, "texts": ["a", "b", "c"]}
    assert stub.requests[0].headers["Authorization"] == "Bearer k"


def test_cohere_request_shape_and_retry():
    ok = Reply(200, {"results": [{"index": 1, "relevance_score": 0.9}, {"index": 0, "relevance_score": 0.1}]})
    with StubHTTPServer([Reply(503, {"message": "busy"}), ok]) as stub:
        r = RemoteReranker(stub.url + "/v2/rerank", model="rerank-v3.5", backoff=0.0)
        out = r.rerank(QUERY, ["a", "b"])
        r.close()
    assert out.ids == ["1", "0"] and out.scores == [0.9, 0.1]
    assert [q.path for q in stub.requests] == ["/v2/rerank", "/v2/rerank"]
    assert stub.requests[1].body == {"query": QUERY, "documents": ["a", "b"], "top_n": 2, "model": "rerank-v3.5"}


@pytest.mark.parametrize(
    "answer, match",
    [
        ({"results": [{"index": 0, "relevance_score": 0.5}]}, "returned 1 of 2 documents"),
        ({"results": [{"index": 0, "relevance_score": 0.5}, {"index": 0, "relevance_score": 0.4}]}, "twice"),
        ({"results": [{"index": 5, "relevance_score": 0.5}]}, "not in range"),
        ({"results": [{"index": 0, "relevance_score": "high"}, {"index": 1}]}, "no numeric score"),
        ({"data": []}, "neither a 'results' list"),
    ],
)
def test_broken_answers_are_model_output_errors(answer, match):
    with StubHTTPServer([], default=Reply(200, answer)) as stub:
        r = RemoteReranker(stub.url + "/rerank")
        with pytest.raises(ModelOutputError, match=match):
            r.rerank(QUERY, ["a", "b"])
        r.close()


def test_image_only_candidate_is_rejected():
    r = RemoteReranker("http://127.0.0.1:9/rerank")
    with pytest.raises(InvalidInputError, match="no text"):
        r.rerank(QUERY, [Candidate(id="img", image=b"\x89PNG")])


@pytest.mark.parametrize("kwargs", [{"url": "127.0.0.1/rerank"}, {"url": "http://x/rerank", "api": "jina"}])
def test_bad_configuration(kwargs):
    with pytest.raises(ConfigError):
        RemoteReranker(**kwargs)
