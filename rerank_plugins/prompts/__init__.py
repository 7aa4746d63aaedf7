"""Prompt templates shipped as package data (``prompts/<name>.v<version>.toml``), named and versioned.

:func:`get_prompt` loads one by name (newest version unless ``version`` is given) or from a path to a TOML
file of the same shape. Each file holds:

``name``, ``version``, ``description``, ``source``
    identity and provenance (paper or repository the wording comes from);
``kind``
    ``"listwise"`` (a window of passages), ``"pointwise"`` (one passage) or ``"pairwise"`` (two passages);
``output_format``
    ``"permutation"`` (``[2] > [1] > ...``), ``"best"`` (the label of the single most relevant passage, as
    Rank-R1), ``"yes_no"`` or ``"grade"`` (pointwise), ``"choice"`` (pairwise: which of A and B);
``system``, ``user``, ``assistant_prefix``
    the system message, the user message template and the text the answer is forced to start with;
``passage``
    listwise: the line template of one passage (``{id}``, ``{text}``);
``passage_ack``, ``prefix_ack``, ``suffix``
    listwise multi-turn (RankGPT): the assistant acknowledgements after the first user turn and after
    each passage turn, and the final user turn;
``ids``
    listwise: the default identifier scheme (``numeric``, ``upper``, ``lower``, ``mixed``);
``think_open``, ``think_close``, ``answer_open``, ``answer_close``
    reasoning formats (``answer_open = ""`` means the answer follows ``</think>`` without tags);
``answer_pattern``, ``answer_exact``
    reasoning formats read as the reference reads them: its regular expression over the output (group 1 the
    answer; anything it does not match is unusable) and whether the answer must be exactly one label
    (:class:`~rerank_plugins.engine.reasoning.ReasoningFormat`);
``max_new_tokens``
    the reference's generation budget (reasoning prompts), the reasoning ranker's default.

Placeholders: ``{query}``, ``{num}`` (passages in the window), ``{passages}`` (the rendered passage lines,
single-turn only), ``{id_kind}`` (``numerical`` / ``alphabetical``), ``{example}`` (``[2] > [1]`` in the
window's scheme), ``{example_forward}`` (``[1] > [2]``, RankGPT's original example), ``{text}`` (pointwise
passage), ``{max_grade}`` (graded scale), ``{a}`` / ``{b}`` (pairwise
passages). Passage text has its
whitespace collapsed and bracketed numbers rewritten (``[3]`` -> ``(3)``) so it cannot imitate an identifier,
as rank_llm does.
"""

from __future__ import annotations

import re
import string
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal, cast

from ..engine.identifiers import IdScheme, get_scheme
from ..engine.reasoning import ReasoningFormat
from ..errors import ConfigError
from ..types import ChatPrompt, Message
from ..validation import check_int

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

__all__ = ["PromptTemplate", "clean_passage", "get_prompt", "list_prompts", "load_prompt_file"]

Kind = Literal["listwise", "pointwise", "pairwise"]
OutputFormat = Literal["permutation", "best", "yes_no", "grade", "choice"]
_KINDS = ("listwise", "pointwise", "pairwise")
_FORMATS = ("permutation", "best", "yes_no", "grade", "choice")
_FORMATS_OF = {"listwise": ("permutation", "best"), "pointwise": ("yes_no", "grade"), "pairwise": ("choice",)}
_PLACEHOLDERS = {
    "listwise": {"query", "num", "id_kind", "example", "example_forward", "passages"},
    "pointwise": {"query", "text", "max_grade"},
    "pairwise": {"query", "a", "b"},
}
_FIELDS = {
    "name", "version", "description", "source", "kind", "output_format", "system", "user", "assistant_prefix",
    "passage", "passage_ack", "prefix_ack", "suffix", "ids", "think_open", "think_close", "answer_open",
    "answer_close", "answer_pattern", "answer_exact", "max_new_tokens",
}
_BRACKETED = re.compile(r"\[(\s*\w{1,3}\s*)\]")


def clean_passage(text: str, max_words: int | None = None) -> tuple[str, bool]:
    """Collapse whitespace, rewrite ``[x]`` to ``(x)`` and keep at most ``max_words`` words.

    Returns the text and whether it was cut.
    """
    words = text.split()
    cut = max_words is not None and len(words) > max_words
    if cut:
        words = words[:max_words]
    return _BRACKETED.sub(r"(\1)", " ".join(words)), cut


@dataclass(frozen=True)
class PromptTemplate:
    """A loaded prompt template (see the module docstring for the fields)."""

    name: str
    version: str
    kind: Kind
    output_format: OutputFormat
    user: str
    system: str | None = None
    assistant_prefix: str = ""
    passage: str = "[{id}] {text}"
    passage_ack: str | None = None
    prefix_ack: str | None = None
    suffix: str | None = None
    ids: str = "numeric"
    reasoning: ReasoningFormat | None = None
    description: str = ""
    source: str = ""
    #: the reference's generation budget for this prompt (reasoning prompts), if it has one
    max_new_tokens: int | None = None

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"

    @property
    def multi_turn(self) -> bool:
        return self.passage_ack is not None

    # ------------------------------------------------------------------ rendering
    def render_listwise(self, query: str, passages: Sequence[str], scheme: IdScheme | str | None = None) -> ChatPrompt:
        """Render a window; ``passages`` are already cleaned (:func:`clean_passage`), best-first input order."""
        if self.kind != "listwise":
            raise ConfigError(f"prompt {self.key} is {self.kind}, not listwise")
        ids = get_scheme(scheme if scheme is not None else self.ids)
        n = len(passages)
        labels = ids.labels(n)
        values = {"query": query, "num": n, "id_kind": ids.kind, "example": ids.example(max(n, 2)),
                  "example_forward": f"[{ids.label(0)}] > [{ids.label(1)}]"}
        lines = [self.passage.format(id=label, text=text) for label, text in zip(labels, passages)]
        messages: list[Message] = []
        if self.system:
            messages.append({"role": "system", "content": self.system.format(**values)})
        if self.multi_turn:
            messages.append({"role": "user", "content": self.user.format(**values)})
            messages.append({"role": "assistant", "content": (self.prefix_ack or "").format(**values)})
            for label, line in zip(labels, lines):
                messages.append({"role": "user", "content": line})
                messages.append({"role": "assistant", "content": (self.passage_ack or "").format(id=label)})
            messages.append({"role": "user", "content": (self.suffix or "").format(**values)})
        else:
            body = "".join(line + "\n" for line in lines)
            messages.append({"role": "user", "content": self.user.format(passages=body, **values)})
        return ChatPrompt(tuple(messages), self.assistant_prefix.format(**values))

    def render_pointwise(self, query: str, text: str, *, max_grade: int | None = None) -> ChatPrompt:
        """Render one (query, passage) prompt; ``text`` is already cleaned."""
        return self._render_single("pointwise", {"query": query, "text": text, "max_grade": max_grade})

    def render_pairwise(self, query: str, a: str, b: str) -> ChatPrompt:
        """Render one (query, passage A, passage B) comparison; ``a`` and ``b`` are already cleaned."""
        return self._render_single("pairwise", {"query": query, "a": a, "b": b})

    def _render_single(self, kind: str, values: dict[str, Any]) -> ChatPrompt:
        """The one-turn prompt of a ``kind`` template: system, user and assistant prefix filled with ``values``."""
        if self.kind != kind:
            raise ConfigError(f"prompt {self.key} is {self.kind}, not {kind}")
        return ChatPrompt.of(
            self.user.format(**values),
            system=self.system.format(**values) if self.system else None,
            assistant_prefix=self.assistant_prefix.format(**values),
        )


# ---------------------------------------------------------------------------------------------- loading
def _placeholders(template: str) -> set[str]:
    return {f for _, f, _, _ in string.Formatter().parse(template) if f}


def _validate(data: Mapping[str, Any], where: str) -> PromptTemplate:
    unknown = set(data) - _FIELDS
    if unknown:
        raise ConfigError(f"{where}: unknown fields {sorted(unknown)}")
    for required in ("name", "version", "kind", "output_format", "user"):
        if not isinstance(data.get(required), (str, int)) or str(data.get(required)).strip() == "":
            raise ConfigError(f"{where}: missing or empty field {required!r}")
    kind, fmt = data["kind"], data["output_format"]
    if kind not in _KINDS:
        raise ConfigError(f"{where}: kind must be one of {_KINDS}, got {kind!r}")
    if fmt not in _FORMATS or fmt not in _FORMATS_OF[kind]:
        raise ConfigError(f"{where}: output_format {fmt!r} does not fit kind {kind!r}")
    allowed = _PLACEHOLDERS[kind]
    for field in ("system", "user", "assistant_prefix", "suffix", "prefix_ack"):
        extra = _placeholders(str(data.get(field) or "")) - allowed
        if extra:
            raise ConfigError(f"{where}: field {field!r} uses unknown placeholders {sorted(extra)}")
    multi = data.get("passage_ack") is not None
    if kind == "listwise" and not multi and "passages" not in _placeholders(data["user"]):
        raise ConfigError(f"{where}: a single-turn listwise 'user' template needs a {{passages}} placeholder")
    if multi and not data.get("suffix"):
        raise ConfigError(f"{where}: a multi-turn listwise prompt needs a 'suffix' (the final user turn)")
    if fmt == "grade" and "max_grade" not in _placeholders(data["user"]):
        raise ConfigError(f"{where}: a graded prompt must state the scale with {{max_grade}}")
    reasoning = None
    if data.get("think_close"):
        answer_open = data.get("answer_open") or None
        answer_close = data.get("answer_close") or None
        try:
            reasoning = ReasoningFormat(
                data.get("think_open", ""), data["think_close"], answer_open, answer_close,
                pattern=data.get("answer_pattern") or None, exact_label=bool(data.get("answer_exact", False)),
            )
        except ValueError as exc:
            raise ConfigError(f"{where}: {exc}") from None
    get_scheme(data.get("ids", "numeric"))
    return PromptTemplate(
        name=str(data["name"]),
        version=str(data["version"]),
        kind=cast(Kind, kind),
        output_format=cast(OutputFormat, fmt),
        user=data["user"],
        system=data.get("system") or None,
        assistant_prefix=data.get("assistant_prefix", ""),
        passage=data.get("passage", "[{id}] {text}"),
        passage_ack=data.get("passage_ack"),
        prefix_ack=data.get("prefix_ack"),
        suffix=data.get("suffix"),
        ids=data.get("ids", "numeric"),
        reasoning=reasoning,
        description=data.get("description", ""),
        source=data.get("source", ""),
        max_new_tokens=_budget(data.get("max_new_tokens"), where),
    )


def _budget(value: Any, where: str) -> int | None:
    if value is None:
        return None
    return check_int(f"{where}: max_new_tokens", value, 1)


def load_prompt_file(path: str | Path) -> PromptTemplate:
    """Load and validate a prompt TOML file from disk."""
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"prompt file {p} does not exist") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"prompt file {p} is not valid TOML: {exc}") from None
    return _validate(data, str(p))


def _version_key(version: str) -> tuple[int | str, ...]:
    return tuple(int(x) if x.isdigit() else x for x in version.split("."))


@lru_cache(maxsize=1)
def _bundled() -> dict[str, dict[str, PromptTemplate]]:
    out: dict[str, dict[str, PromptTemplate]] = {}
    for entry in resources.files(__name__).iterdir():
        if not entry.name.endswith(".toml"):
            continue
        template = _validate(tomllib.loads(entry.read_text(encoding="utf-8")), f"bundled prompt {entry.name}")
        if template.version in out.get(template.name, {}):
            raise ConfigError(f"bundled prompt {template.key} is defined twice")
        out.setdefault(template.name, {})[template.version] = template
    return out


def list_prompts() -> dict[str, list[str]]:
    """Bundled prompt names and their versions (oldest first)."""
    return {name: sorted(versions, key=_version_key) for name, versions in sorted(_bundled().items())}


def get_prompt(name: str | PromptTemplate, version: str | int | None = None) -> PromptTemplate:
    """A bundled prompt by name (newest version unless ``version``), a path to a TOML file, or a template."""
    if isinstance(name, PromptTemplate):
        return name
    bundled = _bundled()
    if name not in bundled:
        if name.endswith(".toml") or Path(name).is_file():
            return load_prompt_file(name)
        raise ConfigError(f"unknown prompt {name!r}; bundled prompts: {sorted(bundled)}")
    versions = bundled[name]
    if version is None:
        return versions[max(versions, key=_version_key)]
    if str(version) not in versions:
        raise ConfigError(f"prompt {name!r} has no version {version!r}; versions: {sorted(versions, key=_version_key)}")
    return versions[str(version)]
