"""One home for the HTTP transport settings (issue 24): OpenAIBackend and RemoteReranker take the same transport
arguments with the one set of defaults of rerank_plugins._http.HTTPSettings (before: 120 s for the backend, 60 s
for the remote reranker, and a third copy in JSONHTTPClient), and their clients carry exactly what was given."""

from __future__ import annotations

import dataclasses
import inspect

import pytest

pytest.importorskip("httpx")

from rerank_plugins._http import HTTPSettings, JSONHTTPClient
from rerank_plugins.backends.openai import OpenAIBackend
from rerank_plugins.errors import ConfigError
from rerank_plugins.rankers.remote import RemoteReranker

FIELDS = [f.name for f in dataclasses.fields(HTTPSettings)]


@pytest.mark.parametrize("cls", [OpenAIBackend, RemoteReranker])
def test_every_client_has_the_one_set_of_defaults(cls: type) -> None:
    params = inspect.signature(cls).parameters
    assert {name: params[name].default for name in FIELDS} == dataclasses.asdict(HTTPSettings())
    assert HTTPSettings().timeout == 120.0


def test_the_clients_carry_the_settings_given() -> None:
    given = {"timeout": 30.0, "connect_timeout": 2.0, "max_retries": 1, "backoff": 0.0, "max_backoff": 1.0,
             "max_concurrency": 2}
    backend = OpenAIBackend(base_url="http://127.0.0.1:9/v1", **given)
    remote = RemoteReranker("http://127.0.0.1:9/rerank", **given)
    assert backend._http.settings == remote._http.settings == HTTPSettings(**given)
    assert RemoteReranker("http://127.0.0.1:9/rerank")._http.settings == HTTPSettings()
    assert JSONHTTPClient("http://127.0.0.1:9").settings == HTTPSettings()
    backend.close()


@pytest.mark.parametrize(("name", "value"), [
    ("timeout", 0), ("timeout", "60"), ("connect_timeout", -1.0), ("max_retries", -1), ("max_retries", 1.5),
    ("backoff", float("nan")), ("max_backoff", -1), ("max_concurrency", 0),
])
def test_bad_settings_are_one_config_error_wherever_given(name: str, value: object) -> None:
    with pytest.raises(ConfigError, match=name):
        HTTPSettings(**{name: value})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=name):
        OpenAIBackend(base_url="http://127.0.0.1:9/v1", **{name: value})  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=name):
        RemoteReranker("http://127.0.0.1:9/rerank", **{name: value})  # type: ignore[arg-type]
