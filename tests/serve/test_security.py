"""API keys, CORS, Content-Type and the one error shape of every status (in-process ASGI clients)."""

from __future__ import annotations

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("httpx")
from fastapi.testclient import TestClient

from rerank_plugins.errors import ConfigError
from rerank_plugins.serve import create_app
from rerank_plugins.serve.security import API_KEYS_ENV, APIKeyASGI
from rerank_plugins.testing.rerankers import KeywordReranker

BODY = {"query": "shock waves", "documents": ["shock waves", "pasta"]}
ERROR_KEYS = {"error", "type", "error_type", "detail"}


def keyed(**kw):
    return TestClient(create_app(KeywordReranker(traces=False), api_keys=["k-one", "k-two"], **kw))


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def test_no_key_wrong_key_and_right_keys(monkeypatch):
    monkeypatch.delenv(API_KEYS_ENV, raising=False)
    with keyed() as c:
        none = c.post("/rerank", json=BODY)
        assert none.status_code == 401 and none.json()["type"] == "unauthorized"
        assert set(none.json()) == ERROR_KEYS and "Bearer" in none.headers["www-authenticate"]
        assert "missing API key" in none.json()["error"]
        wrong = c.post("/rerank", json=BODY, headers=bearer("k-three"))
        assert wrong.status_code == 401 and wrong.json()["error"] == "invalid API key"
        assert c.post("/rerank", json=BODY, headers={"Authorization": "Basic k-one"}).status_code == 401
        assert c.post("/rerank", json=BODY, headers={"Authorization": "k-one"}).status_code == 401
        for key in ("k-one", "k-two"):
            assert c.post("/rerank", json=BODY, headers=bearer(key)).status_code == 200
        assert c.post("/rerank", json=BODY, headers={"Authorization": "bearer k-two"}).status_code == 200
        metrics = c.get("/metrics", headers=bearer("k-one")).text
    assert 'rerank_errors_total{path="/rerank",kind="unauthorized"} 4' in metrics


def test_a_key_in_the_query_string_is_refused_even_when_right():
    with keyed() as c:
        for q in ("api_key=k-one", "key=k-one", "token=k-one", "access_token=k-one"):
            r = c.post(f"/rerank?{q}", json=BODY, headers=bearer("k-one"))
            assert r.status_code == 401 and "not accepted in the URL" in r.json()["error"], q


def test_health_is_open_metrics_configurable_and_env_keys(monkeypatch):
    with keyed() as c:
        assert c.get("/health").status_code == 200
        assert c.get("/metrics").status_code == 401
        assert c.get("/metrics", headers=bearer("k-one")).status_code == 200
        assert c.get("/v1/models").status_code == 401
    with keyed(metrics_open=True) as c:
        assert c.get("/metrics").status_code == 200
    monkeypatch.setenv(API_KEYS_ENV, "env-a, env-b")
    with TestClient(create_app(KeywordReranker(traces=False))) as c:
        assert c.post("/rerank", json=BODY).status_code == 401
        assert c.post("/rerank", json=BODY, headers=bearer("env-b")).status_code == 200
    with TestClient(create_app(KeywordReranker(traces=False), api_keys_from_env=False)) as c:
        assert c.post("/rerank", json=BODY).status_code == 200


def test_keys_are_compared_against_every_key_in_constant_time(monkeypatch):
    import hmac

    calls = []
    real = hmac.compare_digest
    monkeypatch.setattr(hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    guard = APIKeyASGI(None, [b"k-one", b"k-two", b"k-three"])
    assert guard.check(b"k-one") and not guard.check(b"nope") and not guard.check(None)
    assert len(calls) == 6  # no early exit on the first match


def test_bad_key_configuration():
    with pytest.raises(ConfigError, match="non-empty"):
        create_app(KeywordReranker(), api_keys=[""])
    with pytest.raises(ConfigError, match="whitespace"):
        create_app(KeywordReranker(), api_keys=["a b"])


def test_cors_is_opt_in_and_preflight_needs_no_key():
    with TestClient(create_app(KeywordReranker(traces=False))) as c:
        r = c.options("/rerank", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in r.headers
    with keyed(cors_origins=["https://app.example"]) as c:
        pre = c.options("/rerank", headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST",
                                            "Access-Control-Request-Headers": "authorization, content-type"})
        assert pre.status_code == 200
        assert pre.headers["access-control-allow-origin"] == "https://app.example"
        assert "POST" in pre.headers["access-control-allow-methods"]
        assert "authorization" in pre.headers["access-control-allow-headers"].lower()
        other = c.options("/rerank", headers={"Origin": "https://evil.example",
                                              "Access-Control-Request-Method": "POST"})
        assert other.status_code == 400 and "access-control-allow-origin" not in other.headers
        # the one error body (issue 21 item 3: starlette answered text/plain "Disallowed CORS origin")
        assert other.headers["content-type"] == "application/json" and set(other.json()) == ERROR_KEYS
        assert other.json()["type"] == "cors_refused" and "origin" in other.json()["error"]
        real = c.post("/rerank", json=BODY, headers={"Origin": "https://app.example", **bearer("k-one")})
        assert real.status_code == 200 and real.headers["access-control-allow-origin"] == "https://app.example"
        refused = c.post("/rerank", json=BODY, headers={"Origin": "https://app.example"})
        assert refused.status_code == 401 and refused.headers["access-control-allow-origin"] == "https://app.example"
        metrics = c.get("/metrics", headers=bearer("k-one")).text
    assert 'rerank_errors_total{path="/rerank",kind="cors_refused"} 1' in metrics
    assert 'rerank_requests_total{path="/rerank",method="OPTIONS",status="400"} 1' in metrics


def test_refused_keys_count_in_the_request_metrics(monkeypatch):
    # issue 21 item 6: a 401 was answered outside the metrics layer and never reached rerank_requests_total
    monkeypatch.delenv(API_KEYS_ENV, raising=False)
    with keyed() as c:
        assert c.post("/rerank", json=BODY).status_code == 401
        assert c.post("/rerank", json=BODY, headers=bearer("nope")).status_code == 401
        metrics = c.get("/metrics", headers=bearer("k-one")).text
    assert 'rerank_requests_total{path="/rerank",method="POST",status="401"} 2' in metrics
    assert 'rerank_errors_total{path="/rerank",kind="unauthorized"} 2' in metrics


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data",
                                          None, ""])
def test_non_json_content_types_are_415(content_type):
    # None: no Content-Type at all, which a browser sends without a CORS preflight (issue 21 item 4: it was scored)
    headers = {} if content_type is None else {"content-type": content_type}
    with TestClient(create_app(KeywordReranker(traces=False))) as c:
        r = c.post("/rerank", content=b'{"query": "q", "documents": ["d"]}', headers=headers)
        assert "content-type" in r.request.headers or content_type is None
        assert r.status_code == 415 and r.json()["type"] == "unsupported_media_type"
        assert set(r.json()) == ERROR_KEYS
        for ok in ("application/json", "application/json; charset=utf-8", "application/vnd.api+json"):
            assert c.post("/rerank", content=b'{"query": "q", "documents": ["d"]}',
                          headers={"content-type": ok}).status_code == 200


def test_every_status_has_the_same_error_shape():
    with TestClient(create_app(KeywordReranker(traces=False), max_documents=2)) as c:
        answers = {
            404: c.get("/nope"),
            405: c.get("/rerank"),
            400: c.post("/rerank", content=b"{", headers={"content-type": "application/json"}),
            413: c.post("/rerank", json={"query": "q", "documents": ["a"] * 3}),
            422: c.post("/rerank", json={"query": 1, "documents": []}),
        }
        for status, r in answers.items():
            assert r.status_code == status
            data = r.json()
            assert set(data) == ERROR_KEYS, (status, data)
            assert data["error"] == data["detail"] and data["error"]
        assert answers[404].json()["type"] == "not_found" and "/nope" in answers[404].json()["error"]
        assert answers[405].json()["type"] == "method_not_allowed" and answers[405].headers["allow"] == "POST"
        assert answers[413].json()["error_type"] == "validation"  # TEI's kind for a limit
        metrics = c.get("/metrics").text
    assert 'rerank_errors_total{path="other",kind="not_found"} 1' in metrics  # unknown paths share one label


def test_openapi_describes_model_as_not_checked():
    with TestClient(create_app(KeywordReranker(traces=False))) as c:
        spec = c.get("/openapi.json").json()
    schema = spec["paths"]["/rerank"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    text = schema["properties"]["model"]["description"]
    assert "not checked" in text and "strict" not in text
    assert "/score" in spec["paths"]
