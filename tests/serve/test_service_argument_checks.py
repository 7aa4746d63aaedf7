"""The service's remaining inline argument checks go through rerank_plugins.validation (issue 24): ``cors_origins``
of create_app and every bound of the load generator are ConfigErrors naming the argument, raised before any model
is built or any request sent."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

pytest.importorskip("fastapi")

from rerank_plugins.errors import ConfigError
from rerank_plugins.serve.app import create_app
from rerank_plugins.serve.loadtest import run_load


@pytest.mark.parametrize("origins", [5, [b"http://a"], {"http://a": 1}])
def test_cors_origins_checked_before_the_model_is_built(origins: Any) -> None:
    with pytest.raises(ConfigError, match="cors_origins"):
        create_app("no-such-model-anywhere", cors_origins=origins)


def test_cors_origins_one_string_or_a_list() -> None:
    from rerank_plugins.testing.rerankers import KeywordReranker

    for origins in ("http://a", ["http://a", "http://b"]):
        assert create_app(KeywordReranker(), cors_origins=origins) is not None


BODY = [{"query": "q", "documents": ["d"]}]


@pytest.mark.parametrize(("bodies", "kwargs", "name"), [
    ([], {}, "bodies"),
    (BODY, {"concurrency": 0}, "concurrency"),
    (BODY, {"max_requests": "10"}, "max_requests"),
    (BODY, {"max_seconds": 0}, "max_seconds"),
    (BODY, {"bad_every": 0}, "bad_every"),
    (BODY, {"timeout": -1}, "timeout"),
    (BODY, {"impatient": -1}, "impatient"),
    (BODY, {"impatient_body": ["q"]}, "impatient_body"),
    (BODY, {"impatient_backoff": float("nan")}, "impatient_backoff"),
])
def test_load_generator_bounds(bodies: Any, kwargs: dict[str, Any], name: str) -> None:
    with pytest.raises(ConfigError, match=name):
        asyncio.run(run_load("http://127.0.0.1:9/rerank", bodies, **kwargs))
