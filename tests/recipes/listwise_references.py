"""The references' own prompt builders, for the recipe identity tests.

* rank_llm: rank-llm 0.25.7 (installed ``--no-deps`` by the Makefile), imported without running its package
  ``__init__`` files (they import vLLM): the two packages are registered as plain namespace modules and, when vLLM
  is missing, a stub ``vllm`` module stands in for the names ``rank_listwise_os_llm.py`` reads at import
  (``vllm.RequestOutput`` in an annotation; nothing of vLLM runs). ``RankListwiseOSLLM.create_prompt`` -- the
  reference's prompt builder *and* its token-budget loop -- then runs as shipped, on an instance initialised by
  the reference's own ``ListwiseRankLLM.__init__`` (everything but the vLLM engine).
* FIRST (gangiswag/llm-reranker@2d7cba4), Rank-R1 (ielab/llm-rankers@b36517b) and ReasonRank
  (8421BCD/ReasonRank@06721fd) cannot be installed (no package, or vLLM at import): their prompt code is
  transcribed below line by line, with the file it comes from.
"""

from __future__ import annotations

import importlib.util
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest


def rank_llm() -> Any:
    """The ``rank_llm.rerank.listwise.rank_listwise_os_llm`` module (skips when rank-llm or its deps are missing)."""
    for dep in ("rank_llm", "ftfy", "dacite", "yaml"):
        pytest.importorskip(dep)
    spec = importlib.util.find_spec("rank_llm")
    assert spec is not None and spec.origin is not None
    root = Path(spec.origin).parent
    for name, sub in (("rank_llm.rerank", "rerank"), ("rank_llm.rerank.listwise", "rerank/listwise")):
        if name not in sys.modules:
            module = types.ModuleType(name)
            module.__path__ = [str(root / sub)]
            sys.modules[name] = module
    stubbed = "vllm" not in sys.modules and importlib.util.find_spec("vllm") is None
    if stubbed:
        stub = types.ModuleType("vllm")
        stub.RequestOutput = object  # type: ignore[attr-defined]
        outputs = types.ModuleType("vllm.outputs")
        outputs.RequestOutput = object  # type: ignore[attr-defined]
        sys.modules["vllm"], sys.modules["vllm.outputs"] = stub, outputs
    try:
        from rank_llm.rerank.listwise import rank_listwise_os_llm
    finally:
        if stubbed:  # never leave the stub where the library (require("vllm")) would find it
            del sys.modules["vllm"], sys.modules["vllm.outputs"]
    return rank_listwise_os_llm


def rank_llm_prompt(
    tokenizer: Any, template: str, query: str, passages: list[str], *, context_size: int = 4096,
    use_alpha: bool = False, window_size: int = 20,
) -> str:
    """``RankListwiseOSLLM.create_prompt`` of rank-llm 0.25.7 for one window holding all ``passages``."""
    module = rank_llm()
    from rank_llm.data import Candidate, Query, Result
    from rank_llm.rerank.listwise.listwise_rankllm import ListwiseRankLLM

    ranker = module.RankListwiseOSLLM.__new__(module.RankListwiseOSLLM)
    ListwiseRankLLM.__init__(
        ranker, model="reference", context_size=context_size, prompt_template_path=str(module.TEMPLATES / template),
        window_size=window_size, stride=10, use_alpha=use_alpha, device="cpu", batch_size=1,
    )
    ranker._tokenizer = tokenizer
    ranker._is_thinking = False
    ranker._output_token_estimate = None
    result = Result(
        query=Query(text=query, qid="q"),
        candidates=[Candidate(docid=str(i), score=0.0, doc={"text": t}) for i, t in enumerate(passages)],
        invocations_history=[],
    )
    prompt, _ = ranker.create_prompt(result, 0, len(passages))
    return str(prompt)


def rank_llm_multiturn_messages(query: str, passages: list[str]) -> list[dict[str, str]]:
    """rank-llm 0.25.7 ``MultiTurnListwiseInferenceHandler.generate_prompt`` with ``rank_gpt_template.yaml``."""
    module = rank_llm()
    import yaml
    from rank_llm.data import Candidate, Query, Result
    from rank_llm.rerank.listwise.multiturn_listwise_inference_handler import MultiTurnListwiseInferenceHandler

    template = yaml.safe_load((module.TEMPLATES / "rank_gpt_template.yaml").read_text())
    handler = MultiTurnListwiseInferenceHandler(template)
    result = Result(
        query=Query(text=query, qid="q"),
        candidates=[Candidate(docid=str(i), score=0.0, doc={"text": t}) for i, t in enumerate(passages)],
        invocations_history=[],
    )
    return list(handler.generate_prompt(result, rank_start=0, rank_end=len(passages), max_length=300))


# ------------------------------------------------------------------------------------------------- FIRST (Zephyr)
def first_zephyr_prompt(
    tokenizer: Any, query: str, passages: list[str], *, context_size: int = 32768, window_size: int = 20
) -> str:
    """gangiswag/llm-reranker@2d7cba4 ``scripts/utils/rank_listwise_os_llm.py`` ``RankListwiseOSLLM.create_prompt``
    (text reranking, use_alpha=True, variable_passages=True and the system message of
    ``scripts/utils/llm_util.py`` ``rerank_beir_outputs_llm``, no few-shot examples) for one window holding all
    ``passages`` (``window_size``: the ``--window_size`` the ranker was built with), then ``prompt + "["``: the
    '[' that ``run_llm`` forces and that ``run_llm_batched`` lets the model write before the position it reads."""
    from ftfy import fix_text

    alph_start_idx = ord("A") - 1
    system_message = (
        "You are RankLLM, an intelligent assistant that can rank passages based on their relevancy to the query"
    )
    system_message_supported = "system" in tokenizer.chat_template

    def replace_number(s: str) -> str:  # scripts/utils/rankllm.py _replace_number(use_alpha=True)
        return re.sub(r"\[([A-z]+)\]", r"(\1)", s)

    def num_output_tokens(use_alpha: int, current_window_size: int | None = None) -> int:
        # sic: create_prompt calls num_output_tokens(rank_end - rank_start), so the window length lands in
        # use_alpha (truthy: numeric ids) and the configured window size is counted
        if current_window_size is None:
            current_window_size = window_size
        if use_alpha:
            token_str = " > ".join([f"[{i + 1}]" for i in range(current_window_size)])
        else:
            token_str = " > ".join([f"[{chr(alph_start_idx + i + 1)}]" for i in range(current_window_size)])
        return len(tokenizer.encode(token_str)) - 1

    num = len(passages)
    max_length = 300
    while True:
        messages = []
        if system_message and system_message_supported:
            messages.append({"role": "system", "content": system_message})
        prefix = (
            f"I will provide you with {num} passages, each indicated by a alphabetical identifier []. Rank the "
            f"passages based on their relevance to the search query: {query}.\n"
        )
        rank = 0
        input_context = f"{prefix}\n"
        for hit in passages:
            rank += 1  # noqa: SIM113 - transcribed as written
            content = hit.replace("Title: Content: ", "").strip()
            content = " ".join(content.split()[:max_length])
            identifier = chr(alph_start_idx + rank)
            input_context += f"[{identifier}] {replace_number(content)}\n"
        example_ordering = "[B] > [A]"
        input_context += (
            f"Search Query: {query}.\nRank the {num} passages above based on their relevance to the search query. "
            "All the passages should be included and listed using identifiers, in descending order of relevance. "
            f"The output format should be [] > [], e.g., {example_ordering}, Only respond with the ranking results, "
            "do not say any word or explain."
        )
        messages.append({"role": "user", "content": input_context})
        prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        prompt = fix_text(prompt)
        num_tokens = len(tokenizer.encode(prompt))
        if num_tokens <= context_size - num_output_tokens(num):
            break
        max_length -= max(1, (num_tokens - context_size + num_output_tokens(num)) // (num * 4))
    return str(prompt) + "["


# ------------------------------------------------------------------------------------------------- Rank-R1
#: ielab/llm-rankers@b36517b Rank-R1/prompts/prompt_setwise-R1.toml
RANK_R1_SYSTEM = (
    "A conversation between User and Assistant. The user asks a question, and the Assistant solves it. The "
    "assistant first thinks about the reasoning process in the mind and then provides the user with the answer. "
    "The reasoning process and answer are enclosed within <think> </think> and <answer> </answer> tags, "
    "respectively, i.e., <think> reasoning process here </think> <answer> answer here </answer>."
)
RANK_R1_USER = (
    'Given the query: "{query}", which of the following documents is most relevant?\n{docs}\nAfter completing the '
    "reasoning process, please provide only the label of the most relevant document to the query, enclosed in "
    "square brackets, within the answer tags. For example, if the third document is the most relevant, the answer "
    "should be: <think> reasoning process here </think> <answer>[3]</answer>."
)


def rank_r1_messages(tokenizer: Any, query: str, passages: list[str]) -> list[dict[str, str]]:
    """The chat of one group, unshuffled: ``run_setwise.py`` truncates the query to 32 and passages to 512 tokens
    with ``SetwiseLlmRanker.truncate`` (run here from llm-rankers 0.0.2 itself when installed), then
    ``RankR1SetwiseLlmRanker.compare`` (llmrankers/setwise.py@b36517b) joins ``f'{label} {text}'`` by newlines
    with labels ``[1]``, ``[2]``, ... and formats the toml's prompts."""
    try:
        from llmrankers.setwise import SetwiseLlmRanker
    except ImportError:  # the same two lines (llmrankers/setwise.py SetwiseLlmRanker.truncate)
        def truncate(text: str, length: int) -> str:
            return str(tokenizer.convert_tokens_to_string(tokenizer.tokenize(text)[:length]))
    else:
        holder = SetwiseLlmRanker.__new__(SetwiseLlmRanker)
        holder.tokenizer = tokenizer

        def truncate(text: str, length: int) -> str:
            return str(SetwiseLlmRanker.truncate(holder, text, length))

    query = truncate(query, 32)
    texts = [truncate(p, 512) for p in passages]
    characters = [f"[{i + 1}]" for i in range(len(texts))]
    docs = "\n".join([f"{characters[i]} {texts[i]}" for i in range(len(texts))])
    return [
        {"role": "system", "content": RANK_R1_SYSTEM},
        {"role": "user", "content": RANK_R1_USER.format(query=query, docs=docs)},
    ]


# ------------------------------------------------------------------------------------------------- ReasonRank
#: 8421BCD/ReasonRank@06721fd listwise_prompt_r1.toml system_prompt_reasoning
REASONRANK_SYSTEM = (
    "You are RankLLM, an intelligent assistant that can rank passages based on their relevance to the query. Given "
    "a query and a passage list, you first thinks about the reasoning process in the mind and then provides the "
    "answer (i.e., the reranked passage list). The reasoning process and answer are enclosed within <think> "
    "</think> and <answer> </answer> tags, respectively, i.e., <think> reasoning process here </think> <answer> "
    "answer here </answer>."
)


def reasonrank_prompt(tokenizer: Any, query: str, passages: list[str], *, max_length: int = 512) -> str:
    """8421BCD/ReasonRank@06721fd ``rerank/rank_listwise_os_llm.py`` ``create_prompt`` (prompt_mode
    rank_GPT_reasoning) with ``utils.py`` ``add_prefix_prompt``, ``add_post_prompt``,
    ``convert_doc_to_prompt_content(truncate_by_word=False)`` and ``replace_number``."""
    from ftfy import fix_text

    def replace_number(s: str) -> str:
        return re.sub(r"\[(\d+)\]", r"(\1)", s)

    def convert_doc_to_prompt_content(doc: dict[str, Any], max_length: int) -> str:
        content = doc["text"]
        content = content.strip()
        content = fix_text(content)
        content = tokenizer.convert_tokens_to_string(tokenizer.tokenize(content)[:max_length])
        return replace_number(content)

    query = replace_number(query).strip()
    num = len(passages)
    messages = [{"role": "system", "content": REASONRANK_SYSTEM}]
    prefix = (
        f"I will provide you with {num} passages, each indicated by a numerical identifier []. Rank the passages "
        f"based on their relevance to the search query: {query}.\n"
    )
    rank = 0
    input_context = f"{prefix}\n"
    for text in passages:
        rank += 1  # noqa: SIM113 - transcribed as written
        content = convert_doc_to_prompt_content({"text": text}, max_length)
        input_context += f"[{rank}] {content}\n"
    example_ordering = "[2] > [1]"
    input_context += (
        f"Search Query: {query}.\nRank the {num} passages above based on their relevance to the search query. All "
        "the passages should be included and listed using identifiers, in descending order of relevance. The "
        f"format of the answer should be [] > [], e.g., {example_ordering}."
    )
    messages.append({"role": "user", "content": input_context})
    prompt = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return str(fix_text(prompt))


def rank_r1_vote(completion: str, n: int) -> int | None:
    """The passage (0-based, in the order shown) that ``RankR1SetwiseLlmRanker.compare`` (ielab/llm-rankers@b36517b
    llmrankers/setwise.py) votes for from one completion, or ``None`` for its "Unexpected voting" (``heapify``
    then keeps the node). ``pattern`` is Rank-R1/prompts/prompt_setwise-R1.toml's."""
    pattern = r"<think>.*?</think>\s*<answer>(.*?)</answer>"
    characters = [f"[{i + 1}]" for i in range(n)]
    match = re.search(pattern, completion.lower(), re.DOTALL)
    result = match.group(1).strip() if match else f"input_text:\n..., completion:\n{completion}"
    result = result.strip()
    if result not in characters:
        return None
    return characters.index(result)


def rank_llm_vicuna_tokenizer(tokenizer: Any, model: str = "castorini/rank_vicuna_7b_v1") -> Any:
    """A copy of ``tokenizer`` as rank-llm 0.25.7's ``VllmHandler.__init__`` (rank_llm/rerank/vllm_handler.py)
    leaves it for a ``rank_vicuna`` model: the handler runs as shipped, with a stand-in ``vllm.LLM`` that hands
    back the copy, and sets its own chat template on it (castorini/rank_llm#211)."""
    import copy

    rank_llm()  # the namespace packages (skips when rank-llm is missing)
    tok = copy.deepcopy(tokenizer)

    class _LLM:
        def __init__(self, **kwargs: Any) -> None:
            pass

        def get_tokenizer(self) -> Any:
            return tok

    stub = types.ModuleType("vllm")
    stub.LLM, stub.SamplingParams = _LLM, object  # type: ignore[attr-defined]
    outputs = types.ModuleType("vllm.outputs")
    outputs.RequestOutput = object  # type: ignore[attr-defined]
    saved = {name: sys.modules.get(name) for name in ("vllm", "vllm.outputs")}
    sys.modules["vllm"], sys.modules["vllm.outputs"] = stub, outputs
    try:
        from rank_llm.rerank import vllm_handler

        vllm_handler.vllm = stub  # type: ignore[attr-defined]  # also when imported earlier
        vllm_handler.VllmHandler(
            model=model, download_dir="", enforce_eager=True, max_logprobs=30, tensor_parallel_size=1,
            gpu_memory_utilization=0.9,
        )
    finally:
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
    return tok
