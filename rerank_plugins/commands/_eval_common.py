"""Helpers shared by the ``eval``, ``bench`` and ``demo`` commands (data set loading, reranker options)."""

from __future__ import annotations

import json
import os
import warnings
from collections.abc import Sequence
from typing import Any

import typer

from ..errors import ConfigError, RerankError

__all__ = [
    "fail",
    "load_data",
    "load_rerankers",
    "offline_env",
    "parse_options",
    "reranker_labels",
    "select_queries",
]


def offline_env(*, quiet: bool = False) -> None:
    """Never reach a model hub from the evaluation commands (weights are bundled or local); ``quiet`` also turns
    off the hub's and transformers' own progress bars (weight loading)."""
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    if quiet:
        os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
        try:
            from transformers.utils import logging as hf_logging
        except ImportError:
            return
        hf_logging.disable_progress_bar()


def fail(message: str, code: int = 2) -> typer.Exit:
    typer.secho(f"error: {message}", err=True, fg=typer.colors.RED)
    return typer.Exit(code)


def load_data(spec: str, queries: int | None, *, strict: bool = False, split: str | None = None) -> Any:
    """Load a data set by name or path (``split``: the BEIR qrels file), keep the first ``queries`` judged
    queries, echo the data problems."""
    from ..eval.datasets import DataWarning, load_dataset

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # reported below, once, in the command's own words
        try:
            dataset = load_dataset(spec, strict=strict, split=split)
        except RerankError as exc:
            raise fail(str(exc)) from exc
    if dataset.report.problems:
        typer.secho(f"data: {dataset.report.summary()}", err=True, fg=typer.colors.YELLOW)
    return select_queries(dataset, queries)


def select_queries(dataset: Any, queries: int | None) -> Any:
    """The first ``queries`` judged queries of ``dataset`` (``None``: all of them)."""
    if queries is None:
        return dataset
    try:
        return dataset.head(queries)
    except RerankError as exc:
        raise fail(str(exc)) from exc


def parse_options(items: Sequence[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are parsed as JSON when they parse (``8``, ``true``, ``"x"``), else strings.

    ``LABEL:key=value`` scopes an option to one reranker (``LABEL`` is ``NAME`` or ``NAME[KIND]`` as shown in the
    table), e.g. ``smollm2-135m[listwise]:fallback=keep``; unscoped options go to every reranker.
    """
    out: dict[str, Any] = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise fail(f"reranker option must be key=value, got {item!r}")
        try:
            out[key.strip()] = json.loads(value)
        except ValueError:
            out[key.strip()] = value
    return out


def reranker_labels(names: Sequence[str], kinds: Sequence[str] | None) -> list[tuple[str, str, str | None]]:
    """(label, name, kind) per reranker. The label is ``NAME`` or ``NAME[KIND]``; a label that would repeat gets
    ``#1``, ``#2``... on every occurrence (``minilm#1``, ``minilm#2``), so rows, scoped options and run files
    stay distinct."""
    kinds = list(kinds or ())
    if kinds and len(kinds) not in (1, len(names)):
        raise fail(f"give one --kind for all rerankers or one per --reranker ({len(names)}), got {len(kinds)}")
    plain = []
    for i, name in enumerate(names):
        kind = kinds[i] if len(kinds) == len(names) else (kinds[0] if kinds else None)
        plain.append((name if kind is None else f"{name}[{kind}]", name, kind))
    seen: dict[str, int] = {}
    out = []
    for label, name, kind in plain:
        if sum(1 for other, _, _ in plain if other == label) > 1:
            seen[label] = seen.get(label, 0) + 1
            label = f"{label}#{seen[label]}"
        out.append((label, name, kind))
    return out


def load_rerankers(
    names: Sequence[str],
    kinds: Sequence[str] | None,
    options: dict[str, Any],
    *,
    built: list[dict[str, Any]] | None = None,
) -> list[tuple[str, Any]]:
    """Build each reranker with :func:`rerank_plugins.load_reranker`. ``kinds`` is empty, one kind for all, or one
    kind per reranker; labels come from :func:`reranker_labels`. ``built`` (a list) receives one
    ``{"label", "model", "kind", "options"}`` record per reranker, for the results' provenance."""
    from ..models import load_reranker

    common = {k: v for k, v in options.items() if ":" not in k}
    scoped = {k: v for k, v in options.items() if ":" in k}
    out = []
    used: set[str] = set()
    for label, name, kind in reranker_labels(names, kinds):
        mine = dict(common)
        for key, value in scoped.items():
            scope, _, option = key.rpartition(":")
            if scope == label:
                mine[option] = value
                used.add(key)
        try:
            out.append((label, load_reranker(name, kind=kind, **mine)))
        except (RerankError, ConfigError, ImportError) as exc:
            raise fail(f"cannot load reranker {label}: {exc}") from exc
        if built is not None:
            built.append({"label": label, "model": name, "kind": kind, "options": mine})
    unused = sorted(set(scoped) - used)
    if unused:
        labels = [label for label, _ in out]
        raise fail(f"options {unused} name no reranker; labels are {labels}")
    return out
