"""``rerank-plugins serve``: run the rerank HTTP service (Cohere / Jina / TEI / vLLM compatible) with uvicorn.

Every limit of :func:`rerank_plugins.serve.create_app` has a flag of the same name (``max_queue`` ->
``--max-queue``) and the same default (``tests/serve`` checks that they agree); ``serve --help`` shows them.
"""

from __future__ import annotations

from typing import Annotated

import typer

from ._eval_common import fail, offline_env, parse_options

__all__ = ["register", "serve_command"]

_LIMITS = "Limits"
_BATCH = "Batching"
_TIMEOUTS = "Timeouts"
_SECURITY = "Security"
_LONG = "Long documents"


def serve_command(
    model: Annotated[str, typer.Option("--model", "-m", help="reranker name, bundled model or path (load_reranker)")],
    kind: Annotated[
        str | None, typer.Option(help="strategy kind (cross-encoder, embedding, first, yes-no, ...)")
    ] = None,
    option: Annotated[
        list[str] | None, typer.Option("--option", "-o", help="reranker option key=value (JSON values), repeatable")
    ] = None,
    host: Annotated[str, typer.Option(help="address to bind (loopback by default)")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=0, max=65535, help="port to bind")] = 8000,
    model_name: Annotated[str | None, typer.Option(help="model name reported in answers (default: the reranker's)")
                          ] = None,
    score_activation: Annotated[
        str, typer.Option(help="model: the model's activation (relevance_score in [0, 1] for cross-encoders and "
                               "cosine models); sigmoid: treat scores as logits; raw: no activation")
    ] = "model",
    long_document_strategy: Annotated[
        str | None, typer.Option(help="default of the request field: truncate (cut a document past the model's "
                                      "length) or chunk (score token windows, keep the best; results get "
                                      "best_chunk) (default: the reranker's own policy)", rich_help_panel=_LONG)
    ] = None,
    max_chunks_per_doc: Annotated[
        int | None, typer.Option(min=1, help="default of Cohere's max_chunks_per_doc: most windows per document "
                                             "in chunk mode (default: the reranker's, 10)", rich_help_panel=_LONG)
    ] = None,
    max_documents: Annotated[int, typer.Option(min=1, help="documents per request", rich_help_panel=_LIMITS)] = 1000,
    max_chars_per_document: Annotated[
        int, typer.Option(min=1, help="characters per document", rich_help_panel=_LIMITS)] = 32_768,
    max_query_chars: Annotated[int, typer.Option(min=1, help="characters of the query", rich_help_panel=_LIMITS)
                               ] = 8_192,
    max_total_chars: Annotated[int, typer.Option(min=1, help="characters per request", rich_help_panel=_LIMITS)
                               ] = 4_000_000,
    max_body_bytes: Annotated[
        int | None, typer.Option(min=1, help="bytes per request body (default: 6 x max-total-chars + 64 x "
                                             "max-documents + 64 KiB)", rich_help_panel=_LIMITS)] = None,
    max_batch: Annotated[int, typer.Option(min=1, help="requests per engine call", rich_help_panel=_BATCH)] = 32,
    batch_wait_ms: Annotated[
        float, typer.Option(min=0.0, help="wait for more requests when idle (ms)", rich_help_panel=_BATCH)] = 5.0,
    max_batch_documents: Annotated[
        int, typer.Option(min=0, help="documents per engine call (0: no limit)", rich_help_panel=_BATCH)] = 4096,
    max_queue: Annotated[
        int, typer.Option(min=1, help="requests waiting for the engine; more get 503", rich_help_panel=_BATCH)
    ] = 1024,
    split_documents: Annotated[
        int | None, typer.Option(min=0, help="score larger requests in slices of this many documents, sharing the "
                                             "engine and stopping when the client leaves; pointwise rerankers only "
                                             "(default: 64 for cross-encoders and embeddings, off otherwise; 0: off)",
                                 rich_help_panel=_BATCH)] = None,
    body_timeout: Annotated[
        float, typer.Option(min=0.0, help="seconds for a request body to arrive, 408 after (0: no limit)",
                            rich_help_panel=_TIMEOUTS)] = 30.0,
    header_timeout: Annotated[
        float, typer.Option(min=0.001, help="seconds for a request's headers to arrive, 408 after",
                            rich_help_panel=_TIMEOUTS)] = 10.0,
    keep_alive_timeout: Annotated[
        float, typer.Option(min=0.001, help="seconds an idle keep-alive connection stays open",
                            rich_help_panel=_TIMEOUTS)] = 5.0,
    graceful_timeout: Annotated[
        float, typer.Option(min=0.001, help="on SIGTERM, seconds in-flight requests get to finish",
                            rich_help_panel=_TIMEOUTS)] = 10.0,
    api_key: Annotated[
        list[str] | None, typer.Option(help="require 'Authorization: Bearer KEY' (repeatable; keys are also read "
                                            "from RERANK_PLUGINS_API_KEYS, comma-separated, which keeps them out "
                                            "of the process list)", rich_help_panel=_SECURITY)] = None,
    metrics_open: Annotated[
        bool, typer.Option(help="serve /metrics without a key (/health is always open)", rich_help_panel=_SECURITY)
    ] = False,
    cors_origin: Annotated[
        list[str] | None, typer.Option(help="allow browser calls from this origin (repeatable; '*' for any) "
                                            "(default: no CORS)", rich_help_panel=_SECURITY)] = None,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve POST /rerank, POST /score, GET /v1/models, GET /health and GET /metrics for one reranker."""
    offline_env()
    try:
        from ..serve import create_app
        from ..serve.server import ServerTimeouts, run_server
    except ImportError as exc:
        raise fail(f"{exc}. Install the service with: pip install 'rerank-plugins[serve]'") from exc
    from ..errors import RerankError

    try:
        timeouts = ServerTimeouts(header_timeout=header_timeout, keep_alive=keep_alive_timeout,
                                  graceful_timeout=graceful_timeout)
        app = create_app(
            model,
            kind=kind,
            reranker_options=parse_options(option),
            model_name=model_name,
            max_documents=max_documents,
            max_chars_per_document=max_chars_per_document,
            max_query_chars=max_query_chars,
            max_total_chars=max_total_chars,
            max_body_bytes=max_body_bytes,
            max_batch=max_batch,
            batch_wait_ms=batch_wait_ms,
            max_batch_documents=None if max_batch_documents == 0 else max_batch_documents,
            max_queue=max_queue,
            split_documents=split_documents,
            body_timeout=None if body_timeout == 0 else body_timeout,
            api_keys=api_key or None,
            metrics_open=metrics_open,
            cors_origins=cors_origin or None,
            score_activation=score_activation,
            long_document_strategy=long_document_strategy,
            max_chunks_per_doc=max_chunks_per_doc,
        )
    except (RerankError, ImportError) as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"serving {model!r} on http://{host}:{port}/rerank", err=True)
    run_server(app, host=host, port=port, timeouts=timeouts, log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
