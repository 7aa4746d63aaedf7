"""Render chat messages to prompt text with a model's own Jinja chat template, client side.

HTTP backends need this when the server cannot be told to *continue* an assistant message (an
``assistant_prefix`` such as ``"["`` or ``"<think>"``), and for the completions endpoint: the prompt is rendered
here exactly as ``transformers``' ``apply_chat_template(..., add_generation_prompt=True)`` renders it (same
sandboxed Jinja environment: ``trim_blocks``, ``lstrip_blocks``, ``loopcontrols``, ``tojson``,
``raise_exception``, ``strftime_now``), then the prefix is appended verbatim.

A template comes from Jinja source text, or is read from a model file:

* a ``.gguf`` file (metadata ``tokenizer.chat_template``; BOS/EOS token text from its vocabulary);
* a tokenizer folder (``chat_template.jinja``, or ``chat_template`` in ``tokenizer_config.json``);
* a ``tokenizer_config.json`` or ``*.jinja`` file.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import ConfigError, ModelNotFoundError

__all__ = ["ChatTemplate"]


def _token_text(value: Any) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, Mapping):  # tokenizer_config.json AddedToken form
        content = value.get("content")
        return content if isinstance(content, str) else None
    return None


@dataclass(frozen=True)
class ChatTemplate:
    """A Jinja chat template plus the special-token texts it may refer to."""

    source: str
    bos_token: str | None = None
    eos_token: str | None = None
    #: extra variables passed to the template (e.g. ``{"enable_thinking": False}``)
    variables: Mapping[str, Any] = field(default_factory=dict)

    @classmethod
    def load(cls, spec: str | os.PathLike[str] | ChatTemplate) -> ChatTemplate:
        """Jinja source, or a path to a GGUF file, a tokenizer folder, a tokenizer_config.json or a .jinja file.

        A string is treated as a path when it names an existing file or folder, and as Jinja source when it
        contains ``{%`` or ``{{``; anything else raises :class:`ModelNotFoundError`.
        """
        if isinstance(spec, ChatTemplate):
            return spec
        text = os.fspath(spec)
        path = Path(text).expanduser() if len(text) < 4096 and "\n" not in text else None
        if path is not None and path.exists():
            return cls._from_path(path)
        if "{%" in text or "{{" in text:
            return cls(text)
        raise ModelNotFoundError(
            f"chat template {text!r} is neither an existing file or folder nor Jinja template source"
        )

    @classmethod
    def _from_path(cls, path: Path) -> ChatTemplate:
        if path.is_dir():
            jinja = path / "chat_template.jinja"
            config_path = path / "tokenizer_config.json"
            config = json.loads(config_path.read_text(encoding="utf-8")) if config_path.exists() else {}
            if jinja.exists():
                source = jinja.read_text(encoding="utf-8")
            elif isinstance(config.get("chat_template"), str):
                source = config["chat_template"]
            else:
                raise ModelNotFoundError(
                    f"no chat template in {path} (no chat_template.jinja, none in tokenizer_config.json)"
                )
            return cls(source, _token_text(config.get("bos_token")), _token_text(config.get("eos_token")))
        if path.suffix == ".gguf":
            return cls._from_gguf(path)
        if path.suffix == ".jinja":
            return cls(path.read_text(encoding="utf-8"))
        if path.suffix == ".json":
            config = json.loads(path.read_text(encoding="utf-8"))
            source = config.get("chat_template")
            if not isinstance(source, str):
                raise ModelNotFoundError(f"{path} has no string 'chat_template' entry")
            return cls(source, _token_text(config.get("bos_token")), _token_text(config.get("eos_token")))
        raise ModelNotFoundError(f"cannot read a chat template from {path} (expected .gguf, .jinja, .json or a folder)")

    @classmethod
    def _from_gguf(cls, path: Path) -> ChatTemplate:
        stat = path.stat()
        key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns)
        found = _GGUF_CACHE.get(key)
        if found is None:
            found = cls._read_gguf(path)
            _GGUF_CACHE[key] = found
        return found

    @classmethod
    def _read_gguf(cls, path: Path) -> ChatTemplate:
        gguf = require("gguf", "gguf", purpose="reading the chat template of a GGUF file")
        reader = gguf.GGUFReader(str(path))

        def field_value(key: str) -> Any:
            f = reader.fields.get(key)
            return None if f is None else f.contents()

        source = field_value("tokenizer.chat_template")
        if not isinstance(source, str):
            raise ModelNotFoundError(f"{path} has no tokenizer.chat_template metadata")
        tokens = field_value("tokenizer.ggml.tokens")

        def token(key: str) -> str | None:
            index = field_value(key)
            if isinstance(index, int) and isinstance(tokens, list) and 0 <= index < len(tokens):
                return str(tokens[index])
            return None

        return cls(source, token("tokenizer.ggml.bos_token_id"), token("tokenizer.ggml.eos_token_id"))

    def render(self, messages: Sequence[Mapping[str, Any]], *, add_generation_prompt: bool = True) -> str:
        """The prompt text for ``messages``, as transformers' ``apply_chat_template(tokenize=False)`` gives it."""
        template = _compile(self.source)
        jinja2 = require("jinja2", "openai")
        try:
            return str(
                template.render(
                    messages=[dict(m) for m in messages],
                    add_generation_prompt=add_generation_prompt,
                    bos_token=self.bos_token if self.bos_token is not None else "",
                    eos_token=self.eos_token if self.eos_token is not None else "",
                    **dict(self.variables),
                )
            )
        except jinja2.exceptions.TemplateError as exc:
            raise ConfigError(f"the chat template failed to render these messages: {exc}") from exc


_CACHE: dict[str, Any] = {}
_GGUF_CACHE: dict[tuple[str, int, int], ChatTemplate] = {}


def _compile(source: str) -> Any:
    compiled = _CACHE.get(source)
    if compiled is not None:
        return compiled
    jinja2 = require("jinja2", "openai", purpose="rendering chat templates")
    sandbox = require("jinja2.sandbox", "openai")
    ext = require("jinja2.ext", "openai")

    def raise_exception(message: str) -> None:
        raise jinja2.exceptions.TemplateError(message)

    def tojson(x: Any, ensure_ascii: bool = False, indent: int | None = None, separators: Any = None,
               sort_keys: bool = False) -> str:
        return json.dumps(x, ensure_ascii=ensure_ascii, indent=indent, separators=separators, sort_keys=sort_keys)

    def strftime_now(fmt: str) -> str:
        return datetime.now().strftime(fmt)

    env = sandbox.ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True, extensions=[ext.loopcontrols])
    env.filters["tojson"] = tojson
    env.globals["raise_exception"] = raise_exception
    env.globals["strftime_now"] = strftime_now
    try:
        compiled = env.from_string(source)
    except jinja2.exceptions.TemplateSyntaxError as exc:
        raise ConfigError(f"invalid chat template: {exc}") from exc
    if len(_CACHE) > 32:
        _CACHE.clear()
    _CACHE[source] = compiled
    return compiled
