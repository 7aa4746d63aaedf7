"""A scripted, deterministic :class:`~rerank_plugins.backends.base.LLMBackend` for tests.

:class:`ScriptedLLM` emits exactly the text and log-probabilities a test chooses and records every call, so a
test can assert how a strategy used the model ("one ``label_logprobs`` call per window, zero ``generate``
calls"), and drive the failure paths (garbage, truncation, empty answers) that real models produce rarely.

Scripting ``generate``
    ``outputs`` is either one callable used for every prompt, or a sequence consumed one item per prompt
    (across calls, in order). An item is a ``str``, a :class:`Generation` (returned as is), or a callable
    ``f(prompt_text) -> str | Generation`` where ``prompt_text`` is :func:`render_prompt` of the prompt.
    A ``str`` longer than ``max_new_tokens`` fake tokens is cut there with ``finish_reason="length"``, and a
    stop string cuts it with ``finish_reason="stop"``, as a real backend does.

Scripting ``label_logprobs``
    ``logprobs`` is a callable ``f(prompt_text, labels) -> sequence of floats`` (one per label), or a mapping
    ``label -> logprob`` (labels not in it get ``-inf``), or a sequence of those consumed one per prompt.

Single tokens
    ``single_tokens`` is a collection of the labels that are one token, or a predicate. By default a label is
    one token when the fake tokenizer (:func:`fake_tokenize`: an optional run of spaces followed by a word
    or one punctuation character) splits it into exactly one piece, so ``"A"``, ``" yes"``, ``"10"`` are
    single tokens and ``"[1]"`` is not.

Accounting
    :attr:`ScriptedLLM.calls` lists every call (:class:`LLMCall`). :attr:`ScriptedLLM.forward_passes` counts
    model forward passes as a KV-cached decoder would: one per prompt for ``label_logprobs``, and one per
    generated token (at least one) per prompt for ``generate``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from ..backends.base import ChatPrompt, Generation, GenerationRequest, LLMBackend, TokenCounter

__all__ = ["LLMCall", "ScriptedLLM", "fake_tokenize", "render_prompt"]

GenerateItem = str | Generation | Callable[[str], str | Generation]
LogprobItem = Mapping[str, float] | Callable[[str, Sequence[str]], Sequence[float]]

_TOKEN = re.compile(r"\s*(?:\w+|[^\w\s])|\s+", re.UNICODE)


def fake_tokenize(text: str) -> list[str]:
    """Split ``text`` into fake tokens: leading spaces glued to the next word or punctuation character."""
    return _TOKEN.findall(text)


def render_prompt(prompt: ChatPrompt) -> str:
    """The text a scripted callable sees: ``raw`` if set, else ``role: content`` lines, then the prefix."""
    if prompt.raw is not None:
        return prompt.raw + prompt.assistant_prefix
    lines = [f"{m['role']}: {m['content']}" for m in prompt.messages]
    return "\n".join(lines) + "\nassistant: " + prompt.assistant_prefix


@dataclass(frozen=True)
class LLMCall:
    """One recorded backend call."""

    kind: Literal["generate", "label_logprobs"]
    prompts: tuple[ChatPrompt, ...]
    texts: tuple[str, ...]
    labels: tuple[str, ...] = ()
    max_new_tokens: int | None = None
    temperature: float | None = None
    seed: int | None = None
    stop: tuple[str, ...] = ()
    outputs: tuple[Any, ...] = field(default=())
    #: the normalised request a ``generate`` call received (the same object every backend receives)
    request: GenerationRequest | None = None


class ScriptedLLM(LLMBackend):
    """A fake LLM backend that returns scripted outputs and records how it was called (see module docstring)."""

    def __init__(
        self,
        outputs: Sequence[GenerateItem] | Callable[[str], str | Generation] | None = None,
        *,
        logprobs: LogprobItem | Sequence[LogprobItem] | None = None,
        single_tokens: Collection[str] | Callable[[str], bool] | None = None,
        model_id: str = "scripted-llm",
        context_length: int | None = None,
    ) -> None:
        self.model_id = model_id
        self._outputs = outputs
        self._next_output = 0
        self._logprobs = logprobs
        self._next_logprob = 0
        self._single_tokens = single_tokens
        self._context_length = context_length
        self.calls: list[LLMCall] = []
        self.forward_passes = 0
        self.closed = False

    # ------------------------------------------------------------------ accounting helpers
    @property
    def generate_calls(self) -> list[LLMCall]:
        return [c for c in self.calls if c.kind == "generate"]

    @property
    def logprob_calls(self) -> list[LLMCall]:
        return [c for c in self.calls if c.kind == "label_logprobs"]

    @property
    def prompts_seen(self) -> list[str]:
        """Rendered text of every prompt, in call order."""
        return [t for c in self.calls for t in c.texts]

    def reset(self) -> None:
        """Forget recorded calls (scripts already consumed stay consumed)."""
        self.calls.clear()
        self.forward_passes = 0

    # ------------------------------------------------------------------ LLMBackend
    @property
    def context_length(self) -> int | None:
        return self._context_length

    @property
    def token_counter(self) -> TokenCounter:
        """Counts come from the fake tokenizer (:func:`fake_tokenize`)."""
        return "tokenizer"

    def count_tokens(self, prompt: ChatPrompt | str) -> int:
        text = prompt if isinstance(prompt, str) else render_prompt(prompt)
        return max(1, len(fake_tokenize(text)))

    def single_token(self, label: str) -> bool:
        if self._single_tokens is None:
            return len(fake_tokenize(label)) == 1
        if callable(self._single_tokens):
            return bool(self._single_tokens(label))
        return label in self._single_tokens

    def _generate(self, prompts: Sequence[ChatPrompt], request: GenerationRequest) -> list[Generation]:
        texts = tuple(render_prompt(p) for p in prompts)
        results = [self._generate_one(text, request.max_new_tokens, request.stop) for text in texts]
        for g in results:
            self.forward_passes += max(1, g.completion_tokens)
        self.calls.append(
            LLMCall(
                "generate", tuple(prompts), texts, (), request.max_new_tokens, request.temperature, request.seed,
                request.stop, tuple(results), request,
            )
        )
        return results

    def label_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        texts = tuple(render_prompt(p) for p in prompts)
        labels = tuple(labels)
        results = [self._logprobs_one(text, labels) for text in texts]
        self.forward_passes += len(prompts)
        self.calls.append(LLMCall("label_logprobs", tuple(prompts), texts, labels, outputs=tuple(results)))
        return results

    def close(self) -> None:
        self.closed = True

    # ------------------------------------------------------------------ scripting
    def _take_output(self, text: str) -> str | Generation:
        script = self._outputs
        if script is None:
            raise AssertionError("ScriptedLLM.generate was called but no outputs were scripted")
        if callable(script):
            return script(text)
        if self._next_output >= len(script):
            raise AssertionError(
                f"ScriptedLLM ran out of scripted outputs after {len(script)} generations; prompt was:\n{text}"
            )
        item = script[self._next_output]
        self._next_output += 1
        return item(text) if callable(item) else item

    def _generate_one(self, text: str, max_new_tokens: int, stop: Sequence[str]) -> Generation:
        out = self._take_output(text)
        if isinstance(out, Generation):
            return out
        if not isinstance(out, str):
            raise TypeError(f"scripted output must be a str or Generation, got {type(out).__name__}")
        tokens = fake_tokenize(out)
        finish: Literal["stop", "length"] = "stop"
        if len(tokens) > max_new_tokens:
            tokens, finish = tokens[:max_new_tokens], "length"
        produced = "".join(tokens)
        cut = [produced.find(s) for s in stop if s and s in produced]
        if cut:
            produced, finish = produced[: min(cut)], "stop"
            tokens = fake_tokenize(produced)
        return Generation(
            text=produced,
            finish_reason=finish,
            prompt_tokens=len(fake_tokenize(text)),
            completion_tokens=len(tokens),
        )

    def _logprobs_one(self, text: str, labels: tuple[str, ...]) -> list[float]:
        script = self._logprobs
        if script is None:
            raise AssertionError("ScriptedLLM.label_logprobs was called but no logprobs were scripted")
        item: LogprobItem
        if callable(script) or isinstance(script, Mapping):
            item = script
        else:
            if self._next_logprob >= len(script):
                raise AssertionError(f"ScriptedLLM ran out of scripted logprobs after {len(script)} prompts")
            item = script[self._next_logprob]
            self._next_logprob += 1
        if isinstance(item, Mapping):
            return [float(item.get(label, float("-inf"))) for label in labels]
        values = [float(v) for v in item(text, labels)]
        if len(values) != len(labels):
            raise AssertionError(f"scripted logprobs returned {len(values)} values for {len(labels)} labels")
        return values
