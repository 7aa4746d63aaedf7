"""API keys for the rerank service: ``Authorization: Bearer <key>``, compared in constant time.

:class:`APIKeyASGI` wraps the app (pure ASGI, nothing buffered). With keys configured every request needs one
of them, except ``GET /health`` (load balancers probe it without credentials), ``/metrics`` when
``metrics_open`` is true, and CORS preflights (``OPTIONS`` with ``Access-Control-Request-Method``, answered by
the CORS layer outside this one). The key is compared with :func:`hmac.compare_digest` against every configured
key (no early exit, so timing does not tell which key or how much of it matched). A key in the query string
(``?api_key=``, ``?key=``, ``?token=``, ``?access_token=``) is refused with 401 even when it is right: URLs end
up in access logs and proxies. Failures answer 401 with ``WWW-Authenticate: Bearer`` and the service's error
body, and count as ``rerank_errors_total{kind="unauthorized"}``.

``RERANK_PLUGINS_API_KEYS`` (comma-separated) adds keys from the environment (:func:`keys_from_env`).
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any
from urllib.parse import parse_qsl

from ..validation import check_api_keys

__all__ = ["API_KEYS_ENV", "APIKeyASGI", "error_body", "keys_from_env", "normalise_keys", "send_json"]

API_KEYS_ENV = "RERANK_PLUGINS_API_KEYS"
QUERY_KEY_NAMES = frozenset({"api_key", "apikey", "api-key", "key", "token", "access_token"})

#: TEI's ``error_type`` vocabulary (text-embeddings-inference router) for each of the service's error kinds
_TEI_TYPES = {
    "overloaded": "overloaded",
    "shutting_down": "unhealthy",
    "backend": "backend",
    "model_output": "backend",
    "rerank": "backend",
    "internal": "backend",
}

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def error_body(message: str, kind: str) -> dict[str, str]:
    """The one error body of every status: ours (``error``, ``type``), TEI's ``error_type``, and ``detail``
    (what FastAPI clients and LangChain's ``JinaRerank`` read)."""
    return {"error": message, "type": kind, "error_type": _TEI_TYPES.get(kind, "validation"), "detail": message}


def keys_from_env(environ: MutableMapping[str, str] | None = None) -> list[str]:
    raw = (os.environ if environ is None else environ).get(API_KEYS_ENV, "")
    return [k.strip() for k in raw.split(",") if k.strip()]


def normalise_keys(keys: str | Iterable[str] | None) -> list[bytes]:
    return [k.encode("utf-8") for k in check_api_keys("API keys", keys)]


async def send_json(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(payload).encode("utf-8")
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                    *(headers or [])],
    })
    await send({"type": "http.response.body", "body": body})


class APIKeyASGI:
    """See the module docstring. ``on_reject(path)`` is called for each refused request (metrics)."""

    def __init__(self, app: Any, keys: list[bytes], *, metrics_open: bool = False,
                 on_reject: Callable[[str], None] | None = None) -> None:
        self.app = app
        self.keys = keys
        self.metrics_open = metrics_open
        self.on_reject = on_reject

    def _open(self, scope: Scope) -> bool:
        path = scope.get("path", "")
        if path == "/health":
            return True
        if path == "/metrics" and self.metrics_open:
            return True
        if scope.get("method") == "OPTIONS":
            headers = dict(scope.get("headers") or [])
            return b"access-control-request-method" in headers
        return False

    def check(self, presented: bytes | None) -> bool:
        if presented is None:
            return False
        ok = False
        for key in self.keys:  # every key, no early exit
            ok |= hmac.compare_digest(presented, key)
        return ok

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not self.keys or self._open(scope):
            await self.app(scope, receive, send)
            return
        query = scope.get("query_string", b"").decode("latin-1")
        if any(name.lower() in QUERY_KEY_NAMES for name, _ in parse_qsl(query, keep_blank_values=True)):
            await self._reject(scope, send, "API keys are not accepted in the URL (they end up in logs); send "
                               "'Authorization: Bearer <key>'")
            return
        presented = None
        for name, value in scope.get("headers") or []:
            if name == b"authorization":
                scheme, _, token = value.partition(b" ")
                if scheme.lower() == b"bearer" and token.strip():
                    presented = token.strip()
                break
        if presented is None:
            await self._reject(scope, send, "missing API key: send 'Authorization: Bearer <key>'")
            return
        if not self.check(presented):
            await self._reject(scope, send, "invalid API key")
            return
        await self.app(scope, receive, send)

    async def _reject(self, scope: Scope, send: Send, message: str) -> None:
        if self.on_reject is not None:
            self.on_reject(scope.get("path", ""))
        await send_json(send, 401, error_body(message, "unauthorized"),
                        headers=[(b"www-authenticate", b'Bearer realm="rerank"')])
