"""Sequence-to-sequence rerankers on ``AutoModelForSeq2SeqLM``: monoT5 (pointwise) and duoT5 (pairwise).

monoT5 (Nogueira et al. 2020) reads ``Query: {query} Document: {document} Relevant:`` and scores the first decoder
step's logits of the label tokens ``▁true`` / ``▁false``: the score is ``P(true)``, the softmax over those two
logits, as rerankers 0.10.0 ``T5Ranker._get_scores`` (``rerankers/models/t5ranker.py``) computes it;
``score="log-probability"`` gives ``log P(true)`` as castorini/pygaggle's ``MonoT5.rescore``
(``pygaggle/rerank/transformer.py``), and ``"logit"`` the raw ``true`` logit (rerankers' ``return_logits``).

duoT5 (Pradeep et al. 2021) reads ``Query: {query} Document0: {d_i} Document1: {d_j} Relevant:`` for every ordered
pair ``(i, j)`` of candidates and takes ``p_ij = P(true)`` as the probability that ``d_i`` is more relevant than
``d_j``. Scores aggregate both orders as pygaggle's ``DuoT5.rescore`` does: ``s_i = sum_j p_ij + sum_j (1 - p_ji)``
("sym-sum"). That is ``n (n - 1)`` forward passes for ``n`` candidates: use duoT5 on a short head of the list
(the paper reranks monoT5's top 50), e.g. in a cascade.

Both tokenise each rendered prompt once and run length-sorted, token-budgeted batches (encoder plus one decoder
step, under ``torch.inference_mode``); identical prompts run once. A prompt that fits ``max_length`` is encoded
exactly as the references encode it.

Long documents follow the length policy (:mod:`rerank_plugins.engine.length_policy`). The references cut the end
of the rendered string (rerankers' ``T5Ranker`` tokenises with ``truncation="longest_first"``), and with it
``Relevant:``; here ``long_documents="truncate"`` (the default) cuts the document (duoT5: the parts share the room
as ``longest_first`` shares it) at a token boundary, measured on the whole rendered prompt, so the template's tail
survives, with one warning per call naming how many were cut. The cut is searched over the tokenizer's cut points
(:func:`~rerank_plugins.engine.length_policy.cut_points`), so a standalone SentencePiece ``▁`` that shares the
next character's offset cannot stall it. monoT5's ``long_documents="chunk"`` scores token windows that each fit
(``max_chunks``, ``chunk_overlap``) and aggregates them (``chunk_aggregate``: ``"max"``, MaxP, by default), with the
best window's span in ``details["best_chunk"]``; duoT5 refuses to chunk (it would score every pair of windows of
every pair of documents).
"""

from __future__ import annotations

import copy
import itertools
import os
from collections.abc import Callable, Sequence
from functools import partial
from typing import Any, cast

from .._optional import require
from ..backends.device import resolve_device, resolve_dtype
from ..backends.encoders import load_seq2seq_lm, load_tokenizer
from ..base import BatchedReranker, Reranker, Scores
from ..engine.batching import run_batched
from ..engine.length_policy import (
    DocumentPlan,
    LengthPolicy,
    call_stats,
    document_score,
    fit_span,
    plan_document,
    policy_from_options,
    token_offsets,
    warn_truncated,
)
from ..errors import BackendError, ConfigError
from ..refs import ModelLike, resolve_model
from ..types import Candidate, LoadedModel, Query
from ..validation import check_int
from ._compose import candidate_texts
from .cross_encoder import CPU_TOKEN_BUDGET

__all__ = ["DuoT5Reranker", "MonoT5Reranker", "Seq2SeqScorer"]

MONO_TEMPLATE = "Query: {query} Document: {document} Relevant:"
DUO_TEMPLATE = "Query: {query} Document0: {document0} Document1: {document1} Relevant:"
SCORES = ("probability", "log-probability", "logit")


class Seq2SeqScorer:
    """Load a seq2seq model once and score rendered prompts by the label logits of the first decoder step."""

    def __init__(
        self,
        model: ModelLike | LoadedModel,
        *,
        token_true: str,
        token_false: str,
        max_length: int,
        batch_size: int,
        max_tokens: int | None,
        device: str | None,
        dtype: str | None,
        tokenizer: str | Any | None,
        trust_remote_code: bool,
    ) -> None:
        self._torch = require("torch", "hf", purpose="seq2seq reranking")
        transformers = require("transformers", "hf", purpose="seq2seq reranking")
        if isinstance(model, transformers.PreTrainedModel):
            if tokenizer is None:
                raise ConfigError("pass tokenizer= (a path or tokenizer) with an already-built transformers model")
            self.model_id = getattr(model, "name_or_path", None) or f"{type(model).__name__}@{id(model):x}"
            hf_model = model
            tok_source: Any = tokenizer
        else:
            ref = resolve_model(cast(ModelLike, model))  # a loaded model took the branch above
            self.model_id = ref.bundled_name or ref.name_or_path
            hf_model = load_seq2seq_lm(ref, trust_remote_code=trust_remote_code)
            tok_source = tokenizer if tokenizer is not None else (ref.tokenizer or ref.name_or_path)
        if isinstance(tok_source, str):
            tok_source = load_tokenizer(tok_source, trust_remote_code=trust_remote_code)
        self.tokenizer = tok_source
        if not getattr(self.tokenizer, "is_fast", False):
            raise ConfigError(
                f"seq2seq reranking needs a fast (Rust) tokenizer; {type(self.tokenizer).__name__} is not one"
            )
        self.label_ids = [self._single_token(token_false, "token_false"), self._single_token(token_true, "token_true")]
        self.device = resolve_device(device)
        self.dtype = resolve_dtype(dtype, self.device)
        self.model = hf_model.to(device=self.device, dtype=self.dtype).eval()
        start = self.model.config.decoder_start_token_id
        if start is None:
            raise ConfigError(f"{self.model_id} has no decoder_start_token_id in its config")
        self.decoder_start = int(start)
        limit = getattr(self.tokenizer, "model_max_length", None)
        self.max_length = min(max_length, limit) if isinstance(limit, int) and 0 < limit < 1_000_000 else max_length
        self.batch_size = batch_size
        self.max_tokens = max_tokens if max_tokens is not None else (
            CPU_TOKEN_BUDGET if self.device.type == "cpu" else None
        )
        self.closed = False

    def _single_token(self, token: str, label: str) -> int:
        token_id = self.tokenizer.convert_tokens_to_ids(token)
        if token_id is None or (token_id == self.tokenizer.unk_token_id and token != self.tokenizer.unk_token):
            raise ConfigError(
                f"{label} {token!r} is not a single token of {self.model_id}'s tokenizer; pass the piece the model "
                "was trained to emit (monoT5: '\u2581true' / '\u2581false')"
            )
        return int(token_id)

    # ------------------------------------------------------------------ prompts
    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, verbose=False)["input_ids"])

    def _offsets(self, text: str) -> list[tuple[int, int]]:
        return token_offsets(self.tokenizer, text)

    def _part_length(self, text: str, start: int, end: int) -> int:
        return len(self._offsets(text[start:end]))

    def encode_documents(
        self, policy: LengthPolicy, render: Callable[[str], str], documents: Sequence[str], who: str
    ) -> tuple[list[DocumentPlan], list[list[list[int]]]]:
        """The plan of each document under ``policy`` and the token ids of each of its spans' prompts (one
        tokenizer call for all prompts that fit; an overlong one is cut or chunked at token boundaries, measured
        on the whole rendered prompt, so the template's tail always survives)."""
        if not documents:
            return [], []
        full = self.tokenizer([render(d) for d in documents], verbose=False)["input_ids"]
        plans: list[DocumentPlan] = []
        rows: list[list[list[int]]] = []
        for doc, ids in zip(documents, full):
            if len(ids) <= self.max_length:
                plans.append(DocumentPlan(((0, len(doc)),), False))
                rows.append([list(ids)])
                continue
            seen: dict[tuple[int, int], list[int]] = {}

            def measure(s: int, e: int, doc: str = doc, seen: dict[tuple[int, int], list[int]] = seen) -> int:
                if (s, e) not in seen:
                    seen[(s, e)] = self._ids(render(doc[s:e]))
                return len(seen[(s, e)])

            plan = plan_document(policy, len(doc), self.max_length, measure, partial(self._offsets, doc),
                                 full_length=len(ids), who=who)
            for s, e in plan.spans:
                measure(s, e)
            plans.append(plan)
            rows.append([seen[span] for span in plan.spans])
        return plans, rows

    def fit(self, render: Callable[[list[str]], str], parts: list[str]) -> tuple[list[int], bool]:
        """Token ids of ``render(parts)`` cut to ``max_length``: the parts share the room left by the template as
        ``"longest_first"`` shares it (the longer part is cut first), each cut at a token boundary; then, should
        re-tokenising the joined prompt still overflow, the longest part is fitted against the whole prompt."""
        ids = self._ids(render(parts))
        if len(ids) <= self.max_length:
            return ids, False
        parts = list(parts)
        empty = len(self._ids(render([""] * len(parts))))
        if empty > self.max_length:
            raise ConfigError(f"max_length={self.max_length} leaves no room for documents after the template and "
                              f"query ({empty} tokens); raise max_length or shorten the query")
        room = self.max_length - empty
        counts = [len(o) for o in (self._offsets(p) for p in parts)]
        share, left = [0] * len(parts), room
        for n_left, k in enumerate(sorted(range(len(parts)), key=lambda i: counts[i])):
            share[k] = min(counts[k], left // (len(parts) - n_left))
            left -= share[k]
        for k, part in enumerate(parts):
            if counts[k] > share[k]:
                s, e = fit_span(partial(self._part_length, part), self._offsets(part), len(part), share[k])
                parts[k] = part[s:e]
        for k in sorted(range(len(parts)), key=lambda i: -len(parts[i])):
            ids = self._ids(render(parts))
            if len(ids) <= self.max_length:
                break
            part = parts[k]

            def measure(s: int, e: int, k: int = k, part: str = part) -> int:
                return len(self._ids(render([part[s:e] if i == k else p for i, p in enumerate(parts)])))

            s, e = fit_span(measure, self._offsets(part), len(part), self.max_length)
            parts[k] = part[s:e]
        ids = self._ids(render(parts))
        return ids, True

    # ------------------------------------------------------------------ model
    def label_logits(self, rows: Sequence[list[int]]) -> list[tuple[float, float]]:
        """``(false, true)`` logits of the first decoder step for each token row (batched, order kept)."""
        return run_batched(
            [len(r) for r in rows],
            lambda idx: self._forward([rows[i] for i in idx]),
            max_batch_size=self.batch_size,
            max_tokens=self.max_tokens,
            desc="seq2seq",
        )

    def _forward(self, rows: list[list[int]]) -> list[tuple[float, float]]:
        if self.closed:
            raise BackendError(f"the seq2seq model {self.model_id} is closed")
        torch = self._torch
        width = max(len(r) for r in rows)
        pad = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        ids = torch.full((len(rows), width), pad, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for k, row in enumerate(rows):
            ids[k, : len(row)] = torch.tensor(row, dtype=torch.long)
            mask[k, : len(row)] = 1
        start = torch.full((len(rows), 1), self.decoder_start, dtype=torch.long)
        with torch.inference_mode():
            out = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device),
                             decoder_input_ids=start.to(self.device), use_cache=False)
            logits = out.logits[:, -1, :][:, self.label_ids].float().cpu()
        return [(float(a), float(b)) for a, b in logits.tolist()]

    def close(self) -> None:
        self.model = None
        self.closed = True


def _score_of(pair: tuple[float, float], mode: str) -> float:
    import math

    false, true = pair
    if mode == "logit":
        return true
    top = max(false, true)
    log_z = top + math.log(math.exp(false - top) + math.exp(true - top))
    return true - log_z if mode == "log-probability" else math.exp(true - log_z)


class _Seq2SeqReranker(Reranker):
    def __init__(
        self,
        model: Any,
        *,
        template: str,
        token_true: str,
        token_false: str,
        max_length: int,
        batch_size: int,
        max_tokens: int | None,
        policy: LengthPolicy,
        device: str | None,
        dtype: str | None,
        tokenizer: Any,
        trust_remote_code: bool,
    ) -> None:
        check_int("max_length", max_length, 1)
        check_int("batch_size", batch_size, 1)
        check_int("max_tokens", max_tokens, 1, optional=True)
        if not isinstance(template, str):
            raise ConfigError(f"template must be a str, got {type(template).__name__}")
        for label, token in (("token_true", token_true), ("token_false", token_false)):
            if not isinstance(token, str) or not token:
                raise ConfigError(f"{label} must be a non-empty str, got {token!r}")
        self.template = template
        self.policy = policy
        self.scorer = Seq2SeqScorer(
            model, token_true=token_true, token_false=token_false, max_length=max_length, batch_size=batch_size,
            max_tokens=max_tokens, device=device, dtype=dtype, tokenizer=tokenizer,
            trust_remote_code=trust_remote_code,
        )
        self.tokenizer = self.scorer.tokenizer
        self.max_length = self.scorer.max_length
        short = os.path.basename(self.scorer.model_id.rstrip("/\\")) or self.scorer.model_id
        self.name = f"{self.name}:{short}"

    @property
    def long_documents(self) -> str:
        """The length policy's mode (``"truncate"`` or ``"chunk"``), read from :attr:`policy`."""
        return self.policy.long_documents

    def with_length_policy(self, policy: LengthPolicy) -> _Seq2SeqReranker:
        """A copy sharing this reranker's model and tokenizer that follows ``policy`` (``long_documents``,
        ``max_chunks``, ``chunk_overlap``, ``chunk_aggregate``): how the service honours a per-request
        ``long_document_strategy`` / ``max_chunks_per_doc``. This reranker itself when ``policy`` is its own."""
        if policy == self.policy:
            return self
        self._check_policy(policy)
        clone = copy.copy(self)
        clone.policy = policy
        return clone

    def _check_policy(self, policy: LengthPolicy) -> None:
        """Refuse a policy this strategy cannot follow (a :class:`ConfigError` saying why)."""

    def close(self) -> None:
        """Drop the model. Idempotent."""
        self.scorer.close()


class MonoT5Reranker(_Seq2SeqReranker, BatchedReranker):
    """monoT5 pointwise reranking: ``P(true)`` after ``Query: … Document: … Relevant:`` (see the module docstring).

    Args:
        model: a local folder, a hub id, a :class:`~rerank_plugins.models.ModelRef`, or a built transformers
            seq2seq model (then pass ``tokenizer``).
        template: the prompt, with ``{query}`` and ``{document}``.
        token_true / token_false: the label pieces (each one token of the model's tokenizer).
        score: ``"probability"`` (rerankers' ``T5Ranker``), ``"log-probability"`` (pygaggle) or ``"logit"``.
        max_length: tokens per prompt (EOS included).
        batch_size / max_tokens: prompts / padded tokens per forward pass (``max_tokens`` ``None``: 4096 on CPU).
        long_documents / max_chunks / chunk_overlap / chunk_aggregate: the length policy
            (:mod:`rerank_plugins.engine.length_policy`): ``"truncate"`` (default; the document is cut at a token
            boundary so ``Relevant:`` survives, one warning per call) or ``"chunk"`` (token windows that each fit
            beside the query and template, aggregated by ``"max"``, ``"first"`` or ``"mean"``; the best window's
            span is in ``details["best_chunk"]``). ``"warn"`` is a deprecated spelling of ``"truncate"``.
        device / dtype / tokenizer / trust_remote_code: as for the cross-encoder.
    """

    name = "monot5"

    def __init__(
        self,
        model: ModelLike | LoadedModel,
        *,
        template: str = MONO_TEMPLATE,
        token_true: str = "\u2581true",
        token_false: str = "\u2581false",
        score: str = "probability",
        max_length: int = 512,
        batch_size: int = 32,
        max_tokens: int | None = None,
        long_documents: str | None = None,
        max_chunks: int | None = None,
        chunk_overlap: int | None = None,
        chunk_aggregate: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        tokenizer: str | Any | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        policy = policy_from_options(long_documents=long_documents, max_chunks=max_chunks,
                                     chunk_overlap=chunk_overlap, chunk_aggregate=chunk_aggregate)
        if score not in SCORES:
            raise ConfigError(f"score must be one of {SCORES}, got {score!r}")
        if not isinstance(template, str) or "{query}" not in template or "{document}" not in template:
            raise ConfigError("template must contain {query} and {document}")
        self.score = score
        super().__init__(
            model, template=template, token_true=token_true, token_false=token_false, max_length=max_length,
            batch_size=batch_size, max_tokens=max_tokens, policy=policy, device=device,
            dtype=dtype, tokenizer=tokenizer, trust_remote_code=trust_remote_code,
        )

    def encode(self, query: str, documents: Sequence[str]) -> tuple[list[DocumentPlan], list[list[list[int]]]]:
        """The plan of each document under the length policy and the token ids of its prompts (one per span)."""
        return self.scorer.encode_documents(
            self.policy, lambda d: self.template.format(query=query, document=d), documents, self.name
        )

    def _score_many(self, queries: Sequence[Query], lists: Sequence[Sequence[Candidate]]) -> list[Scores]:
        plans: list[DocumentPlan] = []
        doc_rows: list[list[list[int]]] = []
        for q, cands in zip(queries, lists):
            p, r = self.encode(q.text, candidate_texts(cands, self.name))
            plans.extend(p)
            doc_rows.extend(r)
        # identical prompts (repeated documents, repeated windows) run once
        distinct: dict[tuple[int, ...], int] = {}
        for rows in doc_rows:
            for row in rows:
                distinct.setdefault(tuple(row), len(distinct))
        logits = self.scorer.label_logits([list(r) for r in distinct])
        warn_truncated(self.name, sum(p.truncated for p in plans), len(plans), self.max_length,
                       chunking=self.policy.chunking)
        stats = {"prompts": sum(len(r) for r in doc_rows), **call_stats(plans, len(distinct))}
        out, start = [], 0
        for cands in lists:
            values: list[float] = []
            details: list[dict[str, Any]] = []
            for plan, rows in zip(plans[start : start + len(cands)], doc_rows[start : start + len(cands)]):
                value, info = document_score(
                    self.policy, plan, [_score_of(logits[distinct[tuple(r)]], self.score) for r in rows]
                )
                values.append(value)
                details.append(info)
            start += len(cands)
            out.append(Scores(values, details=details, extra=stats))
        return out


class DuoT5Reranker(_Seq2SeqReranker):
    """duoT5 pairwise reranking: every ordered pair, ``P(true)`` that Document0 beats Document1, sym-sum aggregated.

    Args: as :class:`MonoT5Reranker` (``template`` has ``{query}``, ``{document0}`` and ``{document1}``; no
    ``score`` option: the aggregate is a sum of probabilities in ``[0, 2 (n - 1)]``).
    """

    name = "duot5"

    def __init__(
        self,
        model: ModelLike | LoadedModel,
        *,
        template: str = DUO_TEMPLATE,
        token_true: str = "\u2581true",
        token_false: str = "\u2581false",
        max_length: int = 512,
        batch_size: int = 32,
        max_tokens: int | None = None,
        long_documents: str | None = None,
        device: str | None = None,
        dtype: str | None = None,
        tokenizer: str | Any | None = None,
        trust_remote_code: bool = False,
    ) -> None:
        policy = policy_from_options(long_documents=long_documents)
        self._check_policy(policy)
        if not isinstance(template, str) or not all(k in template for k in ("{query}", "{document0}", "{document1}")):
            raise ConfigError("template must contain {query}, {document0} and {document1}")
        super().__init__(
            model, template=template, token_true=token_true, token_false=token_false, max_length=max_length,
            batch_size=batch_size, max_tokens=max_tokens, policy=policy, device=device,
            dtype=dtype, tokenizer=tokenizer, trust_remote_code=trust_remote_code,
        )

    def _check_policy(self, policy: LengthPolicy) -> None:
        if policy.chunking:
            raise ConfigError(
                "duoT5 compares two whole documents per prompt, so long_documents='chunk' would score every pair "
                "of windows of every pair of documents; chunk with monoT5 first (long_documents='chunk'), then "
                "give duoT5 the head of that list with long_documents='truncate'"
            )

    def encode_pair(self, query: str, document0: str, document1: str) -> tuple[list[int], bool]:
        """Token ids of one duoT5 prompt and whether it was cut to fit ``max_length``."""
        return self.scorer.fit(
            lambda p: self.template.format(query=query, document0=p[0], document1=p[1]), [document0, document1]
        )

    def pair_probabilities(self, query: str, documents: Sequence[str]) -> dict[tuple[int, int], float]:
        """``P(document i more relevant than document j)`` for every ordered pair ``(i, j)``, ``i != j``."""
        return self._pair_probabilities(query, documents)[0]

    def _pair_probabilities(self, query: str, documents: Sequence[str]) -> tuple[dict[tuple[int, int], float], int]:
        pairs = list(itertools.permutations(range(len(documents)), 2))

        def render(p: list[str]) -> str:
            return self.template.format(query=query, document0=p[0], document1=p[1])

        rows: list[list[int]] = []
        cut = 0
        if pairs:
            full = self.tokenizer([render([documents[i], documents[j]]) for i, j in pairs], verbose=False)
            for (i, j), ids in zip(pairs, full["input_ids"]):
                if len(ids) > self.max_length:
                    ids, _ = self.scorer.fit(render, [documents[i], documents[j]])
                    cut += 1
                rows.append(list(ids))
        # identical prompts (repeated documents) run once, so equal documents get exactly equal scores
        distinct: dict[tuple[int, ...], int] = {}
        for row in rows:
            distinct.setdefault(tuple(row), len(distinct))
        logits = self.scorer.label_logits([list(r) for r in distinct])
        return {pair: _score_of(logits[distinct[tuple(row)]], "probability") for pair, row in zip(pairs, rows)}, cut

    def _score(self, query: Query, candidates: Sequence[Candidate]) -> Scores:
        docs = candidate_texts(candidates, self.name)
        probs, cut = self._pair_probabilities(query.text, docs)
        scores = [0.0] * len(docs)
        for (i, j), p in probs.items():
            scores[i] += p
            scores[j] += 1.0 - p
        warn_truncated(self.name, cut, len(probs), self.max_length, unit="prompts (document pairs)")
        return Scores(scores, extra={"pairs": len(probs), "truncated": cut})
