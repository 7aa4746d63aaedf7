"""Scores read from the log-probabilities of a single answer token (one forward pass, no generation).

* **FIRST** (listwise): after the prompt and the forced prefix ``[``, the log-probability of each passage
  identifier as the first generated token ranks the window (:func:`first_order`). Each identifier must be one
  token for the model, so :func:`choose_id_scheme` tries ``A..Z``, ``a..z``, ``1..N`` and ``A..Za..z`` in
  turn and raises :class:`~rerank_plugins.errors.ConfigError` when none labels the window with single tokens
  (numbers above 9 are several tokens for digit-splitting tokenizers such as Llama 3 and Qwen 2.5).
* **yes/no** (pointwise): ``P(yes) = sum P(yes variants) / (sum P(yes variants) + sum P(no variants))``
  over the spellings in a per-model token table that are single tokens (:func:`choose_yes_no_labels`,
  :func:`yes_probability`).
* **graded** (pointwise, ERank-style 0..10): the expected grade under the distribution of the first token
  renormalised over the grade labels (:func:`graded_expectation`). When ``"10"`` is not a single token its first
  token is ``"1"``, so reading ``P("1")`` as grade 1 would silently move grade-10 mass onto grade 1. The rule
  (:func:`choose_grade_scale`): fall back to the 0..9 scale, and the prompt asks for 0..9 (its ``{max_grade}``
  placeholder), never mixing the two. A scale whose labels are not single tokens is a ``ConfigError``.

Everything here is pure Python over floats; backends supply the log-probabilities.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from ..errors import ConfigError, ModelOutputError
from ..validation import check_int
from .identifiers import IdScheme, get_scheme

__all__ = [
    "DEFAULT_YES_NO",
    "KNOWN_YES_NO_LABELS",
    "BinaryLabels",
    "choose_grade_scale",
    "choose_id_scheme",
    "choose_yes_no_labels",
    "first_order",
    "graded_expectation",
    "logsumexp",
    "yes_probability",
]

SingleToken = Callable[[str], bool]


def logsumexp(values: Sequence[float]) -> float:
    """``log(sum(exp(v)))``, stable, ``-inf`` for an empty or all ``-inf`` input."""
    finite = [v for v in values if v != -math.inf]
    if not finite:
        return -math.inf
    top = max(finite)
    if top == math.inf:
        return math.inf
    return top + math.log(sum(math.exp(v - top) for v in finite))


def _check_finite_or_neg_inf(values: Sequence[float], what: str) -> list[float]:
    out = [float(v) for v in values]
    if any(math.isnan(v) or v == math.inf for v in out):
        raise ModelOutputError(f"the model returned invalid log-probabilities for {what}: {out}")
    return out


# ---------------------------------------------------------------------------------------------- FIRST
def choose_id_scheme(
    single_token: SingleToken,
    n: int,
    preferences: Sequence[str | IdScheme] = ("upper", "lower", "numeric", "mixed"),
) -> IdScheme:
    """The first scheme in ``preferences`` whose ``n`` labels are each a single token for the model."""
    if n < 1:
        raise ConfigError(f"a window needs at least one passage, got {n}")
    reasons: list[str] = []
    for pref in preferences:
        scheme = get_scheme(pref)
        if scheme.capacity is not None and n > scheme.capacity:
            reasons.append(f"{scheme.name}: only {scheme.capacity} labels")
            continue
        bad = [label for label in scheme.labels(n) if not single_token(label)]
        if not bad:
            return scheme
        reasons.append(f"{scheme.name}: {', '.join(repr(b) for b in bad[:4])} not single tokens")
    raise ConfigError(
        f"no identifier scheme labels a window of {n} passages with single tokens for this model "
        f"({'; '.join(reasons)}); use a smaller window_size"
    )


def first_order(logprobs: Sequence[float]) -> tuple[list[int], int]:
    """Window order from the identifiers' first-token log-probabilities (best first).

    Ties keep input order. Identifiers the backend could not see (``-inf``, e.g. outside a server's top
    log-probs) go last in input order; their count is returned as the second value. Raises
    :class:`ModelOutputError` when no identifier has any probability or a value is NaN.
    """
    values = _check_finite_or_neg_inf(logprobs, "the passage identifiers")
    if values and all(v == -math.inf for v in values):
        raise ModelOutputError("the model gives no probability to any passage identifier")
    order = sorted(range(len(values)), key=lambda i: -values[i])
    unseen = sum(1 for v in values if v == -math.inf)
    return order, unseen


# ---------------------------------------------------------------------------------------------- yes / no
@dataclass(frozen=True)
class BinaryLabels:
    """Spellings counted as "yes" and as "no"."""

    yes: tuple[str, ...]
    no: tuple[str, ...]

    def __post_init__(self) -> None:
        if not self.yes or not self.no:
            raise ConfigError("yes/no labels need at least one spelling for each answer")
        if set(self.yes) & set(self.no):
            raise ConfigError(f"a label cannot mean both yes and no: {sorted(set(self.yes) & set(self.no))}")

    @property
    def labels(self) -> list[str]:
        return [*self.yes, *self.no]


#: spellings tried for any model; the ones that are single tokens are used
DEFAULT_YES_NO = BinaryLabels(("yes", " yes", "Yes", " Yes", "YES"), ("no", " no", "No", " No", "NO"))

#: exact model ids (``backend.model_id``) trained on specific spellings: used as is, no single-token search
KNOWN_YES_NO_LABELS: dict[str, BinaryLabels] = {
    "Qwen/Qwen3-Reranker-0.6B": BinaryLabels(("yes",), ("no",)),
    "Qwen/Qwen3-Reranker-4B": BinaryLabels(("yes",), ("no",)),
    "Qwen/Qwen3-Reranker-8B": BinaryLabels(("yes",), ("no",)),
}


def choose_yes_no_labels(
    single_token: SingleToken,
    candidates: BinaryLabels | Mapping[str, Sequence[str]] | None = None,
) -> BinaryLabels:
    """Keep the spellings of ``candidates`` (default :data:`DEFAULT_YES_NO`) that are single tokens."""
    if candidates is None:
        candidates = DEFAULT_YES_NO
    elif not isinstance(candidates, BinaryLabels):
        try:
            candidates = BinaryLabels(tuple(candidates["yes"]), tuple(candidates["no"]))
        except KeyError as exc:
            raise ConfigError(f"yes/no labels must be a mapping with 'yes' and 'no' keys, missing {exc}") from None
    yes = tuple(s for s in candidates.yes if single_token(s))
    no = tuple(s for s in candidates.no if single_token(s))
    if not yes or not no:
        raise ConfigError(
            f"none of the {'yes' if not yes else 'no'} spellings "
            f"{list(candidates.yes if not yes else candidates.no)} is a single token for this model; "
            "pass labels={'yes': [...], 'no': [...]} with single-token spellings"
        )
    return BinaryLabels(yes, no)


def yes_probability(logprobs: Sequence[float], labels: BinaryLabels) -> tuple[float, float, float]:
    """``(P(yes), logP(yes), logP(no))`` from the log-probabilities of ``labels.labels`` (same order)."""
    values = _check_finite_or_neg_inf(logprobs, "yes/no")
    if len(values) != len(labels.yes) + len(labels.no):
        raise ValueError(f"expected {len(labels.labels)} log-probabilities, got {len(values)}")
    lp_yes = logsumexp(values[: len(labels.yes)])
    lp_no = logsumexp(values[len(labels.yes) :])
    if lp_yes == -math.inf and lp_no == -math.inf:
        raise ModelOutputError("the model gives no probability to either 'yes' or 'no'")
    diff = lp_yes - lp_no
    if diff >= 0:
        p = 1.0 / (1.0 + math.exp(-diff))
    else:
        e = math.exp(diff)
        p = e / (1.0 + e)
    return p, lp_yes, lp_no


# ---------------------------------------------------------------------------------------------- graded
def choose_grade_scale(single_token: SingleToken, max_grade: int = 10) -> int:
    """Largest usable grade: ``max_grade`` when ``"0".."max_grade"`` are single tokens; for a scale beyond 9
    whose two-digit grades are not single tokens, 9 (see the module docstring); else ``ConfigError``."""
    check_int("max_grade", max_grade, 1)
    if all(single_token(str(g)) for g in range(max_grade + 1)):
        return max_grade
    if max_grade > 9 and all(single_token(str(g)) for g in range(10)):
        return 9
    bad = [str(g) for g in range(min(max_grade, 9) + 1) if not single_token(str(g))]
    raise ConfigError(f"grade labels {bad} are not single tokens for this model")


def graded_expectation(logprobs: Sequence[float]) -> tuple[float, list[float]]:
    """Expected grade and the distribution over grades ``0..len-1`` (renormalised over the grade labels)."""
    values = _check_finite_or_neg_inf(logprobs, "the grades")
    total = logsumexp(values)
    if total == -math.inf:
        raise ModelOutputError("the model gives no probability to any grade")
    dist = [math.exp(v - total) for v in values]
    return sum(g * p for g, p in enumerate(dist)), dist
