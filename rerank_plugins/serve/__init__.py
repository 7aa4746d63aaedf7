"""The rerank HTTP service (``pip install 'rerank-plugins[serve]'``): :func:`create_app` and its parts.

``rerank-plugins serve --model NAME`` runs it with uvicorn; see :mod:`rerank_plugins.serve.app` for the API.
"""

from __future__ import annotations

from .app import ServiceLimits, create_app
from .batcher import MicroBatcher, Overloaded
from .metrics import Metrics

__all__ = ["Metrics", "MicroBatcher", "Overloaded", "ServiceLimits", "create_app"]
