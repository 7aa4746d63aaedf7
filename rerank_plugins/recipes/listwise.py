"""Recipes of the listwise and reasoning rerankers: RankZephyr, RankVicuna, FIRST (Mistral and Zephyr), Rank-R1,
ReasonRank, each as its authors' code runs it.

Every option below is read from the reference code (package or repository, file, commit in ``reference``); the
prompt-identity tests in ``tests/recipes/test_listwise_recipes.py`` build the reference's own prompt (rank-llm
0.25.7 imported without its vLLM half; ielab/llm-rankers and ReasonRank transcribed with their commits) and ours
for the same query and passages with the same tokenizer and compare the token ids, BOS included.
"""

from __future__ import annotations

from . import Recipe, register_recipe

__all__ = ["LISTWISE_RECIPES"]

_RANK_LLM = "rank-llm==0.25.7 rank_llm/rerank/listwise/rank_listwise_os_llm.py (create_prompt, num_output_tokens)"

#: rank_llm's RankListwiseOSLLM defaults: window 20, stride 10, one pass, context 4096, prompts fitted by shrinking
#: the word cap (create_prompt), text prompts tokenised by vLLM with the tokenizer's special tokens (BOS).
_RANK_LLM_LISTWISE = {
    "mode": "generate",
    "window_size": 20,
    "stride": 10,
    "context_size": 4096,
    "max_passage_words": 300,
    "cleaning": "rank_llm",
    "add_special_tokens": True,
    "fallback": "keep",
}

#: the chat template rank_llm sets on the tokenizer of every ``rank_vicuna`` model (rank-llm 0.25.7
#: rank_llm/rerank/vllm_handler.py ``VllmHandler.__init__``, castorini/rank_llm#211): the hub tokenizer of
#: castorini/rank_vicuna_7b_v1 has none. Copied verbatim, the newline and indentation included (trim_blocks and
#: lstrip_blocks remove them when it renders).
RANK_VICUNA_CHAT_TEMPLATE = (
    "{% if not add_generation_prompt is defined %}{% set add_generation_prompt = false %}{% endif %}\n"
    "                    {% for message in messages %}{% if not loop.first %}{% endif %}{% if message['role'] == "
    "'system' %}{{ message['content'] + ' ' }}{% elif message['role'] == 'user' %}{{ 'USER: ' + message['content'] "
    "+ ' ' }}{% elif message['role'] == 'assistant' %}{{ 'ASSISTANT: ' + message['content'] + '</s>' }}{% endif %}"
    "{% endfor %}{% if add_generation_prompt %}{{ 'ASSISTANT:' }}{% endif %}"
)

LISTWISE_RECIPES = (
    Recipe(
        name="rank-zephyr",
        ids=("castorini/rank_zephyr_7b_v1_full",),
        family="RankZephyr",
        architectures=("MistralForCausalLM",),
        kind="listwise",
        reference=f"{_RANK_LLM}; zephyr_reranker.py ZephyrReranker; prompt_templates/rank_zephyr_template.yaml",
        options={**_RANK_LLM_LISTWISE, "prompt": "rankzephyr"},
        description="RankZephyr 7B: sliding windows of 20 (stride 10) writing [2] > [1] > ...; prompts fitted "
        "under 4096 tokens; BOS added as vLLM adds it to rank_llm's text prompt",
        notes="rank_llm generates exactly num_output_tokens (min_tokens = max_tokens); we stop at EOS. rank_llm reads "
        "every digit of the answer; our parser reads bracketed ids first (same result on well-formed answers).",
    ),
    Recipe(
        name="rank-vicuna",
        ids=("castorini/rank_vicuna_7b_v1",),
        family="RankVicuna",
        architectures=("LlamaForCausalLM",),
        kind="listwise",
        reference=f"{_RANK_LLM}; vicuna_reranker.py VicunaReranker (rank_zephyr_template.yaml); vllm_handler.py "
        "VllmHandler (the rank_vicuna chat template)",
        options={**_RANK_LLM_LISTWISE, "prompt": "rankzephyr", "chat_template": RANK_VICUNA_CHAT_TEMPLATE},
        description="RankVicuna 7B: the RankZephyr prompt through the Vicuna chat template rank_llm 0.25.7 sets "
        "for it (the hub tokenizer has none)",
        notes="The hub tokenizer has no chat template; rank_llm 0.25.7 sets its own on every rank_vicuna model "
        "(vllm_handler.py, castorini/rank_llm#211: 'system ', 'USER: ... ', 'ASSISTANT:'), which the recipe "
        "supplies (chat_template=), also over a template a local copy may carry. rank_llm before 0.20 built "
        "Vicuna prompts with FastChat's conversation template.",
    ),
    Recipe(
        name="first-mistral",
        ids=("castorini/first_mistral",),
        family="FIRST",
        architectures=("MistralForCausalLM",),
        kind="first",
        reference=f"{_RANK_LLM} (use_logits=True, use_alpha=True); prompt_templates/rank_zephyr_alpha_template.yaml",
        options={**_RANK_LLM_LISTWISE, "mode": "first", "prompt": "first-rank-llm", "ids": "upper"},
        description="FIRST (Mistral) as rank_llm runs it: alphabetical ids, the window ordered by the logits of the "
        "first identifier token, one forward pass per window",
        notes="rank_llm lets the model write '[' and reads the top-30 logprobs of the next position; we force '[' "
        "(as FIRST's unbatched run_llm does; the same position whenever the model's greedy first token is '[') "
        "and read every identifier's logprob, so ids outside rank_llm's top 30 are ordered by logprob instead of "
        "appended in input order. The prompt is counted and fitted without the '[', as rank_llm counts it.",
    ),
    Recipe(
        name="first-zephyr",
        ids=("rryisthebest/First_Model",),
        family="FIRST",
        architectures=("MistralForCausalLM",),
        kind="first",
        reference="gangiswag/llm-reranker@2d7cba4 scripts/utils/rank_listwise_os_llm.py (create_prompt, run_llm "
        "use_logits/use_alpha: prompt + '[' then one token), scripts/utils/llm_util.py, bash/run_rerank_llm.sh",
        options={
            "mode": "first", "prompt": "first", "prompt_version": 1, "ids": "upper", "window_size": 20,
            "stride": 10, "context_size": 32768, "max_passage_words": 300, "fit_rule": "first", "cleaning": "first",
            "add_special_tokens": True, "fallback": "keep",
        },
        description="FIRST (Zephyr, the paper's model): alphabetical ids, ranking from the logits of the first "
        "identifier after '['; windows 20 / stride 10 as run_rerank_llm.sh",
        notes="Followed: FIRST's own create_prompt as bash/run_rerank_llm.sh runs it (--do_batched 1, --context_size "
        "32768): the word cap starts at 300 for every window size (not rank_llm's 300*20/window: a [0,15) window "
        "keeps 300 words per passage) and the reserve is a numeric permutation of window_size (fit_rule='first'), "
        "so the 300-word cap is the effective passage budget. Deviation: run_llm_batched lets the model write its "
        "first token and reads the top-30 logprobs at the second position; our backends read the first answer "
        "token, so we force '[' (FIRST's unbatched run_llm) -- the same position whenever the model's greedy "
        "first token is '[' -- and read all 20 identifiers' logprobs: ids outside FIRST's top 30 are ordered by "
        "logprob instead of appended in input order.",
    ),
    Recipe(
        name="rank-r1",
        ids=("ielabgroup/Rank-R1-3B-v0.1", "ielabgroup/Rank-R1-7B-v0.1", "ielabgroup/Rank-R1-14B-v0.1"),
        family="Rank-R1",
        architectures=("Qwen2ForCausalLM",),
        kind="reasoning",
        reference="ielab/llm-rankers@b36517b llmrankers/setwise.py (RankR1SetwiseLlmRanker, heapSort), "
        "Rank-R1/prompts/prompt_setwise-R1.toml, Rank-R1/README.md (run_setwise.py --num_child 19 --method heapsort "
        "--k 10 --query_length 32 --passage_length 512); llm-rankers==0.0.2 setwise.py for the heapsort",
        options={
            "prompt": "rank-r1", "schedule": "heapsort", "window_size": 20, "top_k_settle": 10,
            "shuffle_groups": True, "seed": 929, "cleaning": "none", "max_document_tokens": 512,
            "max_passage_words": None, "max_query_tokens": 32, "max_new_tokens": 2048, "fallback": "keep",
        },
        description="Rank-R1 (LoRA adapter on Qwen2.5-Instruct, base named in its adapter_config.json, merged at "
        "load as the README's get_model): setwise heapsort of groups of 20 for the top 10, the best of each group "
        "named in <answer>[i]</answer>",
        notes="The reference samples each group's display order with Python's global random (seeded 929 at import), "
        "one stream for the whole run; we shuffle from one stream per query seeded by seed and the query text, so "
        "a query's result does not depend on the rest of the batch. Answers are read with the reference's pattern "
        "(<think>.*?</think>\\s*<answer>(.*?)</answer>) and must be exactly one label [i]: anything else "
        "(<answer>[3] > [1]</answer>, <answer>3</answer>, text between </think> and <answer>, no <think>) is its "
        "'Unexpected voting' and keeps the group's node (fallback='keep'). v0.2 adapters use another prompt "
        "(prompt_setwise-R1-v0.2.toml) and are not listed.",
    ),
    Recipe(
        name="reasonrank",
        ids=("liuwenhan/reasonrank-7B", "liuwenhan/reasonrank-32B"),
        family="ReasonRank",
        architectures=("Qwen2ForCausalLM",),
        kind="reasoning",
        reference="8421BCD/ReasonRank@06721fd rerank/rank_listwise_os_llm.py (create_prompt, run_llm_batched), "
        "rerank/rankllm.py (_clean_response, receive_permutation), utils.py, listwise_prompt_r1.toml, "
        "run_rank_llm.sh",
        options={
            "prompt": "reasonrank", "window_size": 20, "stride": 10, "num_passes": 1, "cleaning": "reasonrank",
            "max_document_tokens": 512, "max_passage_words": None, "max_new_tokens": 3072 + 100,
            "fallback": "partial",
        },
        description="ReasonRank (Qwen2.5-based): reasoning then the full ranking in <answer>, windows of 20 / "
        "stride 10, one pass, 3072 + 100 new tokens, a cut-off answer keeps its prefix",
        notes="Passage budget: DOC_MAXLEN is 512 tokens for BRIGHT / R2MED (the run_rank_llm.sh runs) and 100 for "
        "TREC DL / BEIR: pass max_document_tokens=100 there. rank_llm's later reasonrank template has one blank line "
        "fewer than ReasonRank's own prompt, which we follow. reasonrank-8B (Qwen3) uses another prompt mode and "
        "sampling and is not listed.",
    ),
)

for _recipe in LISTWISE_RECIPES:
    register_recipe(_recipe)
