from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def _cuda_available() -> bool:
    try:
        import torch
    except ImportError:
        return False
    return bool(torch.cuda.is_available())


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if _cuda_available():
        return
    skip = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        # the marker itself: ``"gpu" in item.keywords`` also matches any folder named gpu (tests/gpu/, a checkout
        # in .../gpu/), which skipped CPU tests there
        if item.get_closest_marker("gpu") is not None:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def tiny_qwen2_vl_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One tiny random Qwen2-VL folder for the vision tests (read only): images up to 28 * 28 * 64 pixels (64 image
    tokens each, fast on CPU; the test files check this bound as their ``MAX_PIXELS``)."""
    from rerank_plugins.testing.tiny_vision import build_tiny_qwen2_vl

    return build_tiny_qwen2_vl(tmp_path_factory.mktemp("tiny-qwen2-vl"), max_pixels=28 * 28 * 64)
