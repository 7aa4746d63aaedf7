"""Each listwise / reasoning recipe sends its model the reference's own prompt: the same token ids, BOS included.

The reference prompts are built by the reference code (rank-llm 0.25.7's ``create_prompt``, run as shipped) or a
line-by-line transcription with its commit (FIRST, Rank-R1, ReasonRank; see ``references.py``), with the same
tokenizer as ours: a Llama/Mistral-style tokenizer that adds ``<s>`` (built by the test) or the real Qwen2
tokenizer of the bundled Qwen2.5 GGUF. The passages are long, carry ``[3]``-style brackets and curly quotes, so
the token budget, the bracket rewriting and ftfy's fixes are all exercised.
"""

from __future__ import annotations

import random
import warnings
from pathlib import Path
from typing import Any

import listwise_references as ref
import pytest

from rerank_plugins import load_reranker
from rerank_plugins.backends.base import ChatPrompt, Generation
from rerank_plugins.types import Candidate

pytest.importorskip("torch")

_WORDS = (  # noqa: SIM905
    "shock wave boundary layer heat transfer hypersonic flow nose bluntness transition laminar turbulent "
    "pressure gradient Mach number wall temperature skin friction separation reattachment vortex “quoted” "
    "don’t naïve café [3] [12] (see [A]) rate-of-change 4.5 % — coefficient"
).split()
BACKEND = {"device": "cpu", "context_length": 8192}  # the tiny models' own 1024 would refuse the long prompts
QUERY = "what is the [2] effect of “nose bluntness” on hypersonic boundary-layer transition? "


def passages(n: int = 20, words: int = 420, seed: int = 0) -> list[str]:
    rng = random.Random(seed)
    return [" ".join(rng.choice(_WORDS) for _ in range(words - 7 * (i % 5))) + "  \n" for i in range(n)]


def candidates(texts: list[str]) -> list[Candidate]:
    return [Candidate(id=f"d{i}", text=t) for i, t in enumerate(texts)]


def _record(monkeypatch: pytest.MonkeyPatch, backend: Any, answer: str = "[1] > [2]") -> list[ChatPrompt]:
    """Record the prompts the ranker sends (generate answers ``answer``; label_logprobs runs the tiny model)."""
    seen: list[ChatPrompt] = []
    real = backend.label_logprobs

    def generate(prompts: Any, **kwargs: Any) -> list[Generation]:
        seen.extend(prompts)
        return [Generation(answer, "stop") for _ in prompts]

    def label_logprobs(prompts: Any, labels: Any) -> Any:
        seen.extend(prompts)
        return real(prompts, labels)

    monkeypatch.setattr(backend, "generate", generate)
    monkeypatch.setattr(backend, "label_logprobs", label_logprobs)
    return seen


def _ours(model_dir: Path, recipe: str, monkeypatch: pytest.MonkeyPatch, texts: list[str], answer: str = "[1] > [2]",
          **options: Any) -> tuple[Any, list[ChatPrompt], Any]:
    ranker = load_reranker(model_dir, recipe=recipe, backend_options=BACKEND, **options)
    seen = _record(monkeypatch, ranker.backend, answer)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = ranker.rerank(QUERY, candidates(texts))
    ranker.result, ranker.caught = result, caught
    return ranker, seen, ranker.backend.tokenizer


@pytest.mark.parametrize("recipe", ["castorini/rank_zephyr_7b_v1_full", "castorini/rank_vicuna_7b_v1"])
def test_rank_zephyr_and_vicuna_send_rank_llms_prompt(
    recipe: str, zephyr_dir: Path, vicuna_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model_dir = zephyr_dir if "zephyr" in recipe else vicuna_dir
    texts = passages()
    ranker, seen, tok = _ours(model_dir, recipe, monkeypatch, texts)
    (prompt,) = seen
    # rank_llm sets its own chat template on rank_vicuna tokenizers, over the one this local copy carries
    reference_tok = tok if "zephyr" in recipe else ref.rank_llm_vicuna_tokenizer(tok)
    expected = ref.rank_llm_prompt(reference_tok, "rank_zephyr_template.yaml", QUERY, texts, context_size=4096)
    assert ranker.backend.render(prompt) == expected
    ids = ranker.backend.prompt_token_ids(prompt)
    assert ids == tok(expected)["input_ids"]  # vLLM tokenises rank_llm's text prompt with the special tokens
    assert ids[0] == tok.bos_token_id and ids[1] != tok.bos_token_id


def test_rank_vicuna_by_hub_id_gets_rank_llms_chat_template(
    vicuna_hub: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21.11: the hub tokenizer of castorini/rank_vicuna_7b_v1 has no chat template; the recipe supplies the
    one rank_llm sets (vllm_handler.py), so loading by hub id works and sends rank_llm's prompt."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(vicuna_hub))
    ranker = load_reranker("castorini/rank_vicuna_7b_v1", backend_options=BACKEND)
    tok = ranker.backend.tokenizer
    assert tok.chat_template is None
    seen = _record(monkeypatch, ranker.backend)
    texts = passages(n=20, words=60)
    ranker.rerank(QUERY, candidates(texts))
    (prompt,) = seen
    rendered = ranker.backend.render(prompt)
    assert rendered.startswith("You are RankLLM") and " USER: I will provide you with 20 passages" in rendered
    assert rendered.endswith(" ASSISTANT:") and ranker.backend.prompt_token_ids(prompt)[0] == tok.bos_token_id
    expected = ref.rank_llm_prompt(
        ref.rank_llm_vicuna_tokenizer(tok), "rank_zephyr_template.yaml", QUERY, texts, context_size=4096
    )
    assert rendered == expected
    assert ranker.backend.prompt_token_ids(prompt) == tok(expected)["input_ids"]


def test_token_budget_fits_20_long_passages_under_4096_exactly_as_rank_llm(
    zephyr_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = passages(words=600)
    ranker, seen, tok = _ours(zephyr_dir, "castorini/rank_zephyr_7b_v1_full", monkeypatch, texts)
    (prompt,) = seen
    expected = ref.rank_llm_prompt(tok, "rank_zephyr_template.yaml", QUERY, texts, context_size=4096)
    ids = ranker.backend.prompt_token_ids(prompt)
    assert ids == tok(expected)["input_ids"]
    reserve = len(tok.encode(" > ".join(f"[{i + 1}]" for i in range(20)))) - 1  # rank_llm num_output_tokens
    assert len(ids) <= 4096 - reserve
    # before the budget (300 words each, rank_llm's starting cap) the prompt is far over the context
    from rerank_plugins.types import Query

    capped = [" ".join(t.split()[:300]) for t in ranker._passage_texts(Query(QUERY), candidates(texts))[0]]
    assert ranker.backend.count_tokens(ranker._prompt(Query(QUERY), capped)) > 4096
    details = ranker.result.details
    assert details["fitted_windows"] == 1 and details["fit_words"] < 300
    assert details["max_prompt_tokens"] == len(ids) and details["truncated_passages"] == 20
    messages = [str(w.message) for w in ranker.caught]
    assert any("20 passage" in m and f"{details['fit_words']} words" in m and "4096" in m for m in messages)


def test_first_mistral_sends_rank_llms_prompt_then_the_forced_bracket(
    zephyr_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    texts = passages(n=20, words=60)
    ranker, seen, tok = _ours(zephyr_dir, "castorini/first_mistral", monkeypatch, texts, context_size=1024)
    (prompt,) = seen
    expected = ref.rank_llm_prompt(
        tok, "rank_zephyr_alpha_template.yaml", QUERY, texts, context_size=1024, use_alpha=True
    )
    rendered = ranker.backend.render(prompt)
    assert rendered == expected + "["
    ids = ranker.backend.prompt_token_ids(prompt)
    assert ids[: len(tok(expected)["input_ids"])] == tok(expected)["input_ids"]
    assert ids == tok(expected + "[")["input_ids"] and ids[0] == tok.bos_token_id
    assert ranker.result.details["mode"] == "first" and ranker.scheme.name == "upper"


def test_first_zephyr_sends_firsts_own_prompt(zephyr_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = passages(n=20, words=60)
    ranker, seen, tok = _ours(zephyr_dir, "rryisthebest/First_Model", monkeypatch, texts)
    (prompt,) = seen
    expected = ref.first_zephyr_prompt(tok, QUERY, texts)
    assert ranker.backend.render(prompt) == expected
    assert ranker.backend.prompt_token_ids(prompt) == tok(expected)["input_ids"]


@pytest.mark.parametrize("context_size", [32768, 2048])
def test_first_zephyr_fits_a_15_passage_window_as_firsts_create_prompt(
    context_size: int, zephyr_dir: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Issue 21.12: a [0,15) window keeps FIRST's 300 words per passage (not 300*20/15 = 400), and with a tight
    context the cap shrinks against FIRST's reserve (a numeric permutation of window_size 20): the same prompt
    and the same token count as FIRST's create_prompt."""
    texts = passages(n=15, words=420)
    ranker, seen, tok = _ours(zephyr_dir, "rryisthebest/First_Model", monkeypatch, texts, context_size=context_size)
    (prompt,) = seen
    expected = ref.first_zephyr_prompt(tok, QUERY, texts, context_size=context_size)
    assert ranker.backend.render(prompt) == expected
    assert ranker.backend.prompt_token_ids(prompt) == tok(expected)["input_ids"]
    # FIRST's num_tokens: the prompt it sends, before the '[' the model writes (run_llm_batched)
    assert ranker.result.details["max_prompt_tokens"] == len(tok.encode(expected[:-1]))
    words = ranker.result.details["fit_words"]
    assert words == 300 if context_size == 32768 else words < 300


def test_rank_r1_group_prompt_equals_the_reference(qwen_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = passages(n=20, words=700)  # longer than 512 tokens: the passage budget cuts them
    query = QUERY * 6  # longer than 32 tokens
    ranker = load_reranker(qwen_dir, recipe="ielabgroup/Rank-R1-7B-v0.1", backend_options=BACKEND,
                           shuffle_groups=False)
    seen = _record(monkeypatch, ranker.backend, "<think> x </think> <answer>[1]</answer>")
    ranker.rerank(query, candidates(texts))
    tok = ranker.backend.tokenizer
    # 20 candidates, groups of 20: the first group is the whole list in input order
    expected = tok.apply_chat_template(ref.rank_r1_messages(tok, query, texts), tokenize=False,
                                       add_generation_prompt=True)
    assert ranker.backend.render(seen[0]) == expected
    assert ranker.backend.prompt_token_ids(seen[0]) == tok(expected)["input_ids"]
    assert ranker.schedule == "heapsort" and ranker.max_new_tokens == 2048


def test_reasonrank_prompt_equals_the_reference(qwen_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    texts = passages(n=20, words=700)
    answer = "<think> x </think> <answer>[2] > [1]</answer>"
    ranker = load_reranker(qwen_dir, recipe="liuwenhan/reasonrank-7B", backend_options=BACKEND)
    seen = _record(monkeypatch, ranker.backend, answer)
    ranker.rerank(QUERY, candidates(texts))
    tok = ranker.backend.tokenizer
    expected = ref.reasonrank_prompt(tok, QUERY, texts)
    assert ranker.backend.render(seen[0]) == expected
    assert ranker.backend.prompt_token_ids(seen[0]) == tok(expected)["input_ids"]
    assert ranker.max_new_tokens == 3072 + 100 and ranker.fallback == "partial"


def test_rankgpt_v2_messages_equal_rank_llms_multiturn_prompt() -> None:
    from rerank_plugins.prompts import get_prompt
    from rerank_plugins.prompts.cleaning import cut_words, get_cleaning

    texts = passages(n=5, words=40)
    clean = get_cleaning("rank_llm")
    ours = get_prompt("rankgpt").render_listwise(
        clean.query(QUERY), [cut_words(clean.finish(clean.prepare(t)), 300) for t in texts]
    )
    assert list(ours.messages) == ref.rank_llm_multiturn_messages(QUERY, texts)
    assert "e.g., [1] > [2]." in ours.messages[-1]["content"]


# ------------------------------------------------------------------------------------------------- Rank-R1 answers
def _rank_r1(outputs: Any, **options: Any) -> Any:
    """The rank-r1 recipe's ranker over a scripted model (no tokenizer: the token budgets are left out)."""
    from rerank_plugins.rankers.reasoning import ReasoningReranker
    from rerank_plugins.recipes import get_recipe
    from rerank_plugins.testing.fake_llm import ScriptedLLM

    merged = {**get_recipe("rank-r1").options, "max_document_tokens": None, "max_query_tokens": None, **options}
    return ReasoningReranker(ScriptedLLM(outputs), **merged)


VOTES = [
    "<think> 3 is best </think>\n<answer>[3]</answer>",
    "<think>r</think><answer> [2] </answer> trailing",
    "<THINK>r</THINK> <ANSWER>[4]</ANSWER>",
    "<answer>[3]</answer>",  # no reasoning at all
    "3 is best </think> <answer>[3]</answer>",  # no <think>
    "<think> r </think> <answer>[3] > [1]</answer>",
    "<think> r </think> <answer>3</answer>",
    "<think> r </think> Document [3] is the most relevant. <answer>[3]</answer>",
    "<think> r </think> <answer>[7]</answer>",  # out of range for a group of 4
    "<think> r </think> <answer>[3]",
    "<think> r </think> <answer></answer>",
]


@pytest.mark.parametrize("output", VOTES)
def test_rank_r1_accepts_exactly_the_votes_llm_rankers_accepts(output: str) -> None:
    """Issue 21.13: what ielab/llm-rankers@b36517b counts "Unexpected voting" keeps the group's node here too
    (fallback='keep'); what it accepts moves the same passage to the front."""
    ranker = _rank_r1([output], window_size=4, top_k_settle=1, shuffle_groups=False)
    result = ranker.rerank("q", candidates([f"passage {i}" for i in range(4)]))
    (trace,) = result.traces
    vote = ref.rank_r1_vote(output, 4)
    assert trace.failed == (vote is None), output
    expected = ["d0", "d1", "d2", "d3"] if vote is None else [f"d{vote}"]
    assert result.ids[: len(expected)] == expected


def test_rank_r1_result_does_not_depend_on_the_rest_of_the_batch() -> None:
    """Issue 21.14: one shuffle stream per query (seed and query text), not one per call."""
    texts = [f"passage {i}" for i in range(40)]

    def first_shown(prompt: str) -> str:  # always votes for the first passage shown: the shuffle decides
        return "<think> the first </think> <answer>[1]</answer>"

    alone = _rank_r1(first_shown).rerank("q", candidates(texts))
    batch = _rank_r1(first_shown).rerank_batch(["q", "q"], [candidates(texts), candidates(texts)])
    other = _rank_r1(first_shown).rerank_batch(["other query", "q"], [candidates(texts), candidates(texts)])
    assert alone.ids == batch[0].ids == batch[1].ids == other[1].ids
    assert alone.ids != [f"d{i}" for i in range(40)] and other[0].ids != alone.ids  # the shuffle is live and per query
    again = _rank_r1(first_shown, seed=930).rerank("q", candidates(texts))
    assert again.ids != alone.ids
