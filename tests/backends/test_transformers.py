"""Mechanics of the transformers LLM backend on tiny random Llama / Qwen2 models with the real SmolLM2 tokenizer."""

from __future__ import annotations

from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from rerank_plugins.backends.base import ChatPrompt  # noqa: E402
from rerank_plugins.backends.transformers import TransformersLLMBackend  # noqa: E402
from rerank_plugins.errors import ConfigError  # noqa: E402

PROMPTS = [
    ChatPrompt.of("Is the sky blue?"),
    ChatPrompt.of("A much longer question about aeronautics, boundary layers and heat transfer at hypersonic speeds?",
                  system="You rank passages.", assistant_prefix="["),
    ChatPrompt(raw="Plain completion prompt:"),
]


def _ids(backend: TransformersLLMBackend, prompt: ChatPrompt) -> list[int]:
    return backend._encode(backend.render(prompt), special=prompt.raw is not None)


def test_chat_template_and_prefix_are_applied(tiny_backend: TransformersLLMBackend) -> None:
    p = ChatPrompt.of("hello there", system="sys", assistant_prefix="[")
    expected = tiny_backend.tokenizer.apply_chat_template(
        [{"role": "system", "content": "sys"}, {"role": "user", "content": "hello there"}],
        add_generation_prompt=True, tokenize=False,
    )
    text = tiny_backend.render(p)
    assert text == expected + "["
    assert text.endswith("<|im_start|>assistant\n[")
    assert tiny_backend.render(ChatPrompt(raw="abc", assistant_prefix="d")) == "abcd"
    # the template already holds the special tokens: none are added on top
    assert _ids(tiny_backend, p) == tiny_backend.tokenizer(text, add_special_tokens=False)["input_ids"]
    assert tiny_backend.count_tokens(p) == len(_ids(tiny_backend, p))


@pytest.mark.parametrize("arch", ["llama", "qwen2"])
def test_left_padding_gives_the_logits_of_unpadded_prompts(arch: str, tiny_llm_dir: Path, tiny_qwen_dir: Path) -> None:
    backend = TransformersLLMBackend(tiny_llm_dir if arch == "llama" else tiny_qwen_dir, device="cpu")
    ids = [_ids(backend, p) for p in PROMPTS]
    assert len({len(x) for x in ids}) == 3
    batched = backend.last_logprobs(ids)
    for row, single in enumerate(ids):
        alone = backend.last_logprobs([single])[0]
        assert torch.allclose(batched[row], alone, atol=1e-5), (arch, row)


def test_label_logprobs_equal_log_softmax_of_a_full_forward(tiny_backend: TransformersLLMBackend) -> None:
    labels = ["A", "B", " yes", "no"]
    got = tiny_backend.label_logprobs(PROMPTS, labels)
    model, tok = tiny_backend.model, tiny_backend.tokenizer
    for prompt, row in zip(PROMPTS, got):
        ids = _ids(tiny_backend, prompt)
        with torch.inference_mode():
            logits = model(torch.tensor([ids])).logits[0, -1]
        ref = torch.log_softmax(logits.float(), -1)
        context = tiny_backend.render(prompt)
        for label, value in zip(labels, row):
            full = tok(context + label, add_special_tokens=False)["input_ids"]
            assert full[: len(ids)] == ids and len(full) == len(ids) + 1
            assert isinstance(value, float)
            assert value == pytest.approx(ref[full[-1]].item(), abs=1e-5)


def test_one_forward_call_per_batch_and_no_generate(tiny_backend: TransformersLLMBackend,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    tiny_backend.model.register_forward_pre_hook(lambda module, args: calls.append(1))

    def no_generate(*a: object, **k: object) -> None:
        raise AssertionError("label_logprobs must not call generate")

    monkeypatch.setattr(tiny_backend.model, "generate", no_generate)
    tiny_backend.label_logprobs(PROMPTS, ["1", "2", "3"])
    assert len(calls) == 1
    assert tiny_backend.stats.forward_calls == 1 and tiny_backend.stats.forward_prompts == 3
    assert tiny_backend.stats.generate_calls == 0

    tiny_backend.batch_size = 2
    tiny_backend.label_logprobs(PROMPTS + PROMPTS[:2], ["1"])
    assert len(calls) == 1 + 3  # 5 prompts in batches of at most 2
    assert tiny_backend.stats.forward_prompts == 3 + 5


def test_greedy_generate_is_deterministic_and_matches_argmax_decoding(tiny_backend: TransformersLLMBackend) -> None:
    prompt = PROMPTS[0]
    first = tiny_backend.generate([prompt], max_new_tokens=6)[0]
    again = tiny_backend.generate([prompt, PROMPTS[1]], max_new_tokens=6)[0]  # batched with a longer prompt
    assert first.text == again.text and first.finish_reason == "length" and first.completion_tokens == 6
    ids = _ids(tiny_backend, prompt)
    out: list[int] = []
    with torch.inference_mode():
        for _ in range(6):
            logits = tiny_backend.model(torch.tensor([ids + out])).logits[0, -1]
            out.append(int(logits.argmax()))
    assert first.text == tiny_backend.tokenizer.decode(out, skip_special_tokens=True)
    assert first.prompt_tokens == len(ids)


def test_seeded_sampling_is_reproducible_and_leaves_the_global_rng_alone(tiny_backend: TransformersLLMBackend) -> None:
    state = torch.get_rng_state()
    a = tiny_backend.generate(PROMPTS[:1], max_new_tokens=8, temperature=1.0, seed=1)[0].text
    b = tiny_backend.generate(PROMPTS[:1], max_new_tokens=8, temperature=1.0, seed=1)[0].text
    c = tiny_backend.generate(PROMPTS[:1], max_new_tokens=8, temperature=1.0, seed=2)[0].text
    greedy = tiny_backend.generate(PROMPTS[:1], max_new_tokens=8)[0].text
    assert a == b
    assert a != c or a != greedy
    assert torch.equal(torch.get_rng_state(), state)


def test_finish_reason_length_versus_stop(tiny_backend: TransformersLLMBackend) -> None:
    full = tiny_backend.generate(PROMPTS[:1], max_new_tokens=8)[0]
    assert full.finish_reason == "length" and full.completion_tokens == 8
    words = full.text.split()
    stop = words[len(words) // 2]
    cut = tiny_backend.generate(PROMPTS[:1], max_new_tokens=8, stop=[stop, "NEVER-SEEN"])[0]
    assert cut.finish_reason == "stop"
    assert cut.text == full.text[: full.text.find(stop)]


def test_finish_at_eos_is_stop(tiny_backend: TransformersLLMBackend) -> None:
    eos = tiny_backend._eos_ids[0]
    tok = tiny_backend.tokenizer
    hello = tok("hello world", add_special_tokens=False)["input_ids"]
    g = tiny_backend._finish([*hello, eos, eos], stop=())
    assert (g.text, g.finish_reason, g.completion_tokens) == ("hello world", "stop", len(hello))
    g = tiny_backend._finish(hello, stop=())
    assert g.finish_reason == "length"
    g = tiny_backend._finish(hello, stop=[" world"])
    assert (g.text, g.finish_reason) == ("hello", "stop")


def test_single_token_rule_and_multi_token_labels(tiny_backend: TransformersLLMBackend) -> None:
    assert tiny_backend.single_token("A") and tiny_backend.single_token(" yes") and tiny_backend.single_token("yes")
    assert not tiny_backend.single_token("[1]")
    assert not tiny_backend.single_token("")
    # the position matters: after the "[" prefix, "1" is still the token the model writes next
    assert tiny_backend.single_token("1", ChatPrompt.of("x", assistant_prefix="["))
    with pytest.raises(ConfigError, match="not a single token"):
        tiny_backend.label_logprobs(PROMPTS[:1], ["A", "[1]"])
    with pytest.raises(ConfigError):
        tiny_backend.label_logprobs(PROMPTS[:1], [])
    assert tiny_backend.label_logprobs([], ["A"]) == []


def test_context_length_is_checked_and_truncate_text(tiny_llm_dir: Path) -> None:
    backend = TransformersLLMBackend(tiny_llm_dir, device="cpu", context_length=40)
    long = ChatPrompt.of("word " * 100)
    with pytest.raises(ConfigError, match="40-token context"):
        backend.label_logprobs([long], ["A"])
    with pytest.raises(ConfigError, match="new tokens"):
        backend.generate([PROMPTS[0]], max_new_tokens=30)
    text = "Boundary layer transition at hypersonic speeds is sensitive to nose bluntness."
    cut = backend.truncate_text(text, 5)
    assert backend.count_tokens(cut) == 5 and text.startswith(cut)
    assert backend.truncate_text(text, 1000) == text
    assert backend.context_length == 40


def test_option_validation(tiny_llm_dir: Path) -> None:
    with pytest.raises(ConfigError):
        TransformersLLMBackend(tiny_llm_dir, batch_size=0)
    backend = TransformersLLMBackend(tiny_llm_dir, device="cpu")
    with pytest.raises(ConfigError):
        backend.generate(PROMPTS[:1], max_new_tokens=0)
    with pytest.raises(ConfigError):
        backend.generate(PROMPTS[:1], max_new_tokens=2, temperature=-1.0)
    assert backend.model_id == str(tiny_llm_dir)
    assert str(backend.dtype) == "torch.float32"


async def test_async_forms_match_sync(tiny_backend: TransformersLLMBackend) -> None:
    sync = tiny_backend.label_logprobs(PROMPTS[:2], ["A"])
    assert await tiny_backend.alabel_logprobs(PROMPTS[:2], ["A"]) == sync
    gen = await tiny_backend.agenerate(PROMPTS[:1], max_new_tokens=3)
    assert gen[0].completion_tokens == 3


def test_first_reranker_makes_one_forward_pass_per_window_and_never_generates(
    tiny_backend: TransformersLLMBackend, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FIRST on the real backend: the model runs once per window (hook on the model), generate is never called."""
    from rerank_plugins.rankers.listwise import ListwiseReranker
    from rerank_plugins.types import Candidate

    forward_rows: list[int] = []
    tiny_backend.model.register_forward_pre_hook(
        lambda module, args, kwargs: forward_rows.append(int(kwargs["input_ids"].shape[0])), with_kwargs=True
    )

    def no_generate(*a: object, **k: object) -> None:
        raise AssertionError("FIRST must not generate")

    monkeypatch.setattr(tiny_backend.model, "generate", no_generate)
    ranker = ListwiseReranker(tiny_backend, mode="first", window_size=20, stride=10, max_passage_words=None)
    docs = [[Candidate(id=f"q{q}d{i}", text=f"passage {i} about topic {q} " * 3) for i in range(45)] for q in range(2)]
    results = ranker.rerank_batch(["first query", "second query"], docs)
    windows = sum(len(r.traces) for r in results)
    assert [len(r.traces) for r in results] == [4, 4]  # 45 candidates, window 20, stride 10
    assert sum(forward_rows) == windows == tiny_backend.stats.forward_prompts
    assert len(forward_rows) == 4 and set(forward_rows) == {2}  # each step batches the two queries' windows
    assert tiny_backend.stats.generate_calls == 0
    assert sorted(r.id for r in results[0].results) == sorted(c.id for c in docs[0])
