"""Pointwise LLM relevance: P(yes) or an expected grade, from one forward pass per (query, passage).

:class:`PointwiseLLMReranker` renders one prompt per candidate and reads the log-probabilities of the answer
labels as the first generated token (:meth:`~rerank_plugins.backends.base.LLMBackend.label_logprobs`; never
``generate``):

``mode="yes_no"``
    the score is ``P(yes) / (P(yes) + P(no))`` over the single-token spellings of yes and no
    (:func:`rerank_plugins.engine.logits.yes_probability`); details: ``p_yes``, ``logprob_yes``,
    ``logprob_no``, ``labels``.
``mode="graded"``
    the score is the expected grade over ``0..max_grade`` (ERank's 0-10 scale; 0-9 when the model splits
    ``"10"``, see :func:`~rerank_plugins.engine.logits.choose_grade_scale`) divided by the top grade, so it lies
    in [0, 1] whatever the scale; details: ``expected_grade``, ``max_grade``, ``distribution``.

Passages longer than ``max_passage_words`` are cut with a warning (``long_passages="truncate"``), or split into
chunks of that many words whose best score is kept (``long_passages="chunk"``; ``details["chunks"]``).
Prompts of all queries are scored together in batches of ``batch_size``.

Model recipes (token-level prompts)
    A public reranker (Qwen3-Reranker, bge-reranker-v2-gemma, mxbai-rerank v2; see
    :mod:`rerank_plugins.recipes.pointwise`) is reproduced exactly with ``prompt_format=`` a
    :class:`~rerank_plugins.engine.token_prompt.TokenPromptFormat`: the prompt ids are assembled piece by piece
    the way the reference code assembles them (no chat template, no whitespace cleaning of the passage, cuts at
    the token level to ``max_length``, BOS as the format says) and sent pre-tokenised
    (:attr:`~rerank_plugins.backends.base.ChatPrompt.token_ids`, with the same prompt as text in ``raw`` for
    servers that take text). ``instruction=`` fills ``{instruction}`` (default: the format's). ``labels`` are
    then one yes and one no spelling, each of which must tokenise alone to a single token of the loaded
    tokenizer (else :class:`~rerank_plugins.errors.ConfigError` naming them), and all prompts of a call go to
    the backend at once (it sorts them by length and batches them under its token budget).

Score formulas (``score=``, yes/no mode; ``lp`` a label's log-probability, ``z`` its raw logit)
    ``"p_yes"`` (default) ``exp(lp_yes) / (exp(lp_yes) + exp(lp_no))``, the log-softmax over [no, yes] of
    Qwen3-Reranker; ``"logit"`` ``z_yes`` (FlagEmbedding ``normalize=False``); ``"sigmoid"`` ``sigmoid(z_yes -
    score_shift)`` (FlagEmbedding ``normalize=True``); ``"logit_diff"`` ``z_yes - z_no`` (mxbai-rerank v2, equal to
    ``lp_yes - lp_no``); ``"sigmoid_diff"`` ``sigmoid(z_yes - z_no - score_shift)`` (mxbai-rerank ``normalize=True``
    with ``score_shift = estimated_max / 2``). ``logit`` and ``sigmoid`` need raw logits
    (:meth:`~rerank_plugins.backends.base.LLMBackend.label_logits`: the transformers backend); the others work
    from log-probabilities on every backend. The logit formulas need exactly one yes and one no spelling.
"""

from __future__ import annotations

import math
import os
import warnings
from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, cast

from ..backends.base import ChatPrompt, LLMBackend
from ..base import BatchedReranker, Scores
from ..engine.logits import (
    KNOWN_YES_NO_LABELS,
    BinaryLabels,
    choose_grade_scale,
    choose_yes_no_labels,
    graded_expectation,
    yes_probability,
)
from ..engine.token_prompt import TokenPromptFormat, build_token_prompt
from ..errors import ConfigError, InvalidInputError, ModelOutputError
from ..prompts import PromptTemplate, clean_passage, get_prompt
from ..refs import ModelRef
from ..types import Candidate, Query
from ..validation import check_choice, check_int, check_number
from ._llm import batched_label_logprobs, release_backend, resolve_backend, warn_truncated

__all__ = ["GradedLLMReranker", "PointwiseLLMReranker", "YesNoLLMReranker"]

_MODES = ("yes_no", "graded")
_LONG = ("truncate", "chunk")
_SCORES = ("p_yes", "logit", "sigmoid", "logit_diff", "sigmoid_diff")
_RAW_SCORES = ("logit", "sigmoid")


def _sigmoid(x: float) -> float:
    if x >= 0:
        return 1.0 / (1.0 + math.exp(-x))
    e = math.exp(x)
    return e / (1.0 + e)


class LabelAnswer(ABC):
    """How a pointwise LLM's answer is read: which label tokens the backend is asked about (:attr:`labels`, as
    log-probabilities, or raw logits when :attr:`raw_logits`) and what one row of them scores (:meth:`read`).
    The one contract for both answer types, yes/no and graded, in the spirit of transformers' logits processors."""

    labels: list[str]
    raw_logits: bool = False

    @abstractmethod
    def read(self, row: list[float]) -> tuple[float, dict[str, Any]]:
        """The score of one row (one value per label) and its details; unusable rows are a ModelOutputError."""


class YesNoAnswer(LabelAnswer):
    """P(yes) (``score="p_yes"``), or a formula on the yes/no log-probabilities or raw logits (``score=``)."""

    def __init__(self, labels: BinaryLabels, score: str, shift: float) -> None:
        self.binary, self.score, self.shift = labels, score, shift
        self.labels = labels.labels
        self.raw_logits = score in _RAW_SCORES

    def read(self, row: list[float]) -> tuple[float, dict[str, Any]]:
        if self.raw_logits:
            z_yes, z_no = (float(v) for v in row)
            if not (math.isfinite(z_yes) and math.isfinite(z_no)):
                raise ModelOutputError(f"the model returned invalid logits for yes/no: {row}")
            value = z_yes if self.score == "logit" else _sigmoid(z_yes - self.shift)
            return value, {"logit_yes": z_yes, "logit_no": z_no, "labels": self.labels}
        p, lp_yes, lp_no = yes_probability(row, self.binary)
        details: dict[str, Any] = {"p_yes": p, "logprob_yes": lp_yes, "logprob_no": lp_no}
        details["labels"] = self.labels
        if self.score == "p_yes":
            return p, details
        if not (math.isfinite(lp_yes) and math.isfinite(lp_no)):
            raise ModelOutputError(f"score={self.score!r} needs both yes and no log-probabilities, got {row}")
        diff = lp_yes - lp_no
        details["logit_diff"] = diff
        return (diff if self.score == "logit_diff" else _sigmoid(diff - self.shift)), details


class GradedAnswer(LabelAnswer):
    """The expected grade over the grade tokens ``0..max_grade``, divided by ``max_grade`` (ERank-style)."""

    def __init__(self, max_grade: int) -> None:
        self.max_grade = max_grade
        self.labels = [str(g) for g in range(max_grade + 1)]

    def read(self, row: list[float]) -> tuple[float, dict[str, Any]]:
        expected, dist = graded_expectation(row)
        return expected / self.max_grade, {
            "expected_grade": expected,
            "max_grade": self.max_grade,
            "distribution": tuple(dist),
        }


class PointwiseLLMReranker(BatchedReranker):
    """Pointwise yes/no or graded relevance from an LLM's first-token log-probabilities (see the module docstring).

    Args:
        model: an :class:`~rerank_plugins.backends.base.LLMBackend`, or a name/path/ModelRef to load.
        mode: ``"yes_no"`` or ``"graded"``.
        prompt / prompt_version: default ``"yes-no"`` or ``"graded"``; any pointwise template of that format.
        batch_size: prompts per backend call.
        labels: yes/no spellings ``{"yes": [...], "no": [...]}``; default: the model's entry in
            :data:`~rerank_plugins.engine.logits.KNOWN_YES_NO_LABELS` (exact model id), else the usual
            spellings; only single-token ones are used.
        max_grade: top of the graded scale (default 10, ERank).
        max_passage_words / long_passages: see the module docstring (``None`` keeps passages whole).
        prompt_format: a token-level prompt format (model recipes; module docstring), instead of ``prompt``.
        instruction: the task instruction of ``prompt_format`` (``None``: the format's default).
        max_length: token budget of ``prompt_format`` (``None``: the format's).
        score / score_shift: the score formula of yes/no mode (module docstring).
        backend / backend_options: how to load ``model``.
    """

    kind = "pointwise-llm"

    def __init__(
        self,
        model: str | os.PathLike[str] | ModelRef | LLMBackend,
        *,
        mode: str = "yes_no",
        prompt: str | PromptTemplate | None = None,
        prompt_version: str | int | None = None,
        batch_size: int = 16,
        labels: BinaryLabels | Mapping[str, Sequence[str]] | None = None,
        max_grade: int = 10,
        max_passage_words: int | None = 300,
        long_passages: str = "truncate",
        prompt_format: TokenPromptFormat | Mapping[str, Any] | None = None,
        instruction: str | None = None,
        max_length: int | None = None,
        score: str | None = None,
        score_shift: float = 0.0,
        backend: str = "transformers",
        backend_options: dict[str, Any] | None = None,
    ) -> None:
        self.mode = check_choice("mode", mode, _MODES)
        self.prompt_format = TokenPromptFormat.from_options(prompt_format) if prompt_format is not None else None
        if self.prompt_format is not None and (prompt is not None or prompt_version is not None):
            raise ConfigError("pass either prompt_format (a token-level format) or prompt, not both")
        if self.prompt_format is not None and self.mode != "yes_no":
            raise ConfigError("prompt_format supports mode='yes_no' only")
        if instruction is not None and (not isinstance(instruction, str) or self.prompt_format is None):
            raise ConfigError("instruction must be a string and applies to a prompt_format (a model recipe) only")
        self.instruction = instruction
        self.max_length = check_int("max_length", max_length, 1, optional=True)
        if max_length is not None and self.prompt_format is None:
            raise ConfigError("max_length (a token budget) applies to a prompt_format only")
        if score is not None and self.mode != "yes_no":
            raise ConfigError("score applies to mode='yes_no' only")
        self.score = check_choice("score", score if score is not None else "p_yes", _SCORES)
        self.score_shift = float(check_number("score_shift", score_shift, finite=True))
        check_int("batch_size", batch_size, 1)
        self.batch_size: int = batch_size
        self.max_passage_words = check_int("max_passage_words", max_passage_words, 1, optional=True)
        self.long_passages = check_choice("long_passages", long_passages, _LONG)
        if self.long_passages == "chunk" and max_passage_words is None:
            raise ConfigError("long_passages='chunk' needs max_passage_words (the chunk length)")
        check_int("max_grade", max_grade, 1)
        if labels is not None and self.mode != "yes_no":
            raise ConfigError("labels apply to mode='yes_no' only")
        self.template = get_prompt(prompt if prompt is not None else self._default_prompt(), prompt_version)
        wanted = "yes_no" if self.mode == "yes_no" else "grade"
        if self.template.kind != "pointwise" or self.template.output_format != wanted:
            raise ConfigError(f"prompt {self.template.key} does not produce {wanted!r} answers for mode={mode!r}")
        labels_given = _label_table(labels) if labels is not None else None
        single_pair = self.score != "p_yes" or self.prompt_format is not None
        if single_pair and labels_given is not None and (len(labels_given.yes) != 1 or len(labels_given.no) != 1):
            raise ConfigError(
                f"score={self.score!r} and prompt formats need exactly one yes and one no label, got "
                f"{labels_given.yes} / {labels_given.no}"
            )
        self.backend, self._owns_backend = resolve_backend(model, backend, backend_options)
        single = self.backend.single_token
        self._static_ids: dict[str, list[int]] = {}
        if self.prompt_format is not None:
            chosen = labels_given if labels_given is not None else BinaryLabels(("yes",), ("no",))
            self._check_alone_single(chosen)
            self.labels: BinaryLabels | None = chosen
            self.max_grade: int | None = None
        elif self.mode == "yes_no":
            table = labels_given if labels_given is not None else KNOWN_YES_NO_LABELS.get(self.backend.model_id)
            self.labels = choose_yes_no_labels(single, table)
            self.max_grade = None
            if self.score != "p_yes" and (len(self.labels.yes) != 1 or len(self.labels.no) != 1):
                raise ConfigError(
                    f"score={self.score!r} needs exactly one yes and one no label; pass labels={{'yes': [...], "
                    f"'no': [...]}} (the single-token spellings here: {self.labels.yes} / {self.labels.no})"
                )
        else:
            self.labels = None
            self.max_grade = choose_grade_scale(single, max_grade)
        self.answer: LabelAnswer = (
            YesNoAnswer(self.labels, self.score, self.score_shift) if self.labels is not None
            else GradedAnswer(cast(int, self.max_grade))
        )
        self._label_list = self.answer.labels
        self.name = f"{'yes-no' if self.mode == 'yes_no' else 'graded'}:{self.backend.model_id}"

    def _default_prompt(self) -> str:
        return "yes-no" if self.mode == "yes_no" else "graded"

    def _check_alone_single(self, labels: BinaryLabels) -> None:
        bad: list[str] = []
        for label in labels.labels:
            ids = self.backend.tokenize_text(label)
            if len(ids) != 1:
                bad.append(f"{label!r} -> {len(ids)} tokens {list(ids)}")
        if bad:
            raise ConfigError(
                f"the labels of this prompt format must each be one token of {self.backend.model_id}'s tokenizer; "
                f"not single tokens: {', '.join(bad)}"
            )

    # ------------------------------------------------------------------ Reranker
    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        prompts: list[ChatPrompt] = []
        owners: list[tuple[int, int]] = []  # (query index, candidate index) of each prompt
        truncated = 0
        token_cut = 0
        cut_flags: list[list[bool]] = []
        for qi, (query, cands) in enumerate(zip(queries, lists)):
            flags = []
            for ci, cand in enumerate(cands):
                chunks, was_cut = self._chunks(cand)
                truncated += was_cut
                for chunk in chunks:
                    if self.prompt_format is not None:
                        prompt, cut = self._token_prompt(query.text, chunk)
                        token_cut += cut
                        was_cut = was_cut or cut
                    else:
                        prompt = self.template.render_pointwise(query.text, chunk, max_grade=self.max_grade)
                    prompts.append(prompt)
                    owners.append((qi, ci))
                flags.append(was_cut)
            cut_flags.append(flags)
        warn_truncated(truncated, self.max_passage_words, type(self).__name__)
        if token_cut:
            warnings.warn(
                f"{type(self).__name__}: {token_cut} prompt(s) longer than max_length="
                f"{self._effective_max_length()} tokens were cut at the token level (as the model's reference "
                "code does); pass a larger max_length, or long_passages='chunk' with max_passage_words, to keep "
                "whole passages",
                UserWarning,
                stacklevel=4,
            )

        call = self.backend.label_logits if self.answer.raw_logits else self.backend.label_logprobs
        step = None if self.prompt_format is not None else self.batch_size
        rows = batched_label_logprobs(self.backend, prompts, self._label_list, step, call=call)

        best: list[list[tuple[float, dict[str, Any]] | None]] = [[None] * len(c) for c in lists]
        chunks_seen: list[list[int]] = [[0] * len(c) for c in lists]
        for (qi, ci), row in zip(owners, rows):
            try:
                score, details = self.answer.read(row)
            except ModelOutputError as exc:
                cid = lists[qi][ci].id
                raise ModelOutputError(f"{self.name}: candidate {cid!r}: {exc}", raw_text=str(row)) from None
            chunks_seen[qi][ci] += 1
            current = best[qi][ci]
            if current is None or score > current[0]:
                best[qi][ci] = (score, details)

        results: list[Scores] = []
        for qi, cands in enumerate(lists):
            values: list[float] = []
            per_candidate: list[dict[str, Any]] = []
            for ci in range(len(cands)):
                entry = best[qi][ci]
                assert entry is not None
                values.append(entry[0])
                d = dict(entry[1])
                if chunks_seen[qi][ci] > 1:
                    d["chunks"] = chunks_seen[qi][ci]
                if cut_flags[qi][ci]:
                    d["truncated"] = True
                per_candidate.append(d)
            results.append(
                Scores(values=values, details=per_candidate, extra={"mode": self.mode, "prompt": self.template.key})
            )
        return results

    def build_prompts(self, query: str, passages: Sequence[str]) -> list[ChatPrompt]:
        """The exact prompts this reranker sends for ``query`` and each passage (one per passage; with
        ``long_passages="chunk"`` the first chunk's): for a ``prompt_format``, their ``token_ids`` are the ids
        the model reads."""
        out: list[ChatPrompt] = []
        for n, text in enumerate(passages):
            chunk = self._chunks(Candidate(id=str(n), text=text))[0][0]
            if self.prompt_format is not None:
                out.append(self._token_prompt(query, chunk)[0])
            else:
                out.append(self.template.render_pointwise(query, chunk, max_grade=self.max_grade))
        return out

    def close(self) -> None:
        release_backend(self.backend, self._owns_backend)

    # ------------------------------------------------------------------ helpers
    def _effective_max_length(self) -> int | None:
        assert self.prompt_format is not None
        return self.max_length if self.max_length is not None else self.prompt_format.max_length

    def _token_prompt(self, query: str, text: str) -> tuple[ChatPrompt, bool]:
        assert self.prompt_format is not None
        built = build_token_prompt(
            self.prompt_format, self.backend.tokenize_text, query, text, instruction=self.instruction,
            max_length=self.max_length, bos_token_id=self.backend.bos_token_id,
            context_length=self.backend.context_length, static_ids=self._static_ids,
        )
        ids = built.ids[1:] if built.bos_added else built.ids
        raw = self.backend.detokenize(ids) if built.truncated else "".join(built.pieces)
        prompt = ChatPrompt(raw=raw, token_ids=built.ids, add_special_tokens=built.bos_added)
        return prompt, built.truncated

    def _chunks(self, cand: Candidate) -> tuple[list[str], bool]:
        if cand.text is None:
            raise InvalidInputError(f"{type(self).__name__} ranks text; candidate {cand.id!r} has no text")
        if self.prompt_format is not None:
            # the reference code reads the passage as it is: no whitespace collapsing, no [x] rewriting
            words = cand.text.split()
            size = self.max_passage_words
            if size is None or len(words) <= size:
                return [cand.text], False
            if self.long_passages == "chunk":
                return [" ".join(words[i : i + size]) for i in range(0, len(words), size)], False
            return [" ".join(words[:size])], True
        if self.long_passages == "chunk":
            assert self.max_passage_words is not None
            words = cand.text.split()
            size = self.max_passage_words
            pieces = [" ".join(words[i : i + size]) for i in range(0, len(words), size)] or [""]
            return [clean_passage(p)[0] for p in pieces], False
        text, cut = clean_passage(cand.text, self.max_passage_words)
        return [text], cut


def _label_table(labels: BinaryLabels | Mapping[str, Sequence[str]]) -> BinaryLabels:
    if isinstance(labels, BinaryLabels):
        return labels
    if not isinstance(labels, Mapping):
        raise ConfigError(f"labels must be a mapping {{'yes': [...], 'no': [...]}}, got {type(labels).__name__}")
    try:
        yes, no = labels["yes"], labels["no"]
    except KeyError as exc:
        raise ConfigError(f"yes/no labels must be a mapping with 'yes' and 'no' keys, missing {exc}") from None
    if isinstance(yes, str) or isinstance(no, str):
        raise ConfigError("labels['yes'] and labels['no'] must be lists of spellings, not strings")
    return BinaryLabels(tuple(yes), tuple(no))


class YesNoLLMReranker(PointwiseLLMReranker):
    """:class:`PointwiseLLMReranker` with ``mode="yes_no"`` (``load_reranker(model, kind="yes-no")``)."""

    kind = "yes-no"

    def __init__(self, model: str | os.PathLike[str] | ModelRef | LLMBackend, **options: Any) -> None:
        if options.pop("mode", "yes_no") != "yes_no":
            raise ConfigError("YesNoLLMReranker always uses mode='yes_no'")
        super().__init__(model, mode="yes_no", **options)


class GradedLLMReranker(PointwiseLLMReranker):
    """:class:`PointwiseLLMReranker` with ``mode="graded"`` (``load_reranker(model, kind="graded")``)."""

    kind = "graded"

    def __init__(self, model: str | os.PathLike[str] | ModelRef | LLMBackend, **options: Any) -> None:
        if options.pop("mode", "graded") != "graded":
            raise ConfigError("GradedLLMReranker always uses mode='graded'")
        super().__init__(model, mode="graded", **options)
