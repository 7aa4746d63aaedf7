"""The language-model backend contract that every LLM strategy is written against.

A strategy (listwise, FIRST, reasoning, pointwise yes/no or graded, pairwise) builds :class:`ChatPrompt`
objects and asks a backend for one of two things:

* :meth:`LLMBackend.generate` - greedy (or seeded sampled) continuations, with the reason generation stopped,
  so a truncated answer is visible as ``finish_reason == "length"``;
* :meth:`LLMBackend.label_logprobs` - one forward pass per prompt, returning the log-probability of each
  given label string as the *first generated token* (FIRST ranking, yes/no, graded 0..10, pairwise A/B).
  Labels must each be a single token for the backend; :meth:`LLMBackend.single_token` tells which are.

Backends: in-process transformers (incl. GGUF), vLLM, and any OpenAI-compatible HTTP server. Scripted fakes
implement the same contract for tests.

One generation contract
    :meth:`LLMBackend.generate` and :meth:`LLMBackend.agenerate` are written once, here: they check and normalise
    their arguments into a frozen :class:`GenerationRequest` (``max_new_tokens`` an int >= 1, ``temperature`` a
    finite float >= 0, ``seed`` an int or ``None``, ``stop`` a tuple of non-empty strings: a ``str`` is ONE stop
    sequence, ``stop="\\n\\n"`` stops at a blank line) and hand that same request to the backend's
    :meth:`LLMBackend._generate` (and ``_agenerate``, which runs ``_generate`` in a worker thread unless the
    backend is natively async). A backend implements those hooks and never sees the raw arguments, so the
    transformers, vLLM, OpenAI-compatible and scripted backends read the same call; bad arguments raise
    :class:`~rerank_plugins.errors.ConfigError` before any work.

Token counts
    :meth:`LLMBackend.count_tokens` counts with the backend's tokenizer where it has one (transformers, vLLM,
    an OpenAI-compatible backend given ``tokenizer=``), else with the server's tokenize endpoint (an
    OpenAI-compatible server that has one), else estimates characters / 4 (the base class).
    :attr:`LLMBackend.token_counter` says which: ``"tokenizer"``, ``"server"`` or ``"estimate"``; strategies that
    fit prompts to a budget report it in their details.
"""

from __future__ import annotations

import asyncio
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, final

from ..errors import ConfigError
from ..types import ChatPrompt, Message  # value objects, one layer down: prompts/ builds them too
from ..validation import check_int, check_number, check_stop

__all__ = [
    "ChatPrompt", "Generation", "GenerationRequest", "LLMBackend", "Message", "TokenCounter", "adds_special_tokens",
]

#: where a backend's token counts come from (:attr:`LLMBackend.token_counter`)
TokenCounter = Literal["tokenizer", "server", "estimate"]


def adds_special_tokens(prompt: ChatPrompt, default: bool | None = None) -> bool:
    """Whether ``prompt`` is tokenised with the tokenizer's special tokens (BOS): the prompt's own
    ``add_special_tokens`` when set, else the backend's ``default`` when set, else ``True`` for a raw prompt and
    ``False`` for a chat prompt (the behaviour before the policy existed)."""
    if prompt.add_special_tokens is not None:
        return bool(prompt.add_special_tokens)
    if default is not None:
        return bool(default)
    return prompt.raw is not None


@dataclass(frozen=True)
class Generation:
    """One generated continuation. ``finish_reason`` is ``"stop"`` (EOS or a stop string) or ``"length"``."""

    text: str
    finish_reason: Literal["stop", "length"]
    prompt_tokens: int = 0
    completion_tokens: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class GenerationRequest:
    """The settings of one :meth:`LLMBackend.generate` call, checked and normalised (see the module docstring).

    Building one checks it: ``max_new_tokens`` an int >= 1, ``temperature`` a finite number >= 0 (stored as a
    float; ``0`` is greedy), ``seed`` an int or ``None`` (used when sampling), ``stop`` normalised by
    :func:`~rerank_plugins.validation.check_stop` (a ``str`` is one stop sequence). Bad values raise
    :class:`~rerank_plugins.errors.ConfigError`.
    """

    max_new_tokens: int
    temperature: float = 0.0
    seed: int | None = None
    stop: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        check_int("max_new_tokens", self.max_new_tokens, 1)
        check_number("temperature", self.temperature, 0, finite=True)
        check_int("seed", self.seed, optional=True)
        object.__setattr__(self, "temperature", float(self.temperature))
        object.__setattr__(self, "stop", check_stop("stop", self.stop))

    @classmethod
    def of(
        cls, *, max_new_tokens: int, temperature: float = 0.0, seed: int | None = None,
        stop: str | Sequence[str] | None = (),
    ) -> GenerationRequest:
        """The request of ``generate(..., max_new_tokens=, temperature=, seed=, stop=)`` (``stop`` a str or a list)."""
        return cls(max_new_tokens, temperature, seed, check_stop("stop", stop))

    @property
    def sampled(self) -> bool:
        """True when the call samples (``temperature > 0``); ``seed`` applies only then."""
        return self.temperature > 0


class LLMBackend(ABC):
    """A causal language model as strategies see it. Implementations must be safe to call from one thread
    at a time; the async forms run the sync ones in a worker thread unless a backend is natively async."""

    #: identifies the model for caches and result metadata
    model_id: str = "llm"

    @final
    def generate(
        self,
        prompts: Sequence[ChatPrompt],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: str | Sequence[str] | None = (),
    ) -> list[Generation]:
        """Continue each prompt. ``temperature == 0`` is greedy and deterministic; ``seed`` makes sampling
        reproducible; ``stop`` is one stop string or a list of them (the text is cut before the first one found,
        ``finish_reason="stop"``). The arguments are checked and normalised once into a
        :class:`GenerationRequest` and passed to :meth:`_generate` (:class:`ConfigError` when one is bad)."""
        request = GenerationRequest.of(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, stop=stop)
        return self._generate(list(prompts), request)

    @abstractmethod
    def _generate(self, prompts: Sequence[ChatPrompt], request: GenerationRequest) -> list[Generation]:
        """The backend's generation: continue each prompt as ``request`` says (already checked and normalised)."""

    @abstractmethod
    def label_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        """For each prompt, the log-probability (log-softmax over the full vocabulary) that the first generated
        token is each label, in the order of ``labels``. One forward pass per prompt, no generation.
        A label the backend cannot see (e.g. outside a server's top-k) gets ``float('-inf')``."""

    @abstractmethod
    def single_token(self, label: str) -> bool:
        """True when ``label`` is exactly one token where the answer starts (after the generation prompt)."""

    def tokenize_text(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens added (token-level prompt formats need this)."""
        raise ConfigError(
            f"{type(self).__name__} has no tokenizer; token-level prompt formats (model recipes) need a backend "
            "that can tokenise text (transformers, vLLM, or an OpenAI-compatible server with a tokenize endpoint)"
        )

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of token ids, special tokens spelled out (used to send a token-level prompt as text)."""
        raise ConfigError(f"{type(self).__name__} cannot turn token ids back into text")

    @property
    def bos_token_id(self) -> int | None:
        """The tokenizer's beginning-of-sequence token, when it has one distinct from its padding token."""
        return None

    def label_logits(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        """Like :meth:`label_logprobs` but the raw last-position logits (before any softmax) of each label's
        token; for score formulas defined on raw logits (FlagEmbedding's ``FlagLLMReranker``)."""
        raise ConfigError(
            f"{type(self).__name__} returns log-probabilities only; a score on raw logits (score='logit' or "
            "'sigmoid') needs a backend that runs the model itself (transformers)"
        )

    @property
    def token_counter(self) -> TokenCounter:
        """Where :meth:`count_tokens` gets its counts: ``"tokenizer"``, ``"server"`` or ``"estimate"``."""
        return "estimate"

    def count_tokens(self, prompt: ChatPrompt | str) -> int:
        """Token count of a prompt (as the model reads it) or of a text fragment, used for batching and context
        checks; here an estimate, characters / 4 (:attr:`token_counter` ``"estimate"``)."""
        if not isinstance(prompt, str) and prompt.token_ids is not None:
            return len(prompt.token_ids)
        text = prompt if isinstance(prompt, str) else (
            prompt.raw or " ".join(str(m["content"]) for m in prompt.messages)
        )
        return max(1, len(text) // 4)

    @property
    def context_length(self) -> int | None:
        """Maximum tokens of prompt plus output, when known."""
        return None

    @final
    async def agenerate(
        self,
        prompts: Sequence[ChatPrompt],
        *,
        max_new_tokens: int,
        temperature: float = 0.0,
        seed: int | None = None,
        stop: str | Sequence[str] | None = (),
    ) -> list[Generation]:
        """Async :meth:`generate`: the same checks and :class:`GenerationRequest`, passed to :meth:`_agenerate`."""
        request = GenerationRequest.of(max_new_tokens=max_new_tokens, temperature=temperature, seed=seed, stop=stop)
        return await self._agenerate(list(prompts), request)

    async def _agenerate(self, prompts: Sequence[ChatPrompt], request: GenerationRequest) -> list[Generation]:
        """The async hook: :meth:`_generate` in a worker thread unless a backend is natively async."""
        return await asyncio.to_thread(self._generate, prompts, request)

    async def alabel_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        return await asyncio.to_thread(self.label_logprobs, prompts, labels)

    def close(self) -> None:  # noqa: B027 - an optional hook: backends without resources keep this no-op
        """Release the model or connections."""
