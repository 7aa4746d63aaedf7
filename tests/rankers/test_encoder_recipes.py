"""Every hub id of the encoder-family recipes (cross-encoders, monoT5/duoT5, ColBERT) loads with no kind from a local
copy in the Hugging Face cache layout (its config faked by a tiny random model of the right class), gets the
recipe's strategy and options, and scores plain floats."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("transformers")

from rerank_plugins import ConfigError, load_reranker
from rerank_plugins.recipes import find_recipe, recipes

FAMILY_KINDS = {"cross-encoder", "monot5", "duot5", "colbert"}
ENCODER_IDS = sorted(hub_id for r in recipes().values() if r.kind in FAMILY_KINDS for hub_id in r.ids)


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from rerank_plugins.testing.tiny_encoders import build_colbert_folder, build_tiny_t5
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    root = tmp_path_factory.mktemp("encoder-recipes")
    return {
        "cross-encoder": build_tiny_cross_encoder(root / "ce"),
        "monot5": build_tiny_t5(root / "t5"),
        "duot5": root / "t5",
        "colbert": build_colbert_folder(root / "colbert"),
    }


def test_the_table_covers_the_families() -> None:
    kinds = {find_recipe(i).kind for i in ENCODER_IDS}  # type: ignore[union-attr]
    assert kinds == FAMILY_KINDS
    for hub_id in ("BAAI/bge-reranker-v2-m3", "cross-encoder/ms-marco-MiniLM-L6-v2", "castorini/monot5-3b-msmarco-10k",
                   "castorini/duot5-base-msmarco", "colbert-ir/colbertv2.0", "lightonai/GTE-ModernColBERT-v1"):
        assert hub_id in ENCODER_IDS
        assert find_recipe(hub_id.lower()) is find_recipe(hub_id)  # hub ids match case-insensitively


@pytest.mark.parametrize("hub_id", ENCODER_IDS)
def test_every_listed_id_loads_without_kind(tmp_path: Path, sources: dict[str, Path], hub_id: str) -> None:
    recipe = find_recipe(hub_id)
    assert recipe is not None
    org, name = hub_id.split("/")
    snap = tmp_path / f"models--{org}--{name}" / "snapshots" / "0123abcd"
    shutil.copytree(sources[recipe.kind], snap)
    if recipe.options.get("query_prefix") == "[QueryMarker]":
        # jina-colbert-v2's markers are tokens of its own tokenizer only: a clear error naming the marker
        with pytest.raises(ConfigError, match="QueryMarker"):
            load_reranker(str(snap))
        return
    ranker = load_reranker(str(snap))
    expected = {"cross-encoder": "CrossEncoderReranker", "monot5": "MonoT5Reranker", "duot5": "DuoT5Reranker",
                "colbert": "ColBERTReranker"}[recipe.kind]
    assert type(ranker).__name__ == expected
    result = ranker.rerank("supersonic shock waves", ["Shock waves form at the speed of sound.", "Boiling pasta."])
    assert len(result.results) == 2 and all(type(r.score) is float for r in result.results)
    if recipe.kind in ("cross-encoder", "monot5"):
        assert all(0.0 <= r.score <= 1.0 for r in result.results)
