"""Device and dtype selection (``rerank_plugins.backends.device``)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from rerank_plugins.backends.device import resolve_dtype  # noqa: E402


@pytest.fixture()
def cards(monkeypatch: pytest.MonkeyPatch) -> dict[int, tuple[int, int]]:
    """Two CUDA cards as torch reports them: 0 a T4 (7.5), 1 an A100 (8.0); torch says bf16 works on both, as
    ``torch.cuda.is_bf16_supported()`` does by default on a T4 (by emulation)."""
    caps = {0: (7, 5), 1: (8, 0)}
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: caps[0 if index is None else index])
    monkeypatch.setattr(torch.cuda, "current_device", lambda: 0)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    monkeypatch.setattr(torch.version, "hip", None)
    return caps


def test_auto_dtype_is_fp16_where_bf16_is_only_emulated(cards: dict[int, tuple[int, int]]) -> None:
    assert resolve_dtype(None, torch.device("cuda")) == torch.float16
    assert resolve_dtype("auto", torch.device("cuda:0")) == torch.float16


def test_auto_dtype_asks_about_the_requested_card(cards: dict[int, tuple[int, int]]) -> None:
    assert resolve_dtype(None, torch.device("cuda:1")) == torch.bfloat16


def test_explicit_and_cpu_dtypes_are_untouched(cards: dict[int, tuple[int, int]]) -> None:
    assert resolve_dtype("bf16", torch.device("cuda:0")) == torch.bfloat16
    assert resolve_dtype(None, torch.device("cpu")) == torch.float32


@pytest.mark.gpu
def test_auto_dtype_on_this_card() -> None:
    major, _ = torch.cuda.get_device_capability()
    assert resolve_dtype(None, torch.device("cuda")) == (torch.bfloat16 if major >= 8 else torch.float16)
