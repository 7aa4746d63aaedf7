"""A LoRA adapter repo (Rank-R1 style: adapter_config.json naming a Qwen2.5-Instruct base) loads merged on its base,
equal to the Rank-R1 README's own loader (PeftConfig -> base -> PeftModel.from_pretrained -> merge_and_unload)."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")
peft = pytest.importorskip("peft")

from rerank_plugins.backends.base import ChatPrompt  # noqa: E402
from rerank_plugins.backends.transformers import TransformersLLMBackend  # noqa: E402


def _adapter(base_dir: Path, out: Path) -> Path:
    base = transformers.AutoModelForCausalLM.from_pretrained(str(base_dir))
    config = peft.LoraConfig(r=4, lora_alpha=8, target_modules=["q_proj", "v_proj"], init_lora_weights=False)
    torch.manual_seed(1)
    model = peft.get_peft_model(base, config)
    model.save_pretrained(str(out))  # adapter_config.json names base_dir as base_model_name_or_path
    return out


def _readme_get_model(peft_model_name: str):  # ielab/llm-rankers@b36517b Rank-R1/README.md get_model
    config = peft.PeftConfig.from_pretrained(peft_model_name)
    base_model = transformers.AutoModelForCausalLM.from_pretrained(config.base_model_name_or_path)
    model = peft.PeftModel.from_pretrained(base_model, peft_model_name)
    return model.merge_and_unload()


def test_lora_adapter_loads_merged_like_the_reference(tiny_qwen_dir: Path, tmp_path: Path) -> None:
    adapter = _adapter(tiny_qwen_dir, tmp_path / "adapter")
    backend = TransformersLLMBackend(adapter, device="cpu")
    assert "LoRA on" in backend.source and str(tiny_qwen_dir) in backend.source
    prompt = ChatPrompt.of("Which passage is best?", assistant_prefix="<think>")
    ids = backend.prompt_token_ids(prompt)
    reference = _readme_get_model(str(adapter)).eval()
    with torch.inference_mode():
        expected = torch.log_softmax(reference(torch.tensor([ids])).logits[0, -1].float(), -1)
        base = transformers.AutoModelForCausalLM.from_pretrained(str(tiny_qwen_dir)).eval()
        plain = torch.log_softmax(base(torch.tensor([ids])).logits[0, -1].float(), -1)
    got = backend.last_logprobs([ids])[0]
    assert torch.allclose(got, expected, atol=1e-5)
    assert not torch.allclose(plain, expected, atol=1e-3)  # the adapter changes the model
