"""vLLM backend (``pip install 'rerank-plugins[vllm]'``, needs a CUDA GPU): the same contract as the
transformers backend, for throughput.

* Prompts are rendered exactly as by the transformers backend (chat template with the generation prompt,
  then the assistant prefix; raw prompts as is) and sent as token ids, so both backends read the same tokens.
  The special-token policy is the transformers backend's (:func:`~rerank_plugins.backends.base.adds_special_tokens`:
  the prompt's ``add_special_tokens``, else the backend option, else none for chat prompts and the tokenizer's
  for raw ones). Because the ids are built here, vLLM's own habit of tokenising a text prompt with special
  tokens (what rank_llm relies on for RankZephyr's ``<s>``) never applies behind the policy's back:
  :func:`token_prompt_inputs` builds them and is unit-tested without vLLM.
* ``generate``: the :class:`~rerank_plugins.backends.base.GenerationRequest` the base class built becomes
  ``SamplingParams`` (:func:`sampling_kwargs`): ``temperature=0`` is greedy; ``temperature > 0`` samples with
  ``seed``; the ``stop`` strings are cut from the text (vLLM's default); ``finish_reason`` is vLLM's own.
* ``label_logprobs``: one single-token step per prompt (``max_tokens=1``) asking for the top ``max_logprobs``
  log-probabilities of the first generated token; vLLM reports them before any sampling adjustment
  (log-softmax of the raw logits). A label outside that top-k gets ``-inf``, as the contract allows; raise
  ``max_logprobs`` when many labels must all be seen.
* Label tokens follow :mod:`rerank_plugins.backends.tokens`.
* A local GGUF file is served from its dequantised copy (converted once by the transformers loader and
  cached), because vLLM's own GGUF support is experimental.
* ``gpu_memory_utilization`` is not set unless you pass it (vLLM's default applies); ``tensor_parallel_size``
  spreads the model over several GPUs.

The functions :func:`sampling_kwargs`, :func:`generation_from_output` and :func:`label_logprobs_from_output`
hold the translation to and from vLLM's objects and are unit-tested without vLLM.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

from .._optional import require
from ..errors import BackendError, ConfigError
from ..refs import ModelRef, resolve_model
from ..validation import check_bool, check_int, check_mapping, check_number
from .base import ChatPrompt, Generation, GenerationRequest, LLMBackend, TokenCounter, adds_special_tokens
from .tokens import LabelTokens
from .transformers import BackendStats

__all__ = [
    "VLLMBackend", "generation_from_output", "label_logprobs_from_output", "render_prompt", "sampling_kwargs",
    "token_prompt_inputs",
]


def render_prompt(tokenizer: Any, prompt: ChatPrompt) -> str:
    """The prompt text (chat template with the generation prompt, then the assistant prefix; raw as is)."""
    if prompt.raw is not None:
        return prompt.raw + prompt.assistant_prefix
    if not prompt.messages:
        raise ConfigError("a ChatPrompt needs messages or raw text")
    text = tokenizer.apply_chat_template([dict(m) for m in prompt.messages], add_generation_prompt=True, tokenize=False)
    return str(text) + prompt.assistant_prefix


def token_prompt_inputs(
    tokenizer: Any,
    prompts: Sequence[ChatPrompt],
    *,
    reserve: int = 0,
    context_length: int | None = None,
    add_special_tokens: bool | None = None,
    model_id: str = "the model",
) -> tuple[list[str], list[dict[str, Any]]]:
    """Rendered texts and vLLM token inputs (``{"prompt_token_ids": [...]}``) of ``prompts``, with the
    special-token policy applied (``add_special_tokens`` is the backend default) and the context checked."""
    texts, inputs = [], []
    for n, p in enumerate(prompts):
        if not isinstance(p, ChatPrompt):
            raise ConfigError(f"prompt {n} is a {type(p).__name__}, expected a ChatPrompt")
        if p.token_ids is not None:  # pre-tokenised (a model recipe's token-level format): used as is
            text, ids = "", [int(i) for i in p.token_ids]
        else:
            text = render_prompt(tokenizer, p)
            special = adds_special_tokens(p, add_special_tokens)
            ids = [int(i) for i in tokenizer(text, add_special_tokens=special)["input_ids"]]
        if context_length is not None and len(ids) + reserve > context_length:
            raise ConfigError(
                f"prompt {n} has {len(ids)} tokens plus {reserve} new, more than the {context_length}-token context "
                f"of {model_id}; shorten the passages or use a smaller window"
            )
        texts.append(text)
        inputs.append({"prompt_token_ids": ids})
    return texts, inputs


def sampling_kwargs(request: GenerationRequest, *, logprobs: int | None = None) -> dict[str, Any]:
    """Keyword arguments of ``vllm.SamplingParams`` for one :class:`GenerationRequest` (greedy when its
    temperature is 0, the seed only when sampling; ``logprobs``: top log-probabilities to return)."""
    kwargs: dict[str, Any] = {
        "n": 1,
        "max_tokens": request.max_new_tokens,
        "temperature": request.temperature,
        "top_p": 1.0,
        "repetition_penalty": 1.0,
        "stop": list(request.stop),
    }
    if request.sampled and request.seed is not None:
        kwargs["seed"] = request.seed
    if logprobs is not None:
        kwargs["logprobs"] = int(logprobs)
    return kwargs


def generation_from_output(request_output: Any) -> Generation:
    """A :class:`Generation` from one ``vllm.RequestOutput``."""
    outputs = getattr(request_output, "outputs", None)
    if not outputs:
        raise BackendError("vLLM returned a request output without completions")
    out = outputs[0]
    reason = getattr(out, "finish_reason", None)
    if reason not in ("stop", "length"):
        raise BackendError(f"vLLM finished a request with finish_reason={reason!r}")
    prompt_ids = getattr(request_output, "prompt_token_ids", None) or []
    return Generation(
        text=str(out.text),
        finish_reason=reason,
        prompt_tokens=len(prompt_ids),
        completion_tokens=len(getattr(out, "token_ids", None) or []),
        extra={"stop_reason": getattr(out, "stop_reason", None)},
    )


def _logprob_value(entry: Any) -> float:
    value = entry if isinstance(entry, (int, float)) else getattr(entry, "logprob", None)
    if value is None:
        raise BackendError(f"unexpected vLLM logprob entry {entry!r}")
    return float(value)


def label_logprobs_from_output(request_output: Any, label_ids: Sequence[int]) -> list[float]:
    """Log-probabilities of ``label_ids`` at the first generated position of one ``vllm.RequestOutput``
    (``-inf`` for a token outside the returned top-k)."""
    outputs = getattr(request_output, "outputs", None)
    if not outputs:
        raise BackendError("vLLM returned a request output without completions")
    positions = getattr(outputs[0], "logprobs", None)
    if not positions:
        raise BackendError("vLLM returned no logprobs; was SamplingParams(logprobs=k) set?")
    first: Mapping[int, Any] = positions[0]
    result = []
    for tid in label_ids:
        entry = first.get(tid) if hasattr(first, "get") else None
        result.append(-math.inf if entry is None else _logprob_value(entry))
    return result


class VLLMBackend(LLMBackend):
    """A causal LM served in-process by vLLM (see the module docstring).

    Args:
        model: bundled name, hub id, local folder, ``.gguf`` path or :class:`ModelRef`.
        tokenizer: tokenizer source when not the model's own.
        dtype: ``"auto"`` (vLLM's choice), ``"bfloat16"``, ``"float16"``, ``"float32"``.
        tensor_parallel_size: GPUs to shard the model over.
        gpu_memory_utilization: share of GPU memory vLLM may take; ``None`` keeps vLLM's default.
        max_model_len: context length cap; ``None`` keeps the model's.
        max_logprobs: how many top log-probabilities ``label_logprobs`` reads per prompt.
        seed: engine seed.
        llm_kwargs: any further ``vllm.LLM`` arguments.
        add_special_tokens: the special-token policy for prompts that leave theirs ``None`` (module docstring).
    """


    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef,
        *,
        tokenizer: str | None = None,
        dtype: str | None = None,
        tensor_parallel_size: int = 1,
        gpu_memory_utilization: float | None = None,
        max_model_len: int | None = None,
        max_logprobs: int = 64,
        seed: int = 0,
        trust_remote_code: bool = False,
        progress: bool = False,
        llm_kwargs: dict[str, Any] | None = None,
        add_special_tokens: bool | None = None,
    ) -> None:
        self.add_special_tokens = check_bool("add_special_tokens", add_special_tokens, optional=True)
        check_int("tensor_parallel_size", tensor_parallel_size, 1)
        check_int("max_logprobs", max_logprobs, 1)
        check_number("gpu_memory_utilization", gpu_memory_utilization, maximum=1, above=0, optional=True)
        check_int("max_model_len", max_model_len, 1, optional=True)
        check_int("seed", seed)
        check_bool("trust_remote_code", trust_remote_code)
        check_bool("progress", progress)
        check_mapping("llm_kwargs", llm_kwargs, optional=True)
        vllm = require("vllm", "vllm", purpose="the vLLM backend")
        ref = model if isinstance(model, ModelRef) else resolve_model(model)
        path, tok = ref.name_or_path, tokenizer if tokenizer is not None else ref.tokenizer
        if ref.gguf_file is not None:
            from .hf_loading import convert_gguf

            folder = convert_gguf(ref, trust_remote_code=trust_remote_code)
            path, tok = str(folder), tok if tok is not None else str(folder)
        kwargs: dict[str, Any] = {
            "model": path,
            "tokenizer": tok,
            "dtype": "auto" if dtype is None else str(dtype),
            "tensor_parallel_size": tensor_parallel_size,
            "max_logprobs": max_logprobs,
            "seed": seed,
            "trust_remote_code": trust_remote_code,
        }
        if gpu_memory_utilization is not None:
            kwargs["gpu_memory_utilization"] = gpu_memory_utilization
        if max_model_len is not None:
            kwargs["max_model_len"] = max_model_len
        kwargs.update(llm_kwargs or {})
        self._vllm = vllm
        self.ref = ref
        self.model_id = ref.bundled_name if ref.bundled_name is not None else str(ref)
        self.max_logprobs = max_logprobs
        self.progress = progress
        self.stats = BackendStats()
        try:
            self.llm = vllm.LLM(**{k: v for k, v in kwargs.items() if v is not None})
        except Exception as exc:  # vLLM raises many types (ValueError, RuntimeError, CUDA errors)
            raise BackendError(f"vLLM could not load {ref}: {exc}") from exc
        self.tokenizer = self.llm.get_tokenizer()
        self._label_tokens = LabelTokens(
            lambda text: list(self.tokenizer(text, add_special_tokens=False)["input_ids"]),
            lambda ids: str(self.tokenizer.decode(list(ids))),
        )

    @property
    def context_length(self) -> int | None:
        try:
            return int(self.llm.llm_engine.model_config.max_model_len)
        except AttributeError:
            return None

    def render(self, prompt: ChatPrompt) -> str:
        return render_prompt(self.tokenizer, prompt)

    def prompt_token_ids(self, prompt: ChatPrompt) -> list[int]:
        """The exact token ids vLLM reads for ``prompt`` (rendered, special-token policy applied)."""
        return list(token_prompt_inputs(self.tokenizer, [prompt], add_special_tokens=self.add_special_tokens)[1][0][
            "prompt_token_ids"])

    def _token_prompts(self, prompts: Sequence[ChatPrompt], reserve: int) -> tuple[list[str], list[dict[str, Any]]]:
        return token_prompt_inputs(
            self.tokenizer, prompts, reserve=reserve, context_length=self.context_length,
            add_special_tokens=self.add_special_tokens, model_id=self.model_id,
        )

    def tokenize_text(self, text: str) -> list[int]:
        return [int(i) for i in self.tokenizer(text, add_special_tokens=False)["input_ids"]]

    def detokenize(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False))

    @property
    def bos_token_id(self) -> int | None:
        bos, pad = getattr(self.tokenizer, "bos_token_id", None), getattr(self.tokenizer, "pad_token_id", None)
        return None if bos is None or bos == pad else int(bos)

    @property
    def token_counter(self) -> TokenCounter:
        """Counts come from the model's own tokenizer."""
        return "tokenizer"

    def count_tokens(self, prompt: ChatPrompt | str) -> int:
        if isinstance(prompt, str):
            return len(self.tokenizer(prompt, add_special_tokens=False)["input_ids"])
        return len(self.prompt_token_ids(prompt))

    def truncate_text(self, text: str, max_tokens: int) -> str:
        check_int("max_tokens", max_tokens, 0)
        ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
        if len(ids) <= max_tokens:
            return text
        return str(self.tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)).rstrip("\ufffd")

    def single_token(self, label: str, prompt: ChatPrompt | None = None) -> bool:
        context = self.render(ChatPrompt.of("x") if prompt is None else prompt)
        return self._label_tokens(context, label) is not None

    def _run(self, inputs: list[dict[str, Any]], params: Any) -> list[Any]:
        try:
            return list(self.llm.generate(inputs, params, use_tqdm=self.progress))
        except Exception as exc:
            raise BackendError(f"vLLM failed on a batch of {len(inputs)} prompts: {exc}") from exc

    def _generate(self, prompts: Sequence[ChatPrompt], request: GenerationRequest) -> list[Generation]:
        params = self._vllm.SamplingParams(**sampling_kwargs(request))
        if not prompts:
            return []
        _, inputs = self._token_prompts(prompts, reserve=request.max_new_tokens)
        outs = self._run(inputs, params)
        self.stats.generate_calls += 1
        self.stats.generate_prompts += len(inputs)
        gens = [generation_from_output(o) for o in outs]
        self.stats.prompt_tokens += sum(g.prompt_tokens for g in gens)
        self.stats.generated_tokens += sum(g.completion_tokens for g in gens)
        return gens

    def label_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        if not labels:
            raise ConfigError("label_logprobs needs at least one label")
        if not prompts:
            return []
        texts, inputs = self._token_prompts(prompts, reserve=1)
        label_ids = []
        for text, prompt in zip(texts, prompts):
            row = []
            for label in labels:
                if prompt.token_ids is not None:  # a pre-tokenised prompt: the label's own single token
                    alone = self.tokenize_text(label)
                    tid = alone[0] if len(alone) == 1 else None
                else:
                    tid = self._label_tokens(text, label)
                if tid is None:
                    raise ConfigError(
                        f"label {label!r} is not a single token of {self.model_id} at the answer position"
                    )
                row.append(tid)
            label_ids.append(row)
        params = self._vllm.SamplingParams(**sampling_kwargs(GenerationRequest(1), logprobs=self.max_logprobs))
        outs = self._run(inputs, params)
        self.stats.forward_calls += 1
        self.stats.forward_prompts += len(inputs)
        self.stats.prompt_tokens += sum(len(i["prompt_token_ids"]) for i in inputs)
        return [label_logprobs_from_output(o, ids) for o, ids in zip(outs, label_ids)]

    def close(self) -> None:
        self.llm = None
