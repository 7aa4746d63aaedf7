"""VisionLanguageBackend on tiny random Qwen2-VL / Qwen2.5-VL models built from their configs (offline).

The weights are random, so these tests check mechanics: loading (full model, LoRA adapter, image-only
processor without torchvision), image tokens, batching with left padding, the last-position logits, generation
and finish reasons, pixel bounds and error messages.
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
Image = pytest.importorskip("PIL.Image")

from rerank_plugins.backends.base import ChatPrompt  # noqa: E402
from rerank_plugins.backends.vision import VisionLanguageBackend  # noqa: E402
from rerank_plugins.backends.vision_loading import pixel_bounds  # noqa: E402
from rerank_plugins.errors import ConfigError, InvalidInputError, ModelNotFoundError  # noqa: E402
from rerank_plugins.testing.tiny_vision import (  # noqa: E402
    build_tiny_lora_adapter,
    build_tiny_qwen2_vl,
)

MAX_PIXELS = 28 * 28 * 64  # at most 64 image tokens per image: fast on CPU


@pytest.fixture(scope="module")
def backend(tiny_qwen2_vl_dir: Path) -> VisionLanguageBackend:
    return VisionLanguageBackend(str(tiny_qwen2_vl_dir), device="cpu", batch_size=4)


def _prompt(image: Any | None, text: str = "Query: shock waves. Is the page relevant? Answer yes or no.") -> ChatPrompt:
    parts: list[dict[str, Any]] = [] if image is None else [{"type": "image", "image": image}]
    parts.append({"type": "text", "text": text})
    return ChatPrompt(({"role": "user", "content": parts},))


def _flat(rows: list[list[float]]) -> list[float]:
    return [v for row in rows for v in row]


def _mixed_prompts() -> list[ChatPrompt]:
    return [
        _prompt(Image.new("RGB", (300, 420), "white")),
        _prompt(Image.new("RGB", (90, 60), (30, 60, 90))),
        _prompt(None, "Text only: is the boundary layer relevant? Answer yes or no."),
        _prompt(Image.new("RGB", (640, 200), "black")),
    ]


def test_loads_with_image_only_processor_when_torchvision_is_missing(backend: VisionLanguageBackend) -> None:
    try:
        import torchvision  # noqa: F401
    except ImportError:
        assert type(backend.processor).__name__ == "Qwen2VLProcessorImageOnly"
    assert backend.image_token_id == backend.tokenizer.convert_tokens_to_ids("<|image_pad|>")
    assert backend.context_length == 32768
    assert pixel_bounds(backend.processor.image_processor) == (56 * 56, MAX_PIXELS)


def test_prompt_holds_expanded_image_tokens_then_the_generation_prompt(backend: VisionLanguageBackend) -> None:
    img = Image.new("RGB", (168, 168), "white")  # 168x168 -> 12x12 patches of 14 -> 36 merged (2x2) tokens
    enc = backend.encode(_prompt(img))
    ids = enc.features["input_ids"][0].tolist()
    assert ids.count(backend.image_token_id) == 36
    tail = backend.tokenizer("<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    assert ids[-len(tail) :] == tail
    last_image = max(i for i, t in enumerate(ids) if t == backend.image_token_id)
    assert last_image < len(ids) - len(tail)
    assert enc.images == 1


def test_label_logprobs_is_the_last_position_of_one_forward(backend: VisionLanguageBackend) -> None:
    prompts = _mixed_prompts()
    calls: list[dict[str, Any]] = []
    original = backend.model.forward

    def spy(*args: Any, **kwargs: Any) -> Any:
        calls.append(kwargs)
        return original(*args, **kwargs)

    backend.model.forward = spy  # type: ignore[method-assign]
    try:
        got = backend.label_logprobs(prompts, ["yes", "no"])
    finally:
        del backend.model.forward
    assert len(calls) == 1  # 4 prompts, batch_size 4: one forward pass
    assert calls[0]["logits_to_keep"] == 1
    assert calls[0]["input_ids"].shape[0] == 4
    # Reference: each prompt alone, full logits, last position, log-softmax.
    yes, no = (backend.tokenizer.convert_tokens_to_ids(t) for t in ("yes", "no"))
    for prompt, row in zip(prompts, got):
        enc = backend.encode(prompt)
        batch = backend._collate([enc])
        with torch.inference_mode():
            logits = backend.model(**batch).logits[0, -1].float()
        ref = torch.log_softmax(logits, dim=-1)
        assert row == pytest.approx([float(ref[yes]), float(ref[no])], abs=1e-4)


def test_batched_equals_alone_for_mixed_image_sizes(tiny_qwen2_vl_dir: Path, backend: VisionLanguageBackend) -> None:
    prompts = _mixed_prompts()
    batched = backend.label_logprobs(prompts, ["yes", "no"])
    alone = [backend.label_logprobs([p], ["yes", "no"])[0] for p in prompts]
    assert _flat(batched) == pytest.approx(_flat(alone), abs=1e-4)
    small = VisionLanguageBackend(str(tiny_qwen2_vl_dir), device="cpu", batch_size=1)
    assert _flat(small.label_logprobs(prompts, ["yes", "no"])) == pytest.approx(_flat(batched), abs=1e-4)
    assert small.stats.forward_calls == 4


def test_images_given_as_path_bytes_or_pil_are_the_same(backend: VisionLanguageBackend, tmp_path: Path) -> None:
    img = Image.new("RGB", (200, 150), (200, 10, 10))
    buf = io.BytesIO()
    img.save(buf, "PNG")
    path = tmp_path / "p.png"
    path.write_bytes(buf.getvalue())
    rows = backend.label_logprobs([_prompt(img), _prompt(buf.getvalue()), _prompt(str(path))], ["yes", "no"])
    assert rows[0] == pytest.approx(rows[1], abs=1e-5)
    assert rows[0] == pytest.approx(rows[2], abs=1e-5)


def test_bad_image_in_prompt_is_a_clear_error(backend: VisionLanguageBackend, tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match=r"prompt 1: .*does not exist"):
        backend.label_logprobs([_prompt(None), _prompt(str(tmp_path / "missing.png"))], ["yes"])
    with pytest.raises(InvalidInputError, match="not an image"):
        backend.label_logprobs([_prompt(b"not an image at all")], ["yes"])


def test_generate_greedy_batched_equals_alone_and_reports_length(backend: VisionLanguageBackend) -> None:
    prompts = _mixed_prompts()[:3]
    before = backend.stats.generate_calls
    out = backend.generate(prompts, max_new_tokens=4)
    assert backend.stats.generate_calls == before + 1
    assert all(g.finish_reason in ("stop", "length") for g in out)
    alone = [backend.generate([p], max_new_tokens=4)[0].text for p in prompts]
    assert [g.text for g in out] == alone
    # A random model never emits <|im_end|> within 4 tokens here: every answer is cut.
    assert [g.finish_reason for g in out] == ["length"] * 3
    assert all(g.completion_tokens == 4 for g in out)


def test_max_pixels_bounds_image_tokens(tiny_qwen2_vl_dir: Path) -> None:
    small = VisionLanguageBackend(str(tiny_qwen2_vl_dir), device="cpu", max_pixels=28 * 28 * 16)
    big_image = Image.new("RGB", (1000, 1000), "white")
    n_small = small.encode(_prompt(big_image)).features["input_ids"].eq(small.image_token_id).sum().item()
    assert 0 < n_small <= 16
    large = VisionLanguageBackend(str(tiny_qwen2_vl_dir), device="cpu", max_pixels=28 * 28 * 100)
    n_large = large.encode(_prompt(big_image)).features["input_ids"].eq(large.image_token_id).sum().item()
    assert 16 < n_large <= 100


def test_stats_split_processor_and_model_time(tiny_qwen2_vl_dir: Path) -> None:
    b = VisionLanguageBackend(str(tiny_qwen2_vl_dir), device="cpu")
    b.label_logprobs(_mixed_prompts(), ["yes"])
    assert b.stats.images == 3
    assert b.stats.image_tokens > 0
    assert b.stats.processor_seconds > 0 and b.stats.model_seconds > 0


def test_context_length_is_never_cut_silently(tiny_qwen2_vl_dir: Path) -> None:
    b = VisionLanguageBackend(str(tiny_qwen2_vl_dir), device="cpu", context_length=40)
    with pytest.raises(ConfigError, match=r"image tokens included.*40-token context"):
        b.label_logprobs([_prompt(Image.new("RGB", (400, 400)))], ["yes"])


def test_config_errors(tiny_qwen2_vl_dir: Path, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="larger than max_pixels"):
        VisionLanguageBackend(str(tiny_qwen2_vl_dir), min_pixels=10_000, max_pixels=5_000)
    with pytest.raises(ModelNotFoundError):
        VisionLanguageBackend(str(tmp_path / "nowhere" / "model"))


def test_text_only_model_is_refused(tmp_path: Path) -> None:
    from rerank_plugins.testing.tiny_models import build_tiny_cross_encoder

    folder = build_tiny_cross_encoder(tmp_path / "bert")
    with pytest.raises(ConfigError, match="not an image-text-to-text model"):
        VisionLanguageBackend(str(folder))


def test_qwen2_5_vl_variant(tmp_path: Path) -> None:
    folder = build_tiny_qwen2_vl(tmp_path / "q25", variant="qwen2_5_vl", max_pixels=MAX_PIXELS)
    b = VisionLanguageBackend(str(folder), device="cpu")
    assert type(b.model).__name__ == "Qwen2_5_VLForConditionalGeneration"
    prompts = _mixed_prompts()
    batched = b.label_logprobs(prompts, ["yes", "no"])
    alone = [b.label_logprobs([p], ["yes", "no"])[0] for p in prompts]
    assert _flat(batched) == pytest.approx(_flat(alone), abs=1e-4)


def test_lora_adapter_loads_its_base_like_monoqwen(
    tiny_qwen2_vl_dir: Path, backend: VisionLanguageBackend, tmp_path: Path
) -> None:
    pytest.importorskip("peft")
    adapter = build_tiny_lora_adapter(tmp_path / "mono-adapter", tiny_qwen2_vl_dir)
    assert not (adapter / "preprocessor_config.json").exists()  # processor comes from the base, as for MonoQwen
    b = VisionLanguageBackend(str(adapter), device="cpu")
    assert b.adapter == str(adapter)
    assert "lora" not in type(b.model).__name__.lower()  # merged into plain weights
    prompt = [_prompt(Image.new("RGB", (200, 200), "white"))]
    with_adapter = b.label_logprobs(prompt, ["yes", "no"])[0]
    base = backend.label_logprobs(prompt, ["yes", "no"])[0]
    assert with_adapter != pytest.approx(base, abs=1e-3)
    unmerged = VisionLanguageBackend(str(adapter), device="cpu", merge_adapter=False)
    assert unmerged.label_logprobs(prompt, ["yes", "no"])[0] == pytest.approx(with_adapter, abs=1e-4)


def test_deepcopy_shares_the_model_and_pickle_round_trips(backend: VisionLanguageBackend) -> None:
    """Frameworks copy components (LangChain/LlamaIndex/Haystack): a copy shares the weights, a pickle keeps them."""
    import copy
    import pickle

    prompts = [_prompt(None)]
    expected = backend.label_logprobs(prompts, ["yes", "no"])
    clone = copy.deepcopy(backend)
    assert clone.model is backend.model and type(clone.stats) is type(backend.stats)
    again = pickle.loads(pickle.dumps(backend))
    assert again is not backend
    for other in (clone, again):
        assert other.label_logprobs(prompts, ["yes", "no"])[0] == pytest.approx(expected[0], abs=1e-6)
