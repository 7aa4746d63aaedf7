"""First-stage retrieval for evaluation: BM25 (bm25s), dense (faiss + the bundled MiniLM) and reciprocal-rank fusion.

Each function returns a ``Run``: ``{qid: [(doc_id, score), ...]}`` best first. Ties are broken by document order in
the corpus, so runs are deterministic.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .._optional import require
from ..errors import ConfigError
from ..validation import check_int
from .datasets import Dataset
from .trec import Run

__all__ = [
    "FIRST_STAGES",
    "BM25Retriever",
    "DenseRetriever",
    "Tokenizer",
    "bm25_run",
    "dense_run",
    "first_stage_run",
    "reciprocal_rank_fusion",
]

FIRST_STAGES = ("bm25", "dense", "fusion")


@dataclass(frozen=True)
class Tokenizer:
    """Regex tokenizer shared by our BM25 and any reference implementation it is compared with.

    ``pattern`` is bm25s's default (words of two or more word characters); ``stopwords`` is ``None`` (keep every
    word), ``"english"`` (bm25s's English list) or an iterable of words; ``stemmer`` is any ``str -> str`` callable
    (for example ``Stemmer.Stemmer("english").stemWord`` from PyStemmer).
    """

    lowercase: bool = True
    stopwords: frozenset[str] = field(default_factory=frozenset)
    stemmer: Callable[[str], str] | None = None
    pattern: str = r"(?u)\b\w\w+\b"

    @classmethod
    def build(
        cls,
        *,
        lowercase: bool = True,
        stopwords: str | Iterable[str] | None = None,
        stemmer: Callable[[str], str] | None = None,
        pattern: str | None = None,
    ) -> Tokenizer:
        if stopwords is None:
            words: frozenset[str] = frozenset()
        elif isinstance(stopwords, str):
            if stopwords not in ("english", "en"):
                raise ConfigError(f"stopwords must be None, 'english' or a list of words, got {stopwords!r}")
            words = frozenset(require("bm25s.stopwords", "eval", purpose="BM25 stopwords").STOPWORDS_EN)
        else:
            words = frozenset(stopwords)
        return cls(lowercase, words, stemmer, pattern if pattern is not None else cls.pattern)

    def __call__(self, text: str) -> list[str]:
        if self.lowercase:
            text = text.lower()
        tokens = [t for t in re.findall(self.pattern, text) if t not in self.stopwords]
        if self.stemmer is not None:
            tokens = [self.stemmer(t) for t in tokens]
        return tokens


def _top(scores: Any, doc_ids: Sequence[str], k: int) -> list[tuple[str, float]]:
    np = require("numpy", "eval")
    k = min(k, len(doc_ids))
    # stable sort on -score: equal scores keep corpus order (deterministic ties)
    order = np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")[:k]
    return [(doc_ids[i], float(scores[i])) for i in order]


class BM25Retriever:
    """BM25 over an in-memory corpus with bm25s (Lucene variant by default: k1=1.5, b=0.75)."""

    def __init__(
        self,
        *,
        k1: float = 1.5,
        b: float = 0.75,
        method: str = "lucene",
        tokenizer: Tokenizer | None = None,
        progress: bool = False,
    ) -> None:
        if k1 < 0 or not 0 <= b <= 1:
            raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={k1}, b={b}")
        self.k1, self.b, self.method = float(k1), float(b), method
        self.tokenizer = tokenizer if tokenizer is not None else Tokenizer()
        self.progress = bool(progress)
        self._bm25: Any = None
        self.doc_ids: list[str] = []

    def index(self, doc_ids: Sequence[str], texts: Sequence[str]) -> BM25Retriever:
        if len(doc_ids) != len(texts):
            raise ConfigError(f"{len(doc_ids)} document ids but {len(texts)} texts")
        if not doc_ids:
            raise ConfigError("cannot index an empty corpus")
        bm25s = require("bm25s", "eval", purpose="BM25 first-stage retrieval")
        self._bm25 = bm25s.BM25(k1=self.k1, b=self.b, method=self.method)
        self._bm25.index([self.tokenizer(t) for t in texts], show_progress=self.progress)
        self.doc_ids = list(doc_ids)
        return self

    def score_all(self, text: str) -> Any:
        """BM25 score of every indexed document for one query (numpy array in corpus order)."""
        if self._bm25 is None:
            raise ConfigError("call index() before searching")
        ids = self._bm25.get_tokens_ids(self.tokenizer(text))
        np = require("numpy", "eval")
        if not ids:
            return np.zeros(len(self.doc_ids), dtype=np.float32)
        return self._bm25.get_scores_from_ids(ids)

    def search(self, queries: Mapping[str, str], k: int = 100) -> Run:
        tqdm = require("tqdm", "eval").tqdm
        items = tqdm(queries.items(), desc="BM25", disable=not self.progress, total=len(queries))
        return {qid: _top(self.score_all(text), self.doc_ids, k) for qid, text in items}


class DenseRetriever:
    """Exact inner-product search (faiss ``IndexFlatIP``) over normalised embeddings.

    ``embedder`` is anything with ``embed_documents(texts)`` and ``embed_queries(texts)`` returning float32 arrays
    (an :class:`~rerank_plugins.rankers.embedding.EmbeddingReranker`); by default the bundled MiniLM.
    """

    def __init__(self, embedder: Any = None, *, model: str = "minilm", progress: bool = False) -> None:
        if embedder is None:
            from ..rankers.embedding import EmbeddingReranker

            embedder = EmbeddingReranker(model, normalize=True, progress=progress)
        self.embedder = embedder
        self.progress = bool(progress)
        self._index: Any = None
        self.doc_ids: list[str] = []

    def index(self, doc_ids: Sequence[str], texts: Sequence[str]) -> DenseRetriever:
        if len(doc_ids) != len(texts):
            raise ConfigError(f"{len(doc_ids)} document ids but {len(texts)} texts")
        faiss = require("faiss", "faiss", purpose="dense first-stage retrieval")
        emb = self._normalise(self.embedder.embed_documents(list(texts)))
        self._index = faiss.IndexFlatIP(emb.shape[1])
        self._index.add(emb)
        self.doc_ids = list(doc_ids)
        return self

    @staticmethod
    def _normalise(emb: Any) -> Any:
        np = require("numpy", "eval")
        emb = np.ascontiguousarray(emb, dtype=np.float32)
        norms = np.linalg.norm(emb, axis=1, keepdims=True)
        return np.ascontiguousarray(emb / np.maximum(norms, 1e-12), dtype=np.float32)

    def search(self, queries: Mapping[str, str], k: int = 100) -> Run:
        if self._index is None:
            raise ConfigError("call index() before searching")
        qids = list(queries)
        if not qids:
            return {}
        q_emb = self._normalise(self.embedder.embed_queries([queries[q] for q in qids]))
        scores, idx = self._index.search(q_emb, min(k, len(self.doc_ids)))
        return {
            qid: [(self.doc_ids[int(i)], float(s)) for s, i in zip(scores[row], idx[row]) if i >= 0]
            for row, qid in enumerate(qids)
        }


def _corpus(dataset: Dataset) -> tuple[list[str], list[str]]:
    ids = list(dataset.corpus)
    return ids, [dataset.document_text(d) for d in ids]


def bm25_run(
    dataset: Dataset,
    k: int = 100,
    *,
    k1: float = 1.5,
    b: float = 0.75,
    method: str = "lucene",
    stopwords: str | Iterable[str] | None = None,
    stemmer: Callable[[str], str] | None = None,
    lowercase: bool = True,
    progress: bool = False,
) -> Run:
    """BM25 top-``k`` for every query of ``dataset`` (lowercase, no stemming, no stopwords by default)."""
    tok = Tokenizer.build(lowercase=lowercase, stopwords=stopwords, stemmer=stemmer)
    retriever = BM25Retriever(k1=k1, b=b, method=method, tokenizer=tok, progress=progress)
    return retriever.index(*_corpus(dataset)).search(dataset.queries, k)


def dense_run(dataset: Dataset, k: int = 100, *, embedder: Any = None, progress: bool = False) -> Run:
    """Dense top-``k`` (faiss, cosine of MiniLM embeddings unless ``embedder`` is given)."""
    retriever = DenseRetriever(embedder, progress=progress)
    return retriever.index(*_corpus(dataset)).search(dataset.queries, k)


def reciprocal_rank_fusion(
    runs: Sequence[Mapping[str, Sequence[tuple[str, float]]]], k: int = 60, depth: int | None = None
) -> Run:
    """Reciprocal-rank fusion: ``score(d) = sum over runs of 1 / (k + rank)`` (rank 1-based); ties keep the order
    in which documents were first met (run by run). Per query, the one implementation in
    :func:`rerank_plugins.engine.fusion.reciprocal_rank_fusion`; ``depth`` cuts the fused list."""
    from ..engine.fusion import reciprocal_rank_fusion as fuse_rrf

    if k < 0:
        raise ConfigError(f"RRF k must be >= 0, got {k}")
    if not runs:
        raise ConfigError("reciprocal_rank_fusion needs at least one run")
    qids: dict[str, None] = {}
    for run in runs:
        qids.update(dict.fromkeys(run))
    fused: Run = {}
    for qid in qids:
        ranked = fuse_rrf([list(run.get(qid, ())) for run in runs], k=k)
        fused[qid] = ranked if depth is None else ranked[:depth]
    return fused


def first_stage_run(
    dataset: Dataset,
    name: str,
    depth: int = 100,
    *,
    embedder: Any = None,
    progress: bool = False,
    cache: dict[str, Run] | None = None,
    bm25_options: Mapping[str, Any] | None = None,
) -> Run:
    """``"bm25"``, ``"dense"`` or ``"fusion"`` (RRF, k=60, of BM25 and dense, each taken to ``depth``).

    ``cache`` (a dict) lets callers share the BM25/dense runs between several first stages.
    """
    if name not in FIRST_STAGES:
        raise ConfigError(f"unknown first stage {name!r}; choose one of {FIRST_STAGES}")
    check_int("depth", depth, 1)
    memo = cache if cache is not None else {}
    key = f"{name}@{depth}"
    if key in memo:
        return memo[key]
    if name == "bm25":
        run = bm25_run(dataset, depth, progress=progress, **dict(bm25_options or {}))
    elif name == "dense":
        run = dense_run(dataset, depth, embedder=embedder, progress=progress)
    else:
        parts = [
            first_stage_run(
                dataset, n, depth, embedder=embedder, progress=progress, cache=memo, bm25_options=bm25_options
            )
            for n in ("bm25", "dense")
        ]
        run = reciprocal_rank_fusion(parts, k=60, depth=depth)
    memo[key] = run
    return run
