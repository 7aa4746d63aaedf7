"""Loading a model writes nothing to stderr by default (issue 13): no transformers "Loading weights" bar (unless
``progress=True``), and no LOAD REPORT table when we raise our own error about the loading info."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rerank_plugins import load_reranker
from rerank_plugins.errors import ConfigError


@pytest.fixture(autouse=True)
def bars_enabled() -> object:
    """transformers' process-wide bar switch on, as in a fresh process (the CLI commands' --no-progress turns it
    off for good in theirs, and other tests in this process may have run one); restored after."""
    import transformers.utils.logging as hf_logging

    was = hf_logging.is_progress_bar_enabled()
    hf_logging.enable_progress_bar()
    yield
    if not was:
        hf_logging.disable_progress_bar()


@pytest.fixture(scope="module")
def encoders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder, build_tiny_sentence_transformer

    root = tmp_path_factory.mktemp("quiet")
    return build_tiny_cross_encoder(root / "ce"), build_tiny_sentence_transformer(root / "st")


@pytest.fixture(scope="module")
def tiny_llm(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm, save_smollm2_tokenizer

    tok = save_smollm2_tokenizer(tmp_path_factory.mktemp("quiet-tok"))
    return build_tiny_causal_lm(tmp_path_factory.mktemp("quiet-llm"), tok)


def test_encoder_loads_are_quiet_unless_progress(encoders: tuple[Path, Path], capfd: pytest.CaptureFixture) -> None:
    import transformers.utils.logging as hf_logging

    ce, st = encoders
    capfd.readouterr()
    load_reranker(str(ce), kind="cross-encoder")
    load_reranker(str(st), kind="embedding")
    assert "Loading weights" not in capfd.readouterr().err
    assert hf_logging.is_progress_bar_enabled()  # the process-wide switch is restored
    load_reranker(str(ce), kind="cross-encoder", progress=True)
    assert "Loading weights" in capfd.readouterr().err


def test_no_load_report_before_our_own_error(
    encoders: tuple[Path, Path], capfd: pytest.CaptureFixture, caplog: pytest.LogCaptureFixture
) -> None:
    _, st = encoders
    capfd.readouterr()
    with pytest.raises(ConfigError, match="no trained classification head"):
        load_reranker(str(st), kind="cross-encoder")  # an embedding model: the head is missing
    err = capfd.readouterr().err
    assert "LOAD REPORT" not in err and "LOAD REPORT" not in caplog.text
    assert "not sharded" not in err  # and no other transformers warning in its place


def test_llm_backend_load_is_quiet(tiny_llm: Path, capfd: pytest.CaptureFixture) -> None:
    from rerank_plugins.backends.transformers import TransformersLLMBackend

    capfd.readouterr()
    TransformersLLMBackend(str(tiny_llm))
    assert "Loading weights" not in capfd.readouterr().err
    TransformersLLMBackend(str(tiny_llm), progress=True)
    assert "Loading weights" in capfd.readouterr().err
