"""Recipes of the pointwise LLM rerankers: Qwen3-Reranker, bge-reranker-v2-gemma, mxbai-rerank v2.

Each one is the strategy ``yes-no`` (:class:`~rerank_plugins.rankers.pointwise_llm.YesNoLLMReranker`) with a
token-level prompt format (:class:`~rerank_plugins.engine.token_prompt.TokenPromptFormat`) that assembles the
input ids exactly as the reference code does, the label tokens and the score formula of that code. The proof
is ``tests/recipes/test_pointwise_recipes.py``: the reference itself and this recipe on the same tiny random
model of the real architecture class give identical prompt ids and scores equal to 1e-5.
"""

from __future__ import annotations

from typing import Any

from . import Recipe, register_recipe

__all__ = [
    "BGE_GEMMA_FORMAT",
    "BGE_GEMMA_PROMPT",
    "MXBAI_V2_FORMAT",
    "QWEN3_FORMAT",
    "QWEN3_INSTRUCTION",
]


def _yes_no(
    name: str, ids: tuple[str, ...], family: str, architecture: str, reference: str, prompt_format: dict[str, Any],
    labels: tuple[str, str], score: str, description: str, notes: str, *,
    configs: dict[str, dict[str, object]] | None = None, **score_options: Any,
) -> None:
    """Register one ``yes-no`` recipe: ``prompt_format`` builds the ids, ``labels`` are the (yes, no) label tokens,
    ``score`` (with ``score_options``) the reference's formula; no word cap (the format cuts by tokens)."""
    register_recipe(
        Recipe(
            name=name,
            ids=ids,
            family=family,
            kind="yes-no",
            architectures=(architecture,),
            configs={} if configs is None else configs,
            reference=reference,
            options={
                "prompt_format": prompt_format,
                "labels": {"yes": [labels[0]], "no": [labels[1]]},
                "score": score,
                **score_options,
                "max_passage_words": None,
            },
            description=description,
            notes=notes,
        )
    )


# ---------------------------------------------------------------------------------------------- Qwen3-Reranker
def _qwen3_config(hidden: int, layers: int, intermediate: int, heads: int) -> dict[str, object]:
    """The ``config.json`` values of a published Qwen3-Reranker checkpoint that identify a ``--local-dir`` copy (its
    config has no ``_name_or_path``): the class, the sizes, and the vocabulary cut to the tokenizer's 151,669 tokens
    (the Qwen3 chat models keep 151,936 rows, so a Qwen3 chat model of the same size is not taken for a reranker)."""
    return {
        "architectures": ["Qwen3ForCausalLM"], "hidden_size": hidden, "num_hidden_layers": layers,
        "intermediate_size": intermediate, "num_attention_heads": heads, "num_key_value_heads": 8,
        "vocab_size": 151669,
    }


#: the model card's default task (``format_instruction``: "if instruction is None")
QWEN3_INSTRUCTION = "Given a web search query, retrieve relevant passages that answer the query"

#: Qwen3-Reranker model card (huggingface.co/Qwen/Qwen3-Reranker-0.6B, "Transformers Usage"): prefix, the pair
#: text ``format_instruction`` builds, suffix with the empty think block; the pair is tokenised with
#: ``max_length = 8192 - len(prefix_tokens) - len(suffix_tokens)`` and ``truncation=True``.
QWEN3_FORMAT = {
    "joint": True,
    "prefix": (
        "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the "
        'Instruct provided. Note that the answer can only be "yes" or "no".<|im_end|>\n<|im_start|>user\n',
    ),
    "query": "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {document}",
    "suffix": ("<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n",),
    "default_instruction": QWEN3_INSTRUCTION,
    "max_length": 8192,
    "source": "Qwen3-Reranker model card, Transformers usage",
}

_yes_no(
    "qwen3-reranker",
    ("Qwen/Qwen3-Reranker-0.6B", "Qwen/Qwen3-Reranker-4B", "Qwen/Qwen3-Reranker-8B"),
    "Qwen3-Reranker",
    "Qwen3ForCausalLM",
    'Qwen3-Reranker model card code, "Transformers Usage" (https://huggingface.co/Qwen/Qwen3-Reranker-0.6B)',
    QWEN3_FORMAT,
    ("yes", "no"),
    "p_yes",
    "P(yes) = exp(log_softmax([logit no, logit yes])[yes]) at the last position, left padding",
    (
        "Prompt: system/user prefix, '<Instruct>: ...\\n<Query>: ...\\n<Document>: ...', suffix with the empty "
        "think block; instruction= replaces the default task. The card tokenises the pair with the "
        "tokenizer's default add_special_tokens=True, which adds nothing for Qwen's tokenizer; the recipe "
        "adds none. The card pads left without position ids; we pass position ids from the mask (RoPE is "
        "relative, the logits agree to float rounding). "
        "dtype, per device (the backends' auto rule, rerank_plugins/backends/device.py): CUDA: bf16 (fp16 before "
        "compute capability 8.0), as the card: its from_pretrained(...) loads the published bf16 weights in "
        "bf16 under transformers 5, whose default is dtype='auto' (under transformers 4 it loaded fp32). "
        "CPU: fp32, on purpose: the bf16 weights upcast exactly, so the scores are the published weights' own, "
        "equal to the card's code run in fp32 (8.4e-08 on a tiny random Qwen3 saved in bf16) and independent "
        "of batching; the card's bf16 scores are bf16 numbers (a step of 2**-8 = 0.0039 for P(yes) >= 0.5) "
        "that move with the batch and padding, and CPUs without AVX512-BF16 / AMX emulate bf16, slower than "
        "fp32. Measured difference from the card as written: 0.0039 on that tiny model "
        "(tests/recipes/test_qwen3_dtype.py), 0.0115 (0.6B) and 0.0183 (8B) on the real weights (issue 21). "
        "backend_options={'dtype': 'bfloat16'} follows the card on the CPU too: 0.0044 from its scores, "
        "within bf16 rounding and no closer than fp32 (the card's own scores move by 0.0078 between one pair "
        "per call and one batch)."
    ),
    configs={
        "Qwen/Qwen3-Reranker-0.6B": _qwen3_config(1024, 28, 3072, 16),
        "Qwen/Qwen3-Reranker-4B": _qwen3_config(2560, 36, 9728, 32),
        "Qwen/Qwen3-Reranker-8B": _qwen3_config(4096, 36, 12288, 32),
    },
)

# ---------------------------------------------------------------------------------------------- bge-reranker-v2-gemma
#: FlagEmbedding 1.4.2 ``BaseLLMReranker.compute_score_single_gpu`` default ``prompt``
BGE_GEMMA_PROMPT = (
    "Given a query A and a passage B, determine whether the passage contains an answer to the query by "
    "providing a prediction of either 'Yes' or 'No'."
)

#: FlagEmbedding 1.4.2, FlagEmbedding/inference/reranker/decoder_only/base.py (``FlagLLMReranker`` =
#: ``BaseLLMReranker``): ``[bos] + tok("A: " + query)[:max_length*3//4]`` then ``tok("\n") +
#: tok("B: " + passage)[:max_length]``, the pair cut ``only_second`` to ``max_length + len(sep) + len(prompt)``,
#: then ``tok("\n") + tok(prompt)``; every piece tokenised with ``add_special_tokens=False``.
BGE_GEMMA_FORMAT = {
    "joint": False,
    "bos": True,
    "query": "A: {query}",
    "separator": "\n",
    "document": "B: {document}",
    "suffix": ("\n", "{instruction}"),
    "default_instruction": BGE_GEMMA_PROMPT,
    "max_length": 512,
    "query_fraction": (3, 4),
    "pair_budget_adds_suffix": True,
    "source": "FlagEmbedding 1.4.2 FlagLLMReranker",
}

_yes_no(
    "bge-reranker-v2-gemma",
    ("BAAI/bge-reranker-v2-gemma",),
    "bge-reranker-v2 (LLM)",
    "GemmaForCausalLM",
    "FlagEmbedding==1.4.2 FlagLLMReranker (FlagEmbedding/inference/reranker/decoder_only/base.py)",
    BGE_GEMMA_FORMAT,
    ("Yes", "No"),
    "sigmoid",
    "sigmoid of the 'Yes' logit at the last position (FlagLLMReranker normalize=True)",
    (
        "Raw text, no chat template, BOS first (when the tokenizer's BOS differs from its pad token, "
        "FlagEmbedding's test), the 'Yes' token = tok('Yes')[0]. FlagEmbedding returns the raw 'Yes' logit "
        "by default and sigmoid(logit) with normalize=True; the recipe gives the normalised [0, 1] form "
        "(score='logit' gives the raw one). instruction= replaces FlagEmbedding's prompt. The raw logit "
        "needs the in-process backend (an OpenAI-compatible server returns log-probabilities only). "
        "dtype: FlagEmbedding uses fp32 unless use_fp16/use_bf16."
    ),
)

# ---------------------------------------------------------------------------------------------- mxbai-rerank v2
#: mxbai-rerank 0.1.6, mxbai_rerank/mxbai_rerank_v2.py (``MxbaiRerankV2``)
MXBAI_V2_TASK = (
    "You are a search relevance expert who evaluates how well documents match search queries. For each "
    "query-document pair, carefully analyze the semantic relationship between them, then provide your binary "
    "relevance judgment (0 for not relevant, 1 for relevant).\nRelevance:"
)
MXBAI_V2_FORMAT = {
    "joint": False,
    "prefix": (
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\n",
    ),
    "query": "query: {query}",
    "query_with_instruction": "instruction: {instruction}\nquery: {query}",
    "separator": "\n",
    "document": "document: {document}",
    "suffix": ("\n", MXBAI_V2_TASK, "<|im_end|>\n<|im_start|>assistant\n"),
    "max_length": 8192,
    "query_fraction": (3, 4),
    "source": "mxbai-rerank 0.1.6 MxbaiRerankV2",
}

_MXBAI_NOTES = (
    "Chat-style text written out by the package (its own prefix/suffix strings, not the tokenizer's template), "
    "'query: ...' (or 'instruction: ...\\nquery: ...' with instruction=), '\\n', 'document: ...', '\\n', the "
    "task prompt, the assistant turn; labels '1' (yes) and '0' (no). The package's score is the raw logit "
    "difference z('1') - z('0'); with normalize=True it is sigmoid(diff - estimated_max / 2). The recipe gives "
    "the normalised [0, 1] form (score='logit_diff' gives the raw one). mxbai-rerank 0.1.6 calls "
    "tokenizer.prepare_for_model, which transformers 5 removed; the proof test restores it with the legacy "
    "only_second rule. dtype: the package loads torch_dtype='auto' (bf16 weights)."
)

#: estimated_max_cfg of mxbai-rerank 0.1.6 (mxbai_rerank/mxbai_rerank_v2.py): the score shift is half of it.
_MXBAI_ESTIMATED_MAX = {"base": 9.0, "large": 12.0}

for _size, _estimated_max in _MXBAI_ESTIMATED_MAX.items():
    _yes_no(
        f"mxbai-rerank-{_size}-v2",
        (f"mixedbread-ai/mxbai-rerank-{_size}-v2",),
        "mxbai-rerank v2",
        "Qwen2ForCausalLM",
        "mxbai-rerank==0.1.6 MxbaiRerankV2 (mxbai_rerank/mxbai_rerank_v2.py)",
        MXBAI_V2_FORMAT,
        ("1", "0"),
        "sigmoid_diff",
        f"sigmoid(logit '1' - logit '0' - {_estimated_max / 2}) at the last position (normalize=True)",
        _MXBAI_NOTES,
        score_shift=_estimated_max / 2,
    )
