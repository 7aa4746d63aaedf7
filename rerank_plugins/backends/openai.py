"""An :class:`~rerank_plugins.backends.base.LLMBackend` for any OpenAI-compatible HTTP server.

Works with vLLM (``vllm serve``), SGLang (``python -m sglang.launch_server``), the llama.cpp servers (the C++
``llama-server`` and llama-cpp-python's ``python -m llama_cpp.server``) and OpenAI itself. Install the extra:
``pip install 'rerank-plugins[openai]'``.

How a :class:`ChatPrompt` becomes a request
    * ``raw`` prompts always go to ``/v1/completions`` (``prompt = raw + assistant_prefix``).
    * ``endpoint="completions"``: messages are rendered client side with the model's chat template
      (``chat_template=``: Jinja text or a GGUF / tokenizer path, see :mod:`.chat_template`), exactly as
      transformers renders them, and the assistant prefix appended: the server sees the same text as the
      in-process backend. The request then carries ``render_body`` (default ``{"add_special_tokens": false}``,
      so vLLM does not add a second BOS to a template that already writes one; servers that do not know the
      field ignore it).
    * ``endpoint="chat"`` (default): messages go to ``/v1/chat/completions`` and the server applies its
      template. A prompt with an ``assistant_prefix`` cannot be expressed in plain OpenAI chat, so
      ``prefix_mode`` decides: ``"render"`` renders client side and uses completions (needs a chat template),
      ``"continue"`` sends the prefix as a final assistant message with ``continue_final_message: true`` and
      ``add_generation_prompt: false`` (vLLM and SGLang; llama-cpp-python would close the message instead), and
      ``"auto"`` (default) is ``"render"`` when a chat template is known, else ``"continue"``.
    * No ``chat_template=`` and a prompt that needs one (an assistant prefix with ``prefix_mode="auto"``, or
      ``endpoint="completions"``): the template is read once from the server, ``GET /props``, which llama.cpp's
      ``llama-server`` answers with the GGUF's ``chat_template``, ``bos_token`` and ``eos_token`` (llama.cpp
      ``tools/server/server.cpp``, ``handle_props``), and the prompt is rendered client side as above. A server
      without it (llama-cpp-python's ``llama_cpp.server`` 0.3.x has no ``/props``; vLLM, SGLang, OpenAI) gets
      ``"continue"``, with one warning: llama-cpp-python closes the assistant message instead of continuing it, so
      a FIRST or yes/no prompt would score a different text than in process. Pass ``chat_template=`` (the GGUF
      file works) to render exactly, or ``prefix_mode="continue"`` to say the server continues correctly.

Special tokens (BOS)
    The policy is the in-process backends' (:func:`~rerank_plugins.backends.base.adds_special_tokens`): the
    prompt's ``add_special_tokens``, else this backend's ``add_special_tokens`` option. What reaches the model
    then depends on how the prompt is sent and on the server:

    * ``tokenizer=`` given (a tokenizer folder, hub id or GGUF path loaded with transformers, or a tokenizer
      object): completions prompts (raw, and chat rendered client side) are tokenised here exactly as the
      transformers backend tokenises them (the BOS included or not as the policy says, ``None`` meaning none for
      chat prompts and the tokenizer's for raw ones) and sent as token ids (``"prompt": [ids]``), which vLLM,
      SGLang and llama.cpp's ``llama-server`` read as they are, adding nothing. llama-cpp-python's server
      (``llama_cpp.server``, 0.3.x: ``CreateCompletionRequest.prompt`` is ``str | list[str]``) refuses token ids.
    * text prompts (no ``tokenizer=``): when the policy is set (prompt or backend option) the request carries
      ``"add_special_tokens": true|false``, on completions and on chat requests. vLLM honours it on both
      (its defaults: ``true`` on ``/v1/completions``, ``false`` on ``/v1/chat/completions``); llama.cpp's
      servers ignore it and add BOS whenever the GGUF says ``tokenizer.ggml.add_bos_token`` (llama-cpp-python
      0.3.36 ``Llama._create_completion``: the BOS is prepended to every text prompt); OpenAI ignores it.
      When the policy is ``None`` the requests are as before: ``render_body`` on rendered prompts (default
      ``{"add_special_tokens": false}``), nothing on raw ones.

Pre-tokenised prompts (model recipes: Qwen3-Reranker, mxbai-rerank v2, bge-reranker-v2-gemma)
    A :class:`ChatPrompt` with ``token_ids`` (built by a token-level prompt format with the served tokenizer:
    :meth:`OpenAIBackend.tokenize_text` uses ``tokenizer=`` when given, else the server's tokenize endpoint)
    goes to ``/v1/completions`` as those ids (``token_prompts="ids"``, or whenever ``tokenizer=`` is given:
    vLLM and the C++ ``llama-server`` accept a list of token ids as ``prompt``), or as its exact text ``raw``
    (``token_prompts="text"``, default without a tokenizer: every server, llama-cpp-python included) with
    ``add_special_tokens`` set to whether the ids start with a BOS the text does not spell. Either way the
    server reads the prompt the in-process backend reads, so the label log-probabilities, and the scores
    computed from them (``p_yes``, ``logit_diff``, ``sigmoid_diff``), are the same up to the server's numerics.
    Raw logits (``score="logit"``) are not returned by these servers.

Label log-probabilities (FIRST, yes/no, graded, pairwise)
    One request per prompt with ``max_tokens=1``, ``temperature=0`` and ``logprobs=true, top_logprobs=k``
    (chat) or ``logprobs=k`` (completions); ``k = top_logprobs`` (default 20, the OpenAI and vLLM maximum
    unless vLLM is started with a larger ``--max-logprobs``). The returned alternatives for the first generated
    token (plus the sampled token itself) are matched to the labels:

    * ``label_match="exact"`` (default): a label matches a token whose decoded text equals it character for
      character, so ``"yes"`` and ``" yes"`` are different labels, as they are different tokens in process;
    * ``label_match="strip"``: leading/trailing whitespace is ignored on both sides and every matching token
      counts, combined with log-sum-exp (the probability that the answer starts with any spelling of the
      label).

    A label that matches no returned token gets ``-inf`` (it is outside the server's top-k). A response without
    any log-probabilities raises :class:`~rerank_plugins.errors.BackendError` naming the likely cause.

Single tokens
    :meth:`OpenAIBackend.single_token` asks the server's tokenizer: ``POST /tokenize`` (vLLM:
    ``{"prompt", "add_special_tokens": false}``; llama.cpp ``llama-server``: ``{"content", "add_special":
    false}``) or ``POST /extras/tokenize`` (llama-cpp-python: ``{"input"}``); the token count of the empty string
    is subtracted so a BOS the endpoint adds is not counted. The label is tokenised on its own, which equals its
    tokenisation where the answer starts for byte-level BPE tokenizers (GPT-2, Llama 3, Qwen, SmolLM).
    Without a tokenize endpoint (OpenAI, SGLang builds without it) the documented assumption is: a label is one
    token when, after at most one leading space, it is a single character or an ASCII word of at most three
    letters (``"A"``, ``"7"``, ``" yes"``, ``"no"``). Pass ``single_tokens=[...]`` to state it yourself.

Token counts
    :meth:`OpenAIBackend.count_tokens` (used by strategies that fit prompts to a token budget, e.g. listwise
    ``context_size``, as rank_llm does) counts with, in order: ``tokenizer=`` when given; else the server's
    tokenize endpoint (found once, as for single tokens; vLLM's ``POST /tokenize`` ``{"model", "prompt",
    "add_special_tokens"}`` -> ``{"count", "max_model_len", "tokens"}``, llama-server's ``{"content",
    "add_special"}`` -> ``{"tokens"}``); else characters / 4, with one warning. :attr:`OpenAIBackend.token_counter`
    says which (``"tokenizer"``, ``"server"``, ``"estimate"``). A chat prompt is counted as rendered by the chat
    template known (``chat_template=``, the template of ``tokenizer=``, or llama-server's ``/props``), or, without
    one, by vLLM's chat form of ``/tokenize`` (``{"model", "messages", "add_generation_prompt"}``, the server's own
    template); with neither its messages are counted without the template's tokens (one warning). The
    special-token policy is the one the request uses (:func:`~rerank_plugins.backends.base.adds_special_tokens`).

Transport
    httpx sync and async clients; at most ``max_concurrency`` requests in flight per backend (a thread pool for
    the sync calls, an :class:`asyncio.Semaphore` for the async ones, which are natively async and gathered);
    ``timeout`` seconds per request (``connect_timeout`` to connect; the defaults, 120 s and 10 s, are the
    library's one set, :class:`~rerank_plugins._http.HTTPSettings`); HTTP 408/429/500/502/503/504, timeouts and
    connection errors are retried up to ``max_retries`` times with exponential back-off (``backoff * 2**n``
    seconds, capped at ``max_backoff``, honouring ``Retry-After``). Other errors raise at once with the
    server's message. ``close()`` (or ``await aclose()``) closes the clients.
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import re
import warnings
from collections.abc import Collection, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Literal

from .._http import RETRY_STATUS, HTTPSettings, JSONHTTPClient, StatusError
from .._optional import require
from .._warnings import caller_stacklevel
from ..engine.logits import logsumexp
from ..errors import BackendError, ConfigError
from ..refs import ModelRef
from ..validation import check_bool, check_choice, check_int, check_mapping, check_strings, check_that, check_url
from .base import ChatPrompt, Generation, GenerationRequest, LLMBackend, TokenCounter, adds_special_tokens
from .chat_template import ChatTemplate

__all__ = ["RETRY_STATUS", "OpenAIBackend", "match_labels"]

logger = logging.getLogger(__name__)

_ASSUMED_SINGLE = re.compile(r"^ ?(?:\S|[A-Za-z]{1,3})$")


def _no_logprobs(status: int, text: str, body: Any) -> str | None:
    if isinstance(body, Mapping) and body.get("logprobs") and "logprob" in text.lower():
        return (
            "the server cannot return logprobs. Label scoring needs a server with logprobs: vLLM, SGLang, "
            "llama.cpp servers (llama-cpp-python with logits_all=True, its default)"
        )
    return None


def _object(data: Any, path: str) -> dict[str, Any]:
    if not isinstance(data, dict):
        raise BackendError(f"{path}: expected a JSON object from the server, got {type(data).__name__}")
    return data


def match_labels(
    alternatives: Mapping[str, float], labels: Sequence[str], mode: Literal["exact", "strip"] = "exact"
) -> list[float]:
    """Log-probability of each label among a server's top alternatives ``{token_text: logprob}``.

    ``exact``: the token text must equal the label. ``strip``: whitespace around both is ignored and all
    matching tokens are combined by log-sum-exp. Unmatched labels get ``-inf``.
    """
    out: list[float] = []
    for label in labels:
        if mode == "exact" or not label.strip():
            out.append(float(alternatives.get(label, float("-inf"))))
        else:
            key = label.strip()
            hits = [lp for tok, lp in alternatives.items() if tok.strip() == key]
            out.append(logsumexp(hits))
    return out


def _load_tokenizer(spec: Any) -> Any:
    """A tokenizer object (anything callable like a transformers tokenizer) or one loaded with transformers from a
    folder, hub id or ``.gguf`` file."""
    if not isinstance(spec, (str, os.PathLike)):
        return spec
    transformers = require("transformers", "hf", purpose="tokenising prompts client side (tokenizer=)")
    path = os.fspath(spec)
    if path.endswith(".gguf"):
        folder, name = os.path.split(path)
        return transformers.AutoTokenizer.from_pretrained(folder or ".", gguf_file=name)
    return transformers.AutoTokenizer.from_pretrained(path)


class OpenAIBackend(LLMBackend):
    """An OpenAI-compatible server as an LLM backend (see the module docstring for the request rules).

    Args:
        model: model name the server serves (``None``: the first one listed by ``GET /v1/models``). A
            :class:`~rerank_plugins.models.ModelRef` is accepted: its path is the name and, when it is a GGUF
            file, the file is also the chat template source.
        base_url: server root, with or without ``/v1`` (e.g. ``http://127.0.0.1:8000/v1``).
        api_key: bearer token; defaults to the ``OPENAI_API_KEY`` environment variable (optional).
        endpoint: ``"chat"`` or ``"completions"``.
        chat_template: Jinja text, or a GGUF file / tokenizer folder to read it from (see above).
        prefix_mode: ``"auto"``, ``"render"`` or ``"continue"`` (how assistant prefixes are sent in chat mode).
        top_logprobs: alternatives requested per label query.
        label_match: ``"exact"`` or ``"strip"``.
        single_tokens: labels known to be single tokens (skips asking the server).
        max_concurrency, timeout, connect_timeout, max_retries, backoff, max_backoff: the transport, with the
            library's one set of defaults (:class:`~rerank_plugins._http.HTTPSettings`: 8 requests in flight,
            120 s per request, 10 s to connect, 3 retries of 408/429/5xx/timeouts/connection errors).
        context_length: model context in tokens, if known (else read from vLLM's ``/v1/models`` when offered).
        token_prompts: ``"text"`` or ``"ids"``: how a pre-tokenised prompt is sent (module docstring).
        bos_token_id: the served tokenizer's BOS id, for token-level prompt formats that start with BOS (a
            tokenize endpoint does not tell it; with ``tokenizer=`` it is read from the tokenizer).
        extra_body: fields merged into every generation request (e.g. ``{"top_k": 1}``).
        render_body: fields merged into requests whose prompt was rendered client side.
        headers: extra HTTP headers.
        add_special_tokens: the special-token policy for prompts that leave theirs ``None`` (module docstring).
        tokenizer: tokenise completions prompts client side and send token ids (module docstring).
    """

    def __init__(
        self,
        model: str | ModelRef | None = None,
        *,
        base_url: str,
        api_key: str | None = None,
        endpoint: Literal["chat", "completions"] = "chat",
        chat_template: str | os.PathLike[str] | ChatTemplate | None = None,
        prefix_mode: Literal["auto", "render", "continue"] = "auto",
        top_logprobs: int = 20,
        label_match: Literal["exact", "strip"] = "exact",
        single_tokens: Collection[str] | None = None,
        max_concurrency: int = HTTPSettings.max_concurrency,
        timeout: float = HTTPSettings.timeout,
        connect_timeout: float = HTTPSettings.connect_timeout,
        max_retries: int = HTTPSettings.max_retries,
        backoff: float = HTTPSettings.backoff,
        max_backoff: float = HTTPSettings.max_backoff,
        context_length: int | None = None,
        token_prompts: Literal["text", "ids"] = "text",
        bos_token_id: int | None = None,
        extra_body: Mapping[str, Any] | None = None,
        render_body: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        add_special_tokens: bool | None = None,
        tokenizer: Any = None,
    ) -> None:
        self.add_special_tokens = check_bool("add_special_tokens", add_special_tokens, optional=True)
        check_choice("endpoint", endpoint, ("chat", "completions"))
        check_choice("prefix_mode", prefix_mode, ("auto", "render", "continue"))
        check_choice("label_match", label_match, ("exact", "strip"))
        check_int("top_logprobs", top_logprobs, 1)
        check_choice("token_prompts", token_prompts, ("text", "ids"))
        check_int("bos_token_id", bos_token_id, 0, optional=True)
        check_int("context_length", context_length, 1, optional=True)
        for option, value in (("extra_body", extra_body), ("render_body", render_body), ("headers", headers)):
            check_mapping(option, value, optional=True)
        singles = check_strings("single_tokens", single_tokens, optional=True)
        check_that("tokenizer", tokenizer, tokenizer is None or isinstance(tokenizer, (str, os.PathLike))
                   or callable(tokenizer), "a path, a hub id or a tokenizer object")
        check_that("model", model, model is None or isinstance(model, str)
                   or isinstance(getattr(model, "name_or_path", None), str), "a served model name, a ModelRef or None")
        self.token_prompts = token_prompts
        self._bos_token_id = bos_token_id
        transport = HTTPSettings(timeout=timeout, connect_timeout=connect_timeout, max_retries=max_retries,
                                 backoff=backoff, max_backoff=max_backoff, max_concurrency=max_concurrency)
        check_url("base_url", base_url)

        root = base_url.rstrip("/")
        if root.endswith("/v1"):
            root = root[: -len("/v1")]
        self.base_url = root
        self.api_url = root + "/v1"

        gguf_template: str | None = None
        if model is not None and not isinstance(model, str):
            # a ModelRef (duck-typed to keep this module free of the registry)
            name_or_path = str(model.name_or_path)
            gguf_file = getattr(model, "gguf_file", None)
            if gguf_file:
                gguf_template = os.path.join(name_or_path, gguf_file)
                model = gguf_template
            else:
                model = name_or_path
        self._model: str | None = model
        self.model_id = f"openai:{model}" if model else f"openai:{root}"
        source = chat_template if chat_template is not None else gguf_template
        self.chat_template: ChatTemplate | None = ChatTemplate.load(source) if source is not None else None
        #: where the chat template came from: "given", "server" (GET /props) or None
        self.chat_template_source: str | None = "given" if self.chat_template is not None else None
        self._props_checked = self.chat_template is not None
        if endpoint == "completions" and self.chat_template is None:
            logger.info("endpoint='completions' without chat_template: only raw prompts can be sent")
        if prefix_mode == "render" and self.chat_template is None:
            raise ConfigError(
                "prefix_mode='render' needs chat_template= (Jinja text, a GGUF file or a tokenizer folder)"
            )
        self.endpoint = endpoint
        self.prefix_mode = prefix_mode
        self.top_logprobs = top_logprobs
        self.label_match = label_match
        self.max_concurrency = max_concurrency
        self._context_length = context_length
        self._context_checked = context_length is not None
        self.extra_body = dict(extra_body) if extra_body is not None else {}
        self.render_body = dict(render_body) if render_body is not None else {"add_special_tokens": False}
        self._single_tokens = set(singles) if single_tokens is not None else None
        self.tokenizer = _load_tokenizer(tokenizer) if tokenizer is not None else None
        self._single_cache: dict[str, bool] = {}
        self._tokenize_probe: tuple[str, str, int] | None = None  # (path, style, baseline count)
        self._tokenize_unavailable = False
        self._props_asked = False
        self._props_template: ChatTemplate | None = None
        self._warned_counts: set[str] = set()

        key = api_key if api_key is not None else os.environ.get("OPENAI_API_KEY")
        all_headers = {"Authorization": f"Bearer {key}"} if key else {}
        all_headers.update(headers or {})
        self._http = JSONHTTPClient(root, transport, headers=all_headers, name="OpenAIBackend", fatal=_no_logprobs)

    def __repr__(self) -> str:
        return f"OpenAIBackend(model={self._model!r}, base_url={self.base_url!r}, endpoint={self.endpoint!r})"

    # ------------------------------------------------------------------ transport
    def close(self) -> None:
        """Close the HTTP clients."""
        self._http.close()

    async def aclose(self) -> None:
        """Close the clients from inside a running event loop."""
        await self._http.aclose()

    def _post(self, path: str, body: Mapping[str, Any], *, retry: bool = True) -> dict[str, Any]:
        return _object(self._http.request("POST", path, body, retry=retry), path)

    async def _apost(self, path: str, body: Mapping[str, Any]) -> dict[str, Any]:
        return _object(await self._http.arequest("POST", path, body), path)

    def _get_models(self) -> list[Mapping[str, Any]]:
        data = _object(self._http.request("GET", "/v1/models"), "/v1/models").get("data")
        if not isinstance(data, list):
            raise BackendError(f"GET {self.api_url}/models: no 'data' list in the answer")
        return [m for m in data if isinstance(m, Mapping)]

    @property
    def model(self) -> str:
        """The served model name (asked from ``/v1/models`` once when not given)."""
        if self._model is None:
            models = self._get_models()
            if not models or not isinstance(models[0].get("id"), str):
                raise BackendError(f"{self.api_url}/models lists no model; pass model= explicitly")
            self._model = str(models[0]["id"])
            self.model_id = f"openai:{self._model}"
        return self._model

    @property
    def context_length(self) -> int | None:
        if not self._context_checked:
            self._context_checked = True
            try:
                for m in self._get_models():
                    if m.get("id") == self.model and isinstance(m.get("max_model_len"), int):
                        self._context_length = int(m["max_model_len"])
            except BackendError as exc:
                logger.debug("could not read the context length from %s: %s", self.api_url, exc)
        return self._context_length

    # ------------------------------------------------------------------ request building
    def _request(self, prompt: ChatPrompt, common: Mapping[str, Any]) -> tuple[str, dict[str, Any]]:
        """(path, body) for one prompt; ``common`` holds sampling and logprob fields for both endpoints,
        with the chat/completions specific logprob fields under the keys ``"_chat"`` and ``"_completions"``."""
        base = {k: v for k, v in common.items() if not k.startswith("_")}
        chat_extra = dict(common.get("_chat", {}))
        comp_extra = dict(common.get("_completions", {}))
        if not isinstance(prompt, ChatPrompt):
            raise ConfigError(f"prompts must be ChatPrompt objects, got {type(prompt).__name__}")
        special = self._special_fields(prompt)
        if prompt.token_ids is not None:
            if self.token_prompts == "ids" or self.tokenizer is not None:
                body = {"model": self.model, "prompt": [int(t) for t in prompt.token_ids], **base, **comp_extra}
                return "/v1/completions", {**body, **self.extra_body}
            if prompt.raw is None:
                raise ConfigError("a pre-tokenised prompt sent as text needs its text in raw")
            body = {"model": self.model, "prompt": prompt.raw, **base, **comp_extra, **special}
            return "/v1/completions", {**body, **self.extra_body}
        if prompt.raw is not None:
            text = prompt.raw + prompt.assistant_prefix
            body = {"model": self.model, "prompt": self._prompt_field(text, prompt), **base, **comp_extra}
            return "/v1/completions", {**body, **(special if self.tokenizer is None else {}), **self.extra_body}
        messages = [dict(m) for m in prompt.messages]
        if not messages:
            raise ConfigError("a ChatPrompt needs messages or raw text")
        if self._needs_server_template(prompt):
            self._read_server_template()
        render = self.endpoint == "completions" or (
            prompt.assistant_prefix
            and (self.prefix_mode == "render" or (self.prefix_mode == "auto" and self.chat_template is not None))
        )
        if render:
            if self.chat_template is None:
                raise ConfigError(
                    "rendering chat messages for the completions endpoint needs chat_template= "
                    "(Jinja text, a GGUF file or a tokenizer folder)"
                )
            text = self.chat_template.render(messages) + prompt.assistant_prefix
            body = {"model": self.model, "prompt": self._prompt_field(text, prompt), **base, **comp_extra}
            if self.tokenizer is None:
                body.update({**self.render_body, **special})
            return "/v1/completions", {**body, **self.extra_body}
        body = {"model": self.model, "messages": messages, **base, **chat_extra, **special}
        if prompt.assistant_prefix:
            body["messages"] = [*messages, {"role": "assistant", "content": prompt.assistant_prefix}]
            body["add_generation_prompt"] = False
            body["continue_final_message"] = True
        return "/v1/chat/completions", {**body, **self.extra_body}

    def _needs_server_template(self, prompt: ChatPrompt) -> bool:
        """True when ``prompt`` needs a chat template that is not known yet and the server was not asked."""
        if self._props_checked or self.chat_template is not None or prompt.raw is not None:
            return False
        return self.endpoint == "completions" or (bool(prompt.assistant_prefix) and self.prefix_mode == "auto")

    def _server_template(self) -> ChatTemplate | None:
        """The chat template the server reports at ``GET /props`` (llama.cpp's llama-server), asked once."""
        if not self._props_asked:
            self._props_asked = True
            props: Any = None
            try:
                props = self._http.request("GET", "/props", retry=False)
            except BackendError as exc:
                logger.debug("%s serves no /props (%s)", self.base_url, exc)
            source = props.get("chat_template") if isinstance(props, Mapping) else None
            if isinstance(source, str) and source.strip():
                assert isinstance(props, Mapping)
                bos, eos = props.get("bos_token"), props.get("eos_token")
                self._props_template = ChatTemplate(source, bos if isinstance(bos, str) else None,
                                                    eos if isinstance(eos, str) else None)
        return self._props_template

    def _read_server_template(self) -> None:
        """Use the chat template of ``GET /props`` (llama.cpp's llama-server); warn when there is none."""
        self._props_checked = True
        template = self._server_template()
        if template is not None:
            self.chat_template = template
            self.chat_template_source = "server"
            logger.info("%s: using the chat template the server reports at /props", self.base_url)
            return
        if self.endpoint == "chat":
            warnings.warn(
                f"{self.model_id}: no chat_template= and {self.base_url} serves none at /props, so prompts that "
                "end in an assistant prefix (FIRST, yes/no, graded) are sent as a final assistant message with "
                "continue_final_message=true; llama-cpp-python's server closes that message instead of "
                "continuing it, so its scores differ from in-process. Pass chat_template= (Jinja text, the GGUF "
                "file or a tokenizer folder) to render the prompt exactly, or prefix_mode='continue' if the "
                "server continues the message (vLLM, SGLang)",
                UserWarning,
                stacklevel=caller_stacklevel(),
            )

    def _special_fields(self, prompt: ChatPrompt) -> dict[str, Any]:
        """``{"add_special_tokens": ...}`` when the policy is set for ``prompt``, else nothing."""
        chosen = prompt.add_special_tokens if prompt.add_special_tokens is not None else self.add_special_tokens
        return {} if chosen is None else {"add_special_tokens": bool(chosen)}

    def _prompt_field(self, text: str, prompt: ChatPrompt) -> str | list[int]:
        """The completions ``prompt``: the text, or its token ids (policy applied) when a tokenizer is set."""
        if self.tokenizer is None:
            return text
        return self.prompt_token_ids_of(text, prompt)

    def prompt_token_ids_of(self, text: str, prompt: ChatPrompt) -> list[int]:
        """Token ids of a completions prompt's text, with the special-token policy (needs ``tokenizer=``)."""
        if self.tokenizer is None:
            raise ConfigError("token ids need tokenizer= (a tokenizer folder, hub id, GGUF path or object)")
        special = adds_special_tokens(prompt, self.add_special_tokens)
        return [int(i) for i in self.tokenizer(text, add_special_tokens=special)["input_ids"]]

    @staticmethod
    def _choice(data: Mapping[str, Any], path: str) -> Mapping[str, Any]:
        choices = data.get("choices")
        if not isinstance(choices, list) or not choices or not isinstance(choices[0], Mapping):
            raise BackendError(f"{path}: the server answered without choices: {str(data)[:300]}")
        return choices[0]

    def _generation(self, data: Mapping[str, Any], path: str) -> Generation:
        choice = self._choice(data, path)
        extra: dict[str, Any] = {"finish_reason": choice.get("finish_reason")}
        if path.endswith("/chat/completions"):
            message = choice.get("message") or {}
            text = message.get("content")
            for key in ("reasoning_content", "reasoning"):
                if message.get(key):
                    extra[key] = message[key]
        else:
            text = choice.get("text")
        usage = data.get("usage") or {}
        finish: Literal["stop", "length"] = "length" if choice.get("finish_reason") == "length" else "stop"
        return Generation(
            text=text if isinstance(text, str) else "",
            finish_reason=finish,
            prompt_tokens=int(usage.get("prompt_tokens") or 0),
            completion_tokens=int(usage.get("completion_tokens") or 0),
            extra=extra,
        )

    def _alternatives(self, data: Mapping[str, Any], path: str) -> dict[str, float]:
        choice = self._choice(data, path)
        lp = choice.get("logprobs")
        found: dict[str, float] = {}
        if isinstance(lp, Mapping):
            if path.endswith("/chat/completions"):
                content = lp.get("content")
                if isinstance(content, list) and content and isinstance(content[0], Mapping):
                    first = content[0]
                    for entry in [first, *(first.get("top_logprobs") or [])]:
                        if isinstance(entry, Mapping) and isinstance(entry.get("token"), str):
                            self._add(found, entry["token"], entry.get("logprob"))
            else:
                tops = lp.get("top_logprobs")
                if isinstance(tops, list) and tops and isinstance(tops[0], Mapping):
                    for token, value in tops[0].items():
                        self._add(found, str(token), value)
                tokens, values = lp.get("tokens"), lp.get("token_logprobs")
                if isinstance(tokens, list) and tokens and isinstance(values, list) and values:
                    self._add(found, str(tokens[0]), values[0])
        if not found:
            raise BackendError(
                f"{self.base_url}{path} returned no logprobs for the first token (got {str(lp)[:200]!r}). "
                "The server must support logprobs: vLLM and SGLang do (vLLM caps top_logprobs at --max-logprobs, "
                "default 20); llama-cpp-python's server needs logits_all (its default); some hosted APIs have none."
            )
        return found

    @staticmethod
    def _add(found: dict[str, float], token: str, value: Any) -> None:
        if value is None:
            return
        v = float(value)
        if math.isnan(v):
            return
        if token not in found or v > found[token]:
            found[token] = v

    @staticmethod
    def _sampling(request: GenerationRequest) -> dict[str, Any]:
        """The sampling fields of a :class:`GenerationRequest`: ``max_tokens``, ``temperature``, ``seed`` when
        given, ``stop`` as a list of the request's stop strings (one string stays one)."""
        common: dict[str, Any] = {"max_tokens": request.max_new_tokens, "temperature": request.temperature}
        if request.seed is not None:
            common["seed"] = request.seed
        if request.stop:
            common["stop"] = list(request.stop)
        return common

    def _logprob_common(self) -> dict[str, Any]:
        return {
            "max_tokens": 1,
            "temperature": 0.0,
            "_chat": {"logprobs": True, "top_logprobs": self.top_logprobs},
            "_completions": {"logprobs": self.top_logprobs},
        }

    # ------------------------------------------------------------------ LLMBackend: sync
    def _map(self, fn: Any, items: Sequence[Any]) -> list[Any]:
        if len(items) <= 1:
            return [fn(x) for x in items]
        workers = min(self.max_concurrency, len(items))
        with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="openai-backend") as pool:
            return list(pool.map(fn, items))

    def _generate(self, prompts: Sequence[ChatPrompt], request: GenerationRequest) -> list[Generation]:
        common = self._sampling(request)
        requests = [self._request(p, common) for p in prompts]
        return self._map(lambda r: self._generation(self._post(*r), r[0]), requests)

    def label_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        labels = list(labels)
        if not labels:
            return [[] for _ in prompts]
        requests = [self._request(p, self._logprob_common()) for p in prompts]
        alternatives = self._map(lambda r: self._alternatives(self._post(*r), r[0]), requests)
        return [match_labels(a, labels, self.label_match) for a in alternatives]

    # ------------------------------------------------------------------ LLMBackend: async
    def _asks_server(self, prompts: Sequence[ChatPrompt]) -> bool:
        """True when building the requests makes a (blocking) call: the model name or the chat template."""
        return self._model is None or any(self._needs_server_template(p) for p in prompts)

    async def _agenerate(self, prompts: Sequence[ChatPrompt], request: GenerationRequest) -> list[Generation]:
        common = self._sampling(request)
        requests = [self._request(p, common) for p in prompts] if not self._asks_server(prompts) else \
            await asyncio.to_thread(lambda: [self._request(p, common) for p in prompts])

        async def one(path: str, body: dict[str, Any]) -> Generation:
            return self._generation(await self._apost(path, body), path)

        return list(await asyncio.gather(*(one(p, b) for p, b in requests)))

    async def alabel_logprobs(self, prompts: Sequence[ChatPrompt], labels: Sequence[str]) -> list[list[float]]:
        labels = list(labels)
        if not labels:
            return [[] for _ in prompts]
        common = self._logprob_common()
        requests = [self._request(p, common) for p in prompts] if not self._asks_server(prompts) else \
            await asyncio.to_thread(lambda: [self._request(p, common) for p in prompts])

        async def one(path: str, body: dict[str, Any]) -> list[float]:
            return match_labels(self._alternatives(await self._apost(path, body), path), labels, self.label_match)

        return list(await asyncio.gather(*(one(p, b) for p, b in requests)))

    # ------------------------------------------------------------------ tokens
    #: the tokenize endpoints tried, in order: vLLM, llama.cpp's llama-server, llama-cpp-python
    _TOKENIZE_STYLES = (("/tokenize", "vllm"), ("/tokenize", "llamacpp"), ("/extras/tokenize", "llama-cpp-python"))

    def _tokenize_endpoint(self) -> tuple[str, str, int] | None:
        """``(path, style, baseline)`` of the server's tokenize endpoint, found once (``None``: it has none).

        Each form is tried on a probe text and kept when it answers tokens for it: llama-server answers a
        vLLM-shaped body (no ``content``) with no tokens rather than an error (llama.cpp
        ``tools/server/server.cpp``, ``handle_tokenize``). ``baseline`` is the token count of the empty string
        (a BOS the endpoint adds on its own)."""
        if self._tokenize_probe is None and not self._tokenize_unavailable:
            for path, style in self._TOKENIZE_STYLES:
                if self._tokenize_with(path, style, "Hello world"):
                    baseline = self._tokenize_with(path, style, "")
                    self._tokenize_probe = (path, style, len(baseline) if baseline is not None else 0)
                    break
            else:
                self._tokenize_unavailable = True
        return self._tokenize_probe

    def tokenize(self, text: str) -> list[int] | None:
        """Token ids of ``text`` from the server's tokenize endpoint (special tokens it adds removed from the
        count only), or ``None`` when the server has none."""
        endpoint = self._tokenize_endpoint()
        return None if endpoint is None else self._tokenize_with(endpoint[0], endpoint[1], text)

    def tokenize_text(self, text: str) -> list[int]:
        """Token ids of ``text`` with no special tokens: from ``tokenizer=`` when given, else from the server's
        tokenize endpoint (the special tokens it adds removed)."""
        if self.tokenizer is not None:
            return [int(t) for t in self.tokenizer(text, add_special_tokens=False)["input_ids"]]
        tokens = self.tokenize(text)
        if tokens is None or self._tokenize_probe is None:
            raise ConfigError(
                f"{self.base_url} has no tokenize endpoint; token-level prompt formats (model recipes) need one "
                "(vLLM and llama.cpp servers have it) or tokenizer="
            )
        baseline = self._tokenize_probe[2]
        return tokens[baseline:] if baseline else tokens

    def detokenize(self, ids: Sequence[int]) -> str:
        """The text of ``ids``: ``tokenizer=`` when given, else the server (``/detokenize``: vLLM and
        llama-server; ``/extras/detokenize``: llama-cpp-python)."""
        if self.tokenizer is not None:
            return str(self.tokenizer.decode(list(ids), skip_special_tokens=False,
                                             clean_up_tokenization_spaces=False))
        attempts: list[tuple[str, dict[str, Any], str]] = [
            ("/detokenize", {"model": self.model, "tokens": list(ids)}, "prompt"),
            ("/detokenize", {"tokens": list(ids)}, "content"),
            ("/extras/detokenize", {"tokens": list(ids)}, "text"),
        ]
        for path, body, key in attempts:
            try:
                data = self._post(path, body, retry=False)
            except StatusError as exc:
                if 400 <= exc.status < 500:
                    continue
                raise
            if isinstance(data.get(key), str):
                return str(data[key])
        raise ConfigError(f"{self.base_url} has no detokenize endpoint; a cut token-level prompt cannot be sent")

    @property
    def bos_token_id(self) -> int | None:
        if self._bos_token_id is not None or self.tokenizer is None:
            return self._bos_token_id
        bos, pad = getattr(self.tokenizer, "bos_token_id", None), getattr(self.tokenizer, "pad_token_id", None)
        return None if bos is None or bos == pad else int(bos)

    def _tokenize_with(self, path: str, style: str, text: str, special: bool = False) -> list[int] | None:
        """The tokens one endpoint form answers for ``text`` (``special``: with the tokenizer's special tokens;
        llama-cpp-python's ``/extras/tokenize`` always adds them), ``None`` when that form is refused.
        Shapes: vLLM ``TokenizeCompletionRequest`` ``{"model", "prompt", "add_special_tokens"}`` ->
        ``{"count", "max_model_len", "tokens"}``; llama-server ``{"content", "add_special"}`` -> ``{"tokens"}``;
        llama-cpp-python ``{"input"}`` -> ``{"tokens"}``."""
        if style == "vllm":
            body: dict[str, Any] = {"model": self.model, "prompt": text, "add_special_tokens": special}
        elif style == "llamacpp":
            body = {"content": text, "add_special": special}
        else:
            body = {"input": text}
        try:
            data = self._post(path, body, retry=False)
        except StatusError as exc:
            if 400 <= exc.status < 500:
                return None
            raise
        tokens = data.get("tokens")
        if not isinstance(tokens, list):
            return None
        return [int(t) if not isinstance(t, Mapping) else int(t.get("id", -1)) for t in tokens]

    # ------------------------------------------------------------------ token counts
    @property
    def token_counter(self) -> TokenCounter:
        """Where :meth:`count_tokens` gets its counts: ``"tokenizer"`` (``tokenizer=`` given), ``"server"`` (the
        server's tokenize endpoint, found once) or ``"estimate"`` (characters / 4, with one warning)."""
        if self.tokenizer is not None:
            return "tokenizer"
        return "server" if self._tokenize_endpoint() is not None else "estimate"

    def count_tokens(self, prompt: ChatPrompt | str) -> int:
        """Token count of a prompt as the server reads it, or of a text fragment (no special tokens), with the
        tokenizer :attr:`token_counter` names (module docstring, "Token counts")."""
        if not isinstance(prompt, str) and prompt.token_ids is not None:
            return len(prompt.token_ids)
        counter = self.token_counter
        if counter == "estimate":
            self._warn_once("estimate", (
                f"{self.model_id}: no tokenizer= and {self.base_url} has no tokenize endpoint, so prompt token "
                "counts are estimated as characters / 4 and token budgets (context_size) cut passages differently "
                "than in process; pass tokenizer= (the model's tokenizer folder, hub id or GGUF file)"))
            return super().count_tokens(prompt)
        if isinstance(prompt, str):
            return self._count_text(prompt, special=False)
        special = adds_special_tokens(prompt, self.add_special_tokens)
        if prompt.raw is not None:
            return self._count_text(prompt.raw + prompt.assistant_prefix, special)
        text = self._render_for_count(prompt, counter)
        if text is not None:
            return self._count_text(text, special)
        endpoint = self._tokenize_endpoint() if counter == "server" else None
        if endpoint is not None and endpoint[1] == "vllm":
            return self._count_chat_on_server(prompt, special)
        self._warn_once("template", (
            f"{self.model_id}: no chat template is known (chat_template=, a tokenizer= that has one, or the "
            "server's /props), so chat prompts are counted without the template's own tokens; pass "
            "chat_template= for exact counts"))
        return self._count_text("\n".join(str(m["content"]) for m in prompt.messages) + prompt.assistant_prefix,
                                special)

    def _warn_once(self, key: str, message: str) -> None:
        if key not in self._warned_counts:
            self._warned_counts.add(key)
            warnings.warn(message, UserWarning, stacklevel=caller_stacklevel())

    def _render_for_count(self, prompt: ChatPrompt, counter: TokenCounter) -> str | None:
        """A chat prompt's text as the server reads it, when a template is known: ``chat_template=`` (or the one
        read from ``/props``), else the chat template of ``tokenizer=``, else the server's ``/props``."""
        messages = [dict(m) for m in prompt.messages]
        if not messages:
            raise ConfigError("a ChatPrompt needs messages or raw text")
        template = self.chat_template
        if template is None and self.tokenizer is not None and getattr(self.tokenizer, "chat_template", None):
            text = self.tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            return str(text) + prompt.assistant_prefix
        if template is None and counter == "server":
            template = self._server_template()
        return None if template is None else template.render(messages) + prompt.assistant_prefix

    def _count_text(self, text: str, special: bool) -> int:
        """Tokens of ``text`` (``special``: with the tokenizer's special tokens) by ``tokenizer=`` or the server."""
        if self.tokenizer is not None:
            return len(self.tokenizer(text, add_special_tokens=special)["input_ids"])
        endpoint = self._tokenize_endpoint()
        assert endpoint is not None  # token_counter == "server"
        path, style, baseline = endpoint
        tokens = self._tokenize_with(path, style, text, special)
        if tokens is None:
            raise BackendError(f"{self.base_url}{path} refused to tokenise a prompt it tokenised before")
        # llama-cpp-python's /extras/tokenize always adds the special tokens: the baseline is what it adds
        return len(tokens) - baseline if style == "llama-cpp-python" and not special else len(tokens)

    def _count_chat_on_server(self, prompt: ChatPrompt, special: bool) -> int:
        """A chat prompt counted by vLLM's chat form of ``/tokenize`` (``TokenizeChatRequest``: the server's own
        template, the assistant prefix continued as the chat request sends it)."""
        messages = [dict(m) for m in prompt.messages]
        body: dict[str, Any] = {"model": self.model, "messages": messages, "add_generation_prompt": True,
                                "add_special_tokens": special}
        if prompt.assistant_prefix:
            body.update(messages=[*messages, {"role": "assistant", "content": prompt.assistant_prefix}],
                        add_generation_prompt=False, continue_final_message=True)
        data = self._post("/tokenize", body, retry=False)
        tokens, count = data.get("tokens"), data.get("count")
        if isinstance(count, int):
            return count
        if isinstance(tokens, list):
            return len(tokens)
        raise BackendError(f"{self.base_url}/tokenize answered a chat prompt without tokens: {str(data)[:200]}")

    def single_token(self, label: str) -> bool:
        if self._single_tokens is not None:
            return label in self._single_tokens
        if label in self._single_cache:
            return self._single_cache[label]
        tokens = self.tokenize(label)
        if tokens is None or self._tokenize_probe is None:
            answer = bool(label) and _ASSUMED_SINGLE.match(label) is not None
            logger.warning(
                "%s has no tokenize endpoint: assuming %r is %sa single token (pass single_tokens= to say)",
                self.base_url, label, "" if answer else "not ",
            )
        else:
            answer = len(tokens) - self._tokenize_probe[2] == 1
        self._single_cache[label] = answer
        return answer
