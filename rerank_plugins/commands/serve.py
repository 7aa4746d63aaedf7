"""``rerank-plugins serve``: run the rerank HTTP service (Cohere / Jina / TEI compatible) with uvicorn."""

from __future__ import annotations

from typing import Annotated

import typer

from ._eval_common import fail, offline_env, parse_options

__all__ = ["register", "serve_command"]


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
    model_name: Annotated[str | None, typer.Option(help="model name reported in answers")] = None,
    max_documents: Annotated[int, typer.Option(min=1, help="documents per request")] = 1000,
    max_chars_per_document: Annotated[int, typer.Option(min=1, help="characters per document")] = 32_768,
    max_total_chars: Annotated[int, typer.Option(min=1, help="characters per request")] = 4_000_000,
    max_batch: Annotated[int, typer.Option(min=1, help="requests per engine call")] = 32,
    batch_wait_ms: Annotated[float, typer.Option(min=0.0, help="wait for more requests when idle (ms)")] = 5.0,
    log_level: Annotated[str, typer.Option(help="uvicorn log level")] = "info",
) -> None:
    """Serve POST /rerank, GET /health and GET /metrics for one reranker."""
    offline_env()
    try:
        import uvicorn

        from ..serve import create_app
    except ImportError as exc:
        raise fail(f"{exc}. Install the service with: pip install 'rerank-plugins[serve]'") from exc
    from ..errors import RerankError

    try:
        app = create_app(
            model,
            kind=kind,
            reranker_options=parse_options(option),
            model_name=model_name,
            max_documents=max_documents,
            max_chars_per_document=max_chars_per_document,
            max_total_chars=max_total_chars,
            max_batch=max_batch,
            batch_wait_ms=batch_wait_ms,
        )
    except RerankError as exc:
        raise fail(str(exc)) from exc
    typer.echo(f"serving {model!r} on http://{host}:{port}/rerank", err=True)
    uvicorn.run(app, host=host, port=port, log_level=log_level)


def register(app: typer.Typer) -> None:
    app.command("serve")(serve_command)
