"""A faithful transcription of the Qwen3-Reranker model card's reference code ("Transformers Usage" in the
model cards of Qwen/Qwen3-Reranker-0.6B, -4B and -8B, huggingface.co/Qwen/Qwen3-Reranker-0.6B), used as the
reference implementation of the ``qwen3-reranker`` recipe.

Only the loading lines differ: the card loads ``AutoTokenizer.from_pretrained("Qwen/Qwen3-Reranker-0.6B",
padding_side='left')`` and ``AutoModelForCausalLM.from_pretrained(...).eval()`` from the hub; here the folder of a
tiny random model is passed in. Everything else (prefix, suffix, format_instruction, process_inputs,
compute_logits, max_length = 8192) is the card's code, kept line for line.
"""

from __future__ import annotations

import torch
from transformers import AutoModelForCausalLM, AutoTokenizer


class Qwen3CardReranker:
    def __init__(self, model_dir: str, max_length: int = 8192) -> None:
        self.tokenizer = AutoTokenizer.from_pretrained(model_dir, padding_side="left")
        self.model = AutoModelForCausalLM.from_pretrained(model_dir).eval()
        self.token_false_id = self.tokenizer.convert_tokens_to_ids("no")
        self.token_true_id = self.tokenizer.convert_tokens_to_ids("yes")
        self.max_length = max_length

        prefix = "<|im_start|>system\nJudge whether the Document meets the requirements based on the Query and the Instruct provided. Note that the answer can only be \"yes\" or \"no\".<|im_end|>\n<|im_start|>user\n"  # noqa: E501
        suffix = "<|im_end|>\n<|im_start|>assistant\n<think>\n\n</think>\n\n"
        self.prefix_tokens = self.tokenizer.encode(prefix, add_special_tokens=False)
        self.suffix_tokens = self.tokenizer.encode(suffix, add_special_tokens=False)

    @staticmethod
    def format_instruction(instruction, query, doc):
        if instruction is None:
            instruction = 'Given a web search query, retrieve relevant passages that answer the query'
        output = "<Instruct>: {instruction}\n<Query>: {query}\n<Document>: {doc}".format(instruction=instruction, query=query, doc=doc)  # noqa: E501, UP032
        return output

    def process_inputs(self, pairs):
        tokenizer, max_length = self.tokenizer, self.max_length
        inputs = tokenizer(
            pairs, padding=False, truncation='longest_first',
            return_attention_mask=False, max_length=max_length - len(self.prefix_tokens) - len(self.suffix_tokens)
        )
        for i, ele in enumerate(inputs['input_ids']):
            inputs['input_ids'][i] = self.prefix_tokens + ele + self.suffix_tokens
        inputs = tokenizer.pad(inputs, padding=True, return_tensors="pt", max_length=max_length)
        for key in inputs:
            inputs[key] = inputs[key].to(self.model.device)
        return inputs

    @torch.no_grad()
    def compute_logits(self, inputs, **kwargs):
        batch_scores = self.model(**inputs).logits[:, -1, :]
        true_vector = batch_scores[:, self.token_true_id]
        false_vector = batch_scores[:, self.token_false_id]
        batch_scores = torch.stack([false_vector, true_vector], dim=1)
        batch_scores = torch.nn.functional.log_softmax(batch_scores, dim=1)
        scores = batch_scores[:, 1].exp().tolist()
        return scores

    def score(self, task, queries, documents):
        """The card's driver lines: pairs -> process_inputs -> compute_logits."""
        pairs = [self.format_instruction(task, query, doc) for query, doc in zip(queries, documents)]
        inputs = self.process_inputs(pairs)
        return self.compute_logits(inputs), inputs
