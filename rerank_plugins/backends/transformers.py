"""In-process causal LM backend on transformers: hub ids, local folders and GGUF files.

Prompts
    A :class:`~rerank_plugins.backends.base.ChatPrompt` is rendered with the tokenizer's chat template
    (``apply_chat_template(messages, add_generation_prompt=True, tokenize=False)``) and its
    ``assistant_prefix`` is appended verbatim. A raw prompt (``ChatPrompt(raw=...)``) is used as is plus the
    prefix. :meth:`TransformersLLMBackend.render` shows the exact text and
    :meth:`TransformersLLMBackend.prompt_token_ids` the exact ids. ``Generation.text`` is the continuation only
    (the prefix is part of the prompt).

Special tokens (BOS)
    The text is tokenised with ``tokenizer(text, add_special_tokens=...)``, the flag chosen by
    :func:`~rerank_plugins.backends.base.adds_special_tokens`: the prompt's ``add_special_tokens`` when set,
    else this backend's ``add_special_tokens`` option, else none for a chat prompt (the template already holds
    its special tokens) and the tokenizer's for a raw prompt. ``True`` adds exactly what the tokenizer adds
    (a Llama/Mistral tokenizer: ``<s>`` in front; Qwen2: nothing), as rank_llm does when it hands rendered
    text to vLLM. A template that writes ``<s>`` itself then reads two BOS tokens: a warning says so once.

Batches
    Prompts are length-sorted and grouped under a token budget (``batch_size`` prompts, ``max_batch_tokens``
    padded tokens) by :func:`~rerank_plugins.engine.batching.run_batched`, which halves a batch on an
    out-of-memory error. Batches are left-padded, with position ids computed from the attention mask, so a
    padded prompt gets the same logits as the prompt alone.

``label_logprobs``
    One forward pass per batch (no ``generate``, no KV cache), keeping only the last position's logits
    (``logits_to_keep=1`` when the model supports it), log-softmax over the full vocabulary in float32.

Label tokens
    ``single_token`` and ``label_logprobs`` find a label's token with the rule of
    :mod:`rerank_plugins.backends.tokens`: the token the model would emit to write exactly that label after
    the prompt (the tokenizer decides between ``"yes"`` and ``" yes"``). A label that is not one token there
    makes ``label_logprobs`` raise :class:`ConfigError`.

Pre-tokenised prompts (model recipes)
    A :class:`~rerank_plugins.backends.base.ChatPrompt` with ``token_ids`` is fed as those ids (no template,
    no special tokens added); its labels are the tokens they tokenise to alone, as the reference rerankers
    read them (``tokenizer("yes")["input_ids"][0]``). :meth:`TransformersLLMBackend.label_logits` returns the
    raw last-position logits instead of log-probabilities (FlagEmbedding scores the raw ``Yes`` logit).

Context length
    A prompt longer than the model's context (``max_position_embeddings``; for ``generate`` plus
    ``max_new_tokens``) raises :class:`ConfigError`; it is never cut silently. Strategies keep prompts short
    by cutting each passage to a token budget with :meth:`TransformersLLMBackend.truncate_text`.

Accounting
    :attr:`TransformersLLMBackend.stats` counts model forward calls and prompts for ``label_logprobs`` and
    ``generate`` calls and prompts, so tests can prove e.g. that FIRST makes one forward pass per window.
"""

from __future__ import annotations

import copy
import dataclasses
import inspect
import os
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from .._optional import require
from .._warnings import caller_stacklevel
from ..engine.batching import run_batched
from ..errors import ConfigError, ModelNotFoundError
from ..refs import ModelRef, resolve_model
from ..validation import check_bool, check_int, check_mapping
from .base import ChatPrompt, Generation, GenerationRequest, LLMBackend, TokenCounter, adds_special_tokens
from .device import resolve_device, resolve_dtype
from .hf_loading import load_causal_lm
from .tokens import LabelTokens

__all__ = ["BackendStats", "TransformersLLMBackend"]


def _load_pickled_backend(ref: ModelRef, options: dict[str, Any]) -> LLMBackend:
    from .loader import load_llm_backend

    return load_llm_backend(ref, backend="transformers", **options)

_END_OF_TURN = ("<|im_end|>", "<|eot_id|>", "<end_of_turn>", "<|end|>", "<|endoftext|>", "</s>")


@dataclass
class BackendStats:
    """Work done by a backend since it was built (or since :meth:`reset`)."""

    #: model forward calls made by ``label_logprobs`` (one per batch)
    forward_calls: int = 0
    #: prompts passed through those forward calls (each prompt exactly once)
    forward_prompts: int = 0
    #: ``model.generate`` calls (one per batch) and the prompts they covered
    generate_calls: int = 0
    generate_prompts: int = 0
    #: tokens read (both paths) and generated
    prompt_tokens: int = 0
    generated_tokens: int = 0

    def reset(self) -> None:
        for f in dataclasses.fields(self):
            setattr(self, f.name, 0)

    def as_dict(self) -> dict[str, int]:
        return dataclasses.asdict(self)


class TransformersLLMBackend(LLMBackend):
    """A causal LM run in-process with transformers (see the module docstring for the exact rules).

    Args:
        model: bundled name, hub id, local folder, ``.gguf`` path or :class:`ModelRef`.
        gguf_file: GGUF file name inside ``model`` (a folder or hub repo).
        tokenizer: where to load the tokenizer from, when not from the model itself.
        device: ``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"`` or ``None`` (auto).
        dtype: ``"float32"``, ``"bfloat16"``, ``"float16"`` or ``None`` (fp32 on CPU, bf16/fp16 on CUDA).
        batch_size: most prompts per forward / generate call.
        max_batch_tokens: most padded tokens per call (``None``: no token budget).
        context_length: override the model's context length (tokens).
        cache_conversion: cache a dequantised copy of a local GGUF file (see ``hf_loading``).
        generation_kwargs: extra ``GenerationConfig`` fields (e.g. ``top_p``) for sampled generation.
        model_kwargs: extra ``from_pretrained`` arguments (e.g. ``attn_implementation``, or ``device_map="auto"``
            to spread a large model over several GPUs, in which case ``device`` is where its inputs go).
        tokenizer_kwargs: extra ``AutoTokenizer.from_pretrained`` arguments (e.g. ``token``, ``revision``).
        add_special_tokens: the special-token policy for prompts that leave theirs ``None`` (module docstring);
            ``None`` keeps the default (none for chat prompts, the tokenizer's for raw prompts).
    """

    #: backend default of the special-token policy (``None``: chat prompts none, raw prompts the tokenizer's)
    add_special_tokens: bool | None = None
    _warned_bos = False

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef,
        *,
        gguf_file: str | None = None,
        tokenizer: str | None = None,
        device: Any = None,
        dtype: Any = None,
        batch_size: int = 8,
        max_batch_tokens: int | None = 16384,
        context_length: int | None = None,
        trust_remote_code: bool = False,
        cache_conversion: bool = True,
        generation_kwargs: dict[str, Any] | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        progress: bool = False,
        add_special_tokens: bool | None = None,
    ) -> None:
        self.add_special_tokens = check_bool("add_special_tokens", add_special_tokens, optional=True)
        check_int("batch_size", batch_size, 1)
        check_int("max_batch_tokens", max_batch_tokens, 1, optional=True)
        check_int("context_length", context_length, 1, optional=True)
        for flag, value in (("trust_remote_code", trust_remote_code), ("cache_conversion", cache_conversion),
                            ("progress", progress)):
            check_bool(flag, value)
        for option, kwargs in (("generation_kwargs", generation_kwargs), ("model_kwargs", model_kwargs),
                               ("tokenizer_kwargs", tokenizer_kwargs)):
            check_mapping(option, kwargs, optional=True)
        self._torch = require("torch", "hf", purpose="the transformers LLM backend")
        ref = model if isinstance(model, ModelRef) else resolve_model(model)
        if gguf_file is not None:
            ref = dataclasses.replace(ref, gguf_file=gguf_file)
        if tokenizer is not None:
            ref = dataclasses.replace(ref, tokenizer=tokenizer)
        self.ref = ref
        # what rebuilds this backend elsewhere (pickle): the resolved reference and the options given that differ
        # from the defaults (so that load_llm_backend's cache key matches the one this backend was built under)
        given = {
            "device": device, "dtype": dtype, "batch_size": batch_size, "max_batch_tokens": max_batch_tokens,
            "context_length": context_length, "trust_remote_code": trust_remote_code,
            "cache_conversion": cache_conversion, "generation_kwargs": generation_kwargs,
            "model_kwargs": model_kwargs, "tokenizer_kwargs": tokenizer_kwargs, "progress": progress,
        }
        self._keep_settings(
            TransformersLLMBackend, given, device=device, dtype=dtype, batch_size=batch_size,
            max_batch_tokens=max_batch_tokens, progress=progress, generation_kwargs=generation_kwargs,
        )
        self.stats = BackendStats()

        loaded, tok, self.source = load_causal_lm(
            ref, dtype=self.dtype, trust_remote_code=trust_remote_code, cache_conversion=cache_conversion,
            model_kwargs=model_kwargs, tokenizer_kwargs=tokenizer_kwargs, progress=progress,
        )
        if model_kwargs and model_kwargs.get("device_map") is not None:
            # accelerate placed the layers (e.g. over several GPUs): inputs go where the embeddings are
            self.model = loaded.eval()
            self.device = loaded.device
        else:
            self.model = loaded.to(self.device).eval()
        self._set_tokenizer(tok, context_length)

    def _keep_settings(
        self, cls: type[TransformersLLMBackend], given: dict[str, Any], *, device: Any, dtype: Any, batch_size: int,
        max_batch_tokens: int | None, progress: bool, generation_kwargs: dict[str, Any] | None,
    ) -> None:
        """The settings this backend and the vision backend keep alike: ``_options``, the ``given`` options that
        differ from ``cls.__init__``'s defaults (what rebuilds the backend when unpickled), the resolved device and
        dtype, the batch bounds, the model id (of :attr:`ref`) and the lock."""
        defaults = inspect.signature(cls).parameters
        self._options: dict[str, Any] = {k: v for k, v in given.items() if v != defaults[k].default}
        self.device = resolve_device(device)
        self.dtype: Any = resolve_dtype(dtype, self.device)
        self.batch_size = batch_size
        self.max_batch_tokens = max_batch_tokens
        self.progress = progress
        self.generation_kwargs = dict(generation_kwargs or {})
        self.model_id = self.ref.bundled_name if self.ref.bundled_name is not None else str(self.ref)
        self._lock = threading.RLock()

    # ------------------------------------------------------------------------------------------ copies
    def __deepcopy__(self, memo: dict[int, Any]) -> TransformersLLMBackend:
        """A new backend object that shares this one's loaded model and tokenizer (weights are never copied).

        Its settings, lock and :attr:`stats` are its own, and closing it leaves this one working. Frameworks
        deep-copy components freely (LangChain, LlamaIndex ``model_copy(deep=True)``, Haystack pipelines);
        copying the weights too would double the memory for no benefit, as inference never changes them.
        """
        clone = self.__copy__()
        memo[id(self)] = clone
        clone._options = copy.deepcopy(clone._options, memo)
        return clone

    def __copy__(self) -> TransformersLLMBackend:
        """A new backend object sharing the loaded model and tokenizer, with its own settings, lock and stats."""
        clone = object.__new__(type(self))
        clone.__dict__.update(self.__dict__)
        clone.generation_kwargs = dict(self.generation_kwargs)
        clone._options = dict(self.__dict__.get("_options", {}))
        clone.stats = type(self.stats)()
        clone._lock = threading.RLock()
        return clone

    def __reduce__(self) -> tuple[Any, ...]:
        """Pickle as "how to load it": the :class:`ModelRef` and the options, not the torch module.

        Unpickling loads the model through :func:`~rerank_plugins.backends.loader.load_llm_backend`, so in a
        process that already holds the same model it is shared, as two rerankers built there would share it.
        """
        return (_load_pickled_backend, (self.ref, self._options))

    # ------------------------------------------------------------------------------------------ model facts
    def _find_eos_ids(self) -> list[int]:
        ids: list[int] = []
        gen_eos = getattr(getattr(self.model, "generation_config", None), "eos_token_id", None)
        for value in (gen_eos, self.tokenizer.eos_token_id):
            for i in value if isinstance(value, (list, tuple)) else [value]:
                if i is not None and int(i) not in ids:
                    ids.append(int(i))
        specials = set(getattr(self.tokenizer, "all_special_tokens", []))
        vocab = self.tokenizer.get_vocab()
        for text in _END_OF_TURN:
            if text in specials and text in vocab and vocab[text] not in ids:
                ids.append(int(vocab[text]))
        if not ids:
            raise ModelNotFoundError(f"{self.ref} defines no end-of-sequence token; generation could not stop")
        return ids

    def _set_tokenizer(self, tok: Any, context_length: int | None) -> None:
        """The set-up both in-process backends share once model and tokenizer are loaded (the vision backend too):
        left padding, a pad token (the EOS token when the tokenizer has none), label tokens, EOS ids, which
        forward arguments the model takes and its context length."""
        self.tokenizer = tok
        tok.padding_side = "left"
        self._tokenizer_pad_id = tok.pad_token_id  # before the EOS fallback below: what the tokenizer itself has
        if tok.pad_token_id is None:
            if tok.eos_token is None:
                raise ModelNotFoundError(f"the tokenizer of {self.ref} has neither a pad nor an EOS token")
            tok.pad_token = tok.eos_token
        self._pad_id = int(tok.pad_token_id)
        self._label_tokens = LabelTokens(self._encode, lambda ids: str(tok.decode(list(ids))))
        self._eos_ids = self._find_eos_ids()
        params = inspect.signature(self.model.forward).parameters
        self._forward_params = frozenset(params)
        self._keep_arg = next((a for a in ("logits_to_keep", "num_logits_to_keep") if a in params), None)
        self._position_ids = "position_ids" in params
        self._context_length = context_length if context_length is not None else self._config_context_length()

    def _config_context_length(self) -> int | None:
        cfg = self.model.config
        for attr in ("max_position_embeddings", "n_positions", "max_sequence_length", "seq_length"):
            value = getattr(cfg, attr, None)
            if isinstance(value, int) and value > 0:
                return value
        return None

    @property
    def context_length(self) -> int | None:
        return self._context_length

    # ------------------------------------------------------------------------------------------ text
    def render(self, prompt: ChatPrompt) -> str:
        """The exact prompt text the model reads (chat template applied, assistant prefix appended)."""
        if prompt.token_ids is not None:
            return self.detokenize(prompt.token_ids)
        if prompt.raw is not None:
            return prompt.raw + prompt.assistant_prefix
        if not prompt.messages:
            raise ConfigError("a ChatPrompt needs messages or raw text")
        if getattr(self.tokenizer, "chat_template", None) is None:
            raise ConfigError(
                f"{self.model_id} has no chat template; build prompts with ChatPrompt(raw=...) for this model"
            )
        text = self.tokenizer.apply_chat_template(
            [dict(m) for m in prompt.messages], add_generation_prompt=True, tokenize=False
        )
        return str(text) + prompt.assistant_prefix

    def _encode(self, text: str, special: bool = False) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=special)["input_ids"])

    def special_tokens_for(self, prompt: ChatPrompt) -> bool:
        """Whether ``prompt`` is tokenised with the tokenizer's special tokens (see the module docstring)."""
        return adds_special_tokens(prompt, self.add_special_tokens)

    def prompt_token_ids(self, prompt: ChatPrompt) -> list[int]:
        """The exact token ids the model reads for ``prompt`` (rendered, special-token policy applied)."""
        if prompt.token_ids is not None:
            return [int(t) for t in prompt.token_ids]
        return self._encode_prompt(self.render(prompt), prompt)

    def _encode_prompt(self, text: str, prompt: ChatPrompt) -> list[int]:
        special = self.special_tokens_for(prompt)
        ids = self._encode(text, special=special)
        bos = getattr(self.tokenizer, "bos_token_id", None)
        if special and bos is not None and len(ids) > 1 and ids[0] == ids[1] == bos and not self._warned_bos:
            self._warned_bos = True
            warnings.warn(
                f"{self.model_id}: the prompt text already starts with the BOS token and add_special_tokens=True "
                "adds another, so the model reads two; set add_special_tokens=False for this template",
                UserWarning, stacklevel=caller_stacklevel(),
            )
        return ids

    def _encode_prompts(self, prompts: Sequence[ChatPrompt], reserve: int) -> tuple[list[str], list[list[int]]]:
        texts: list[str] = []
        ids: list[list[int]] = []
        for n, p in enumerate(prompts):
            if not isinstance(p, ChatPrompt):
                raise ConfigError(f"prompt {n} is a {type(p).__name__}, expected a ChatPrompt")
            if p.token_ids is not None:
                if p.assistant_prefix:
                    raise ConfigError(f"prompt {n} is pre-tokenised (token_ids) and cannot take an assistant_prefix")
                text, enc = "", [int(t) for t in p.token_ids]
            else:
                text = self.render(p)
                enc = self._encode_prompt(text, p)
            if not enc:
                raise ConfigError(f"prompt {n} is empty after tokenisation")
            limit = self._context_length
            if limit is not None and len(enc) + reserve > limit:
                extra = f" plus {reserve} new tokens" if reserve else ""
                raise ConfigError(
                    f"prompt {n} has {len(enc)} tokens{extra}, more than the {limit}-token context of "
                    f"{self.model_id}; shorten the passages (backend.truncate_text) or use a smaller window"
                )
            texts.append(text)
            ids.append(enc)
        return texts, ids

    @property
    def token_counter(self) -> TokenCounter:
        """Counts come from the model's own tokenizer."""
        return "tokenizer"

    def count_tokens(self, prompt: ChatPrompt | str) -> int:
        """Exact token count of a prompt (rendered) or of a plain text fragment."""
        if isinstance(prompt, str):
            return len(self._encode(prompt))
        if prompt.token_ids is not None:
            return len(prompt.token_ids)
        return len(self._encode_prompt(self.render(prompt), prompt))

    def truncate_text(self, text: str, max_tokens: int) -> str:
        """``text`` cut to its first ``max_tokens`` tokens (unchanged when it is that short)."""
        check_int("max_tokens", max_tokens, 0)
        ids = self._encode(text)
        if len(ids) <= max_tokens:
            return text
        return str(self.tokenizer.decode(ids[:max_tokens], skip_special_tokens=True)).rstrip("\ufffd")

    def tokenize_text(self, text: str) -> list[int]:
        """Token ids of ``text``, no special tokens added."""
        return self._encode(text)

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of ``ids`` with special tokens spelled out (``<|im_end|>``, ``<bos>``)."""
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=False, clean_up_tokenization_spaces=False))

    @property
    def bos_token_id(self) -> int | None:
        """The tokenizer's BOS id when it has one distinct from the padding id (FlagEmbedding's test)."""
        bos = self.tokenizer.bos_token_id
        if bos is None or bos == self._tokenizer_pad_id:
            return None
        return int(bos)

    # ------------------------------------------------------------------------------------------ label tokens
    def label_token_id(self, context: str, label: str) -> int | None:
        """Token id of ``label`` written right after ``context`` (see :mod:`.tokens`), or None."""
        return self._label_tokens(context, label)

    def _probe_context(self) -> str:
        if getattr(self.tokenizer, "chat_template", None) is None:
            return "x\n"
        return self.render(ChatPrompt.of("x"))

    def single_token(self, label: str, prompt: ChatPrompt | None = None) -> bool:
        """True when ``label`` is one token where the answer starts: after the generation prompt of a probe
        chat, or after ``prompt`` (rendered, with its assistant prefix) when given."""
        context = self._probe_context() if prompt is None else self.render(prompt)
        return self.label_token_id(context, label) is not None

    # ------------------------------------------------------------------------------------------ forward
    def _pad(self, batch: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        torch = self._torch
        width = max(len(ids) for ids in batch)
        input_ids = torch.full((len(batch), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(batch), width), dtype=torch.long)
        for row, ids in enumerate(batch):
            input_ids[row, width - len(ids) :] = torch.tensor(list(ids), dtype=torch.long)
            mask[row, width - len(ids) :] = 1
        return input_ids.to(self.device), mask.to(self.device)

    def last_logprobs(self, batch: Sequence[Sequence[int]]) -> Any:
        """One forward pass over left-padded token id lists; float32 log-softmax of the last position, [B, V]."""
        return self._torch.log_softmax(self.last_logits(batch), dim=-1)

    def last_logits(self, batch: Sequence[Sequence[int]]) -> Any:
        """One forward pass over left-padded token id lists; float32 raw logits of the last position, [B, V]."""
        torch = self._torch
        input_ids, mask = self._pad(batch)
        kwargs: dict[str, Any] = {"input_ids": input_ids, "attention_mask": mask, "use_cache": False}
        if self._position_ids:
            kwargs["position_ids"] = (mask.cumsum(-1) - 1).clamp(min=0)
        if self._keep_arg is not None:
            kwargs[self._keep_arg] = 1
        with torch.inference_mode():
            out = self.model(**kwargs)
        self.stats.forward_calls += 1
        self.stats.forward_prompts += len(batch)
        self.stats.prompt_tokens += sum(len(ids) for ids in batch)
        return out.logits[:, -1, :].float()

    def label_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        return self._label_values(prompts, labels, self.last_logprobs, "label logprobs")

    def label_logits(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        """Raw last-position logits of each label's token (same token rule as :meth:`label_logprobs`)."""
        return self._label_values(prompts, labels, self.last_logits, "label logits")

    def _label_values(
        self, prompts: Sequence[ChatPrompt], labels: Sequence[str], forward: Callable[[Any], Any], desc: str
    ) -> list[list[float]]:
        if not labels:
            raise ConfigError("label_logprobs needs at least one label")
        if not prompts:
            return []
        with self._lock:
            texts, ids = self._encode_prompts(prompts, reserve=0)
            pretokenised = [p.token_ids is not None for p in prompts]
            return self._label_rows(
                [len(x) for x in ids], self._label_ids(texts, labels, pretokenised),
                lambda idx: forward([ids[i] for i in idx]), desc=desc,
            )

    def _alone_token(self, label: str) -> int | None:
        ids = self._encode(label)
        return int(ids[0]) if len(ids) == 1 else None

    def _label_ids(
        self, texts: Sequence[str], labels: Sequence[str], pretokenised: Sequence[bool] | None = None
    ) -> list[list[int]]:
        """Per rendered prompt, the token id of each label at its answer position (ConfigError if not one token);
        for a pre-tokenised prompt, the token the label tokenises to alone."""
        label_ids: list[list[int]] = []
        for n, text in enumerate(texts):
            row: list[int] = []
            alone = pretokenised is not None and pretokenised[n]
            for label in labels:
                tid = self._alone_token(label) if alone else self.label_token_id(text, label)
                if tid is None:
                    raise ConfigError(
                        f"label {label!r} is not a single token of {self.model_id} at the answer position; "
                        "choose labels for which backend.single_token(label) is True"
                    )
                row.append(tid)
            label_ids.append(row)
        return label_ids

    def _label_rows(
        self,
        lengths: Sequence[int],
        label_ids: Sequence[Sequence[int]],
        logprobs_of: Callable[[list[int]], Any],
        *,
        desc: str,
    ) -> list[list[float]]:
        """The batched run loop of ``label_logprobs``: ``logprobs_of(idx)`` returns the [B, V] last-position
        log-probabilities of prompts ``idx``; each row keeps its labels' values."""

        def run(idx: list[int]) -> list[list[float]]:
            logp = logprobs_of(idx)
            index = self._torch.tensor([label_ids[i] for i in idx], device=logp.device)
            picked = logp.gather(1, index).cpu().tolist()
            return [[float(v) for v in r] for r in picked]

        return run_batched(
            list(lengths), run, max_batch_size=self.batch_size, max_tokens=self.max_batch_tokens,
            progress=self.progress, desc=desc,
        )

    # ------------------------------------------------------------------------------------------ generate
    def _generation_config(self, request: GenerationRequest) -> Any:
        """The ``GenerationConfig`` of one :class:`GenerationRequest`: greedy at temperature 0, else sampled over
        the full vocabulary (``top_k=0``, ``top_p=1``) with ``generation_kwargs`` on top; ``stop_strings`` from
        ``request.stop``; the model's shipped generation defaults neutralised."""
        transformers = require("transformers", "hf")
        fields: dict[str, Any] = {
            "max_new_tokens": request.max_new_tokens,
            "do_sample": request.sampled,
            "num_beams": 1,
            "use_cache": True,
            "eos_token_id": list(self._eos_ids),
            "pad_token_id": self._eos_ids[0],
            # neutral values, so a model's shipped generation defaults (e.g. a repetition penalty) never apply
            "repetition_penalty": 1.0,
            "no_repeat_ngram_size": 0,
        }
        if request.stop:
            fields["stop_strings"] = list(request.stop)
        if request.sampled:
            fields.update(temperature=request.temperature, top_k=0, top_p=1.0)
            fields.update(self.generation_kwargs)
        return transformers.GenerationConfig(**fields)

    def _finish(self, tokens: list[int], stop: Sequence[str]) -> Generation:
        eos = set(self._eos_ids)
        cut = next((k for k, t in enumerate(tokens) if t in eos), None)
        kept = tokens if cut is None else tokens[:cut]
        text = str(self.tokenizer.decode(kept, skip_special_tokens=True))
        # A row without EOS and without a stop string ran to max_new_tokens: generate ends a row early only
        # through those two (finished rows are padded with EOS).
        reason: Literal["stop", "length"] = "stop" if cut is not None else "length"
        hits = [text.find(s) for s in stop if s and s in text]
        if hits:
            text, reason = text[: min(hits)], "stop"
        return Generation(text=text, finish_reason=reason, completion_tokens=len(kept))

    def _add_model_seconds(self, seconds: float) -> None:
        """Hook for backends whose stats time the model (the vision backend); the text backend does not."""

    def _generate_rows(
        self,
        lengths: Sequence[int],
        inputs_of: Callable[[list[int]], dict[str, Any]],
        request: GenerationRequest,
        *,
        desc: str,
    ) -> list[Generation]:
        """The batched run loop of ``generate``: ``inputs_of(idx)`` returns the model inputs of prompts ``idx``
        (left-padded ``input_ids`` first); ``lengths[i]`` is prompt ``i``'s token count."""
        config = self._generation_config(request)
        torch = self._torch

        def run(idx: list[int]) -> list[Generation]:
            inputs = inputs_of(idx)
            kwargs: dict[str, Any] = {**inputs, "generation_config": config}
            if request.stop:
                kwargs["tokenizer"] = self.tokenizer  # the stop strings are in the generation config
            devices = []
            if self.device.type == "cuda":
                index = self.device.index
                devices = [index if index is not None else torch.cuda.current_device()]
            start = time.perf_counter()
            with torch.inference_mode(), torch.random.fork_rng(devices=devices):
                if request.sampled and request.seed is not None:
                    torch.manual_seed(request.seed)
                out = self.model.generate(**kwargs)
            self._add_model_seconds(time.perf_counter() - start)
            self.stats.generate_calls += 1
            self.stats.generate_prompts += len(idx)
            new = out[:, inputs["input_ids"].shape[1] :].cpu().tolist()
            gens = []
            for i, tokens in zip(idx, new):
                g = self._finish(tokens, request.stop)
                gens.append(dataclasses.replace(g, prompt_tokens=lengths[i]))
                self.stats.prompt_tokens += lengths[i]
                self.stats.generated_tokens += g.completion_tokens
            return gens

        return run_batched(
            list(lengths), run, max_batch_size=self.batch_size, max_tokens=self.max_batch_tokens,
            progress=self.progress, desc=desc,
        )

    def _generate(self, prompts: Sequence[ChatPrompt], request: GenerationRequest) -> list[Generation]:
        if not prompts:
            return []
        with self._lock:
            _, ids = self._encode_prompts(prompts, reserve=request.max_new_tokens)

            def inputs_of(idx: list[int]) -> dict[str, Any]:
                input_ids, mask = self._pad([ids[i] for i in idx])
                return {"input_ids": input_ids, "attention_mask": mask}

            return self._generate_rows([len(x) for x in ids], inputs_of, request, desc="generate")

    def close(self) -> None:
        with self._lock:
            self.model = None
            if self.device.type == "cuda":
                self._torch.cuda.empty_cache()

    def __repr__(self) -> str:
        return f"TransformersLLMBackend({self.model_id!r}, device={self.device}, dtype={self.dtype})"
