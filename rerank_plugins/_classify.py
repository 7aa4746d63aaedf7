"""Label ranking: zero-shot classification with any reranker (the GLiClass use case).

The text to classify is the query and the labels are the candidates, so a cross-encoder, an embedding model or
a pointwise LLM judge (yes/no, graded) ranks the labels for the text::

    clf = LabelClassifier(load_reranker("minilm"), temperature=0.05)
    clf.classify("The wing fluttered at Mach 0.9", ["aeroelasticity", "heat transfer", "cooking"])

Scores
    * single-label (default): the reranker's raw scores ``s`` become a softmax ``exp(s / T) / sum exp(s / T)``
      over the labels (``T`` = ``temperature``), so the label scores sum to 1. Choose ``T`` for the reranker's
      scale: cross-encoder logits work with 1; cosines in [-1, 1] need a small ``T`` (0.05 to 0.1) or every
      label gets about the same share. ``predicted`` is the best label, or nothing if a ``threshold`` is given
      and its probability is below it.
    * multi-label: each label keeps the reranker's own score, which depends only on the text and that label
      (a probability for a sigmoid cross-encoder or an LLM yes/no judge, a cosine for an embedding model).
      ``predicted`` holds every label whose score is ``>= threshold``, best first; without a threshold, all
      labels (a ranking).

Labels are given as a list of names, or a mapping ``name -> description``; the text the reranker sees for a
label is ``template.format(label=name, description=description)`` (default ``"{label}"``; a description-less
label has ``description == name``). Label names must be unique.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .base import Reranker
from .errors import ConfigError, InvalidInputError
from .types import Candidate, RankedList
from .validation import check_number

__all__ = ["Classification", "LabelClassifier", "LabelScore", "classify"]


@dataclass(frozen=True, slots=True)
class LabelScore:
    """One label: its score (probability for single-label, the reranker score for multi-label) and raw score."""

    label: str
    score: float
    raw_score: float


@dataclass(frozen=True, slots=True)
class Classification:
    """The labels of one text, best first, and the ones predicted."""

    text: str
    labels: tuple[LabelScore, ...]
    predicted: tuple[str, ...]
    multi_label: bool

    @property
    def top(self) -> str | None:
        """The best predicted label, or ``None`` when none passed the threshold."""
        return self.predicted[0] if self.predicted else None

    def as_dict(self) -> dict[str, float]:
        """``{label: score}``, best first."""
        return {s.label: s.score for s in self.labels}


def _softmax(values: Sequence[float], temperature: float) -> list[float]:
    finite = [v for v in values if math.isfinite(v)]
    if not finite:
        return [1.0 / len(values)] * len(values)
    top = max(finite)
    exps = [math.exp((v - top) / temperature) if math.isfinite(v) else 0.0 for v in values]
    total = sum(exps)
    return [e / total for e in exps]


class LabelClassifier:
    """Rank labels for texts with a reranker (see the module docstring); the reranker is built once by the caller."""

    def __init__(
        self,
        reranker: Reranker | str,
        *,
        multi_label: bool = False,
        threshold: float | None = None,
        temperature: float = 1.0,
        template: str = "{label}",
    ) -> None:
        from .rankers._compose import as_reranker

        self.reranker = as_reranker(reranker, "LabelClassifier reranker")
        self._owned = not isinstance(reranker, Reranker)
        self.multi_label = bool(multi_label)
        self.threshold = _check_threshold(threshold)
        self.temperature = float(check_number("temperature", temperature, above=0))
        if "{label" not in template and "{description" not in template:
            raise ConfigError(f"template must mention {{label}} or {{description}}, got {template!r}")
        self.template = template

    # ------------------------------------------------------------------ helpers
    def _candidates(self, labels: Sequence[str] | Mapping[str, str]) -> list[Candidate]:
        if isinstance(labels, str) or not isinstance(labels, (Sequence, Mapping)):
            raise InvalidInputError(f"labels must be a list of names or a mapping name -> description, got {labels!r}")
        items = list(labels.items()) if isinstance(labels, Mapping) else [(name, name) for name in labels]
        if not items:
            raise InvalidInputError("labels is empty: give at least one label")
        out, seen = [], set()
        for name, description in items:
            if not isinstance(name, str) or not name.strip():
                raise InvalidInputError(f"label names must be non-empty strings, got {name!r}")
            if not isinstance(description, str):
                kind = type(description).__name__
                raise InvalidInputError(f"description of label {name!r} must be a str, got {kind}")
            if name in seen:
                raise InvalidInputError(f"duplicate label {name!r}")
            seen.add(name)
            out.append(Candidate(id=name, text=self.template.format(label=name, description=description)))
        return out

    def _result(
        self, text: str, ranked: RankedList, multi_label: bool, threshold: float | None
    ) -> Classification:
        names = [r.id for r in ranked.results]
        raw = [r.score for r in ranked.results]
        scores = raw if multi_label else _softmax(raw, self.temperature)
        labels = tuple(LabelScore(n, float(s), float(r)) for n, s, r in zip(names, scores, raw))
        if multi_label:
            predicted = tuple(s.label for s in labels if threshold is None or s.score >= threshold)
        else:
            best = labels[0]
            predicted = (best.label,) if threshold is None or best.score >= threshold else ()
        return Classification(text, labels, predicted, multi_label)

    def _options(self, multi_label: bool | None, threshold: float | None) -> tuple[bool, float | None]:
        ml = self.multi_label if multi_label is None else bool(multi_label)
        th = self.threshold if threshold is None else _check_threshold(threshold)
        return ml, th

    def close(self) -> None:
        """Close the reranker if this classifier loaded it from a name (one passed in belongs to the caller)."""
        if self._owned:
            self.reranker.close()

    # ------------------------------------------------------------------ API
    def classify(
        self,
        text: str,
        labels: Sequence[str] | Mapping[str, str],
        *,
        multi_label: bool | None = None,
        threshold: float | None = None,
    ) -> Classification:
        """Rank ``labels`` for ``text``; ``multi_label`` / ``threshold`` override the classifier's settings
        (``threshold=None`` here means the classifier's own threshold)."""
        ml, th = self._options(multi_label, threshold)
        ranked = self.reranker.rerank(text, self._candidates(labels))
        return self._result(text, ranked, ml, th)

    def classify_batch(
        self,
        texts: Sequence[str],
        labels: Sequence[str] | Mapping[str, str],
        *,
        multi_label: bool | None = None,
        threshold: float | None = None,
    ) -> list[Classification]:
        """Classify many texts against the same labels (batched through ``rerank_batch``)."""
        if isinstance(texts, str) or not isinstance(texts, Sequence):
            raise InvalidInputError("texts must be a list of strings (use classify() for one text)")
        ml, th = self._options(multi_label, threshold)
        cands = self._candidates(labels)
        ranked = self.reranker.rerank_batch(list(texts), [cands] * len(texts))
        return [self._result(t, r, ml, th) for t, r in zip(texts, ranked)]



def _check_threshold(threshold: Any) -> float | None:
    if threshold is None:
        return None
    return float(check_number("threshold", threshold, optional=True))


def classify(
    text: str,
    labels: Sequence[str] | Mapping[str, str],
    *,
    reranker: Reranker | str,
    multi_label: bool = False,
    threshold: float | None = None,
    temperature: float = 1.0,
    template: str = "{label}",
) -> Classification:
    """One-shot :class:`LabelClassifier` call. Pass a built reranker to reuse it: a name loads the model each call."""
    clf = LabelClassifier(
        reranker, multi_label=multi_label, threshold=threshold, temperature=temperature, template=template
    )
    return clf.classify(text, labels)
