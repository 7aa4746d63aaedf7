"""First-stage retrieval for evaluation: BM25 (bm25s), dense (faiss + the bundled MiniLM) and reciprocal-rank fusion.

Each function returns a ``Run``: ``{qid: [(doc_id, score), ...]}`` best first. Ties are broken by document order in
the corpus, so runs are deterministic.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from .._optional import require
from .._warnings import caller_stacklevel
from ..errors import ConfigError
from ..validation import check_int
from .cache import RunCache
from .datasets import Dataset
from .trec import Run

__all__ = [
    "FIRST_STAGES",
    "FIRST_STAGE_ALIASES",
    "BM25Retriever",
    "DenseRetriever",
    "FirstStageSettings",
    "Tokenizer",
    "bm25_run",
    "canonical_first_stage",
    "dense_run",
    "first_stage_run",
    "make_stemmer",
    "reciprocal_rank_fusion",
]

FIRST_STAGES = ("bm25", "dense", "rrf")
#: old names still accepted (with a FutureWarning): ``fusion`` was the RRF first stage's name before ``rrf``
FIRST_STAGE_ALIASES = {"fusion": "rrf"}


def canonical_first_stage(name: str) -> str:
    """``name`` itself for one of :data:`FIRST_STAGES`; ``"rrf"`` for the old ``"fusion"`` (FutureWarning at the
    caller's line); :class:`~rerank_plugins.errors.ConfigError` for anything else."""
    if name in FIRST_STAGES:
        return name
    if name in FIRST_STAGE_ALIASES:
        new = FIRST_STAGE_ALIASES[name]
        warnings.warn(
            f"the first stage {name!r} is now called {new!r}; {name!r} will be removed",
            FutureWarning,
            stacklevel=caller_stacklevel(),
        )
        return new
    raise ConfigError(f"unknown first stage {name!r}; choose one of {FIRST_STAGES}")


def make_stemmer(language: str) -> tuple[Callable[[str], str], str]:
    """A Snowball stemmer for ``language`` (``"english"``...) and the name of its implementation: PyStemmer's
    (what bm25s uses) when installed, else NLTK's ``SnowballStemmer`` (the same Snowball algorithms)."""
    try:
        import Stemmer  # PyStemmer

        return Stemmer.Stemmer(language).stemWord, f"pystemmer-{language}"
    except ImportError:
        pass
    except KeyError as exc:
        raise ConfigError(f"PyStemmer has no stemmer for {language!r}") from exc
    try:
        from nltk.stem.snowball import SnowballStemmer
    except ImportError as exc:
        raise ConfigError(f"stemming needs PyStemmer or nltk: pip install PyStemmer ({exc})") from exc
    try:
        return SnowballStemmer(language).stem, f"nltk-snowball-{language}"
    except ValueError as exc:
        raise ConfigError(f"no Snowball stemmer for {language!r}: {exc}") from exc


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

    def index(self, doc_ids: Sequence[str], texts: Sequence[str], *, embeddings: Any = None) -> DenseRetriever:
        """Index the documents; ``embeddings`` (one row per document, e.g. read from a cache) skips embedding."""
        if len(doc_ids) != len(texts):
            raise ConfigError(f"{len(doc_ids)} document ids but {len(texts)} texts")
        faiss = require("faiss", "faiss", purpose="dense first-stage retrieval")
        raw = self.embedder.embed_documents(list(texts)) if embeddings is None else embeddings
        if len(raw) != len(doc_ids):
            raise ConfigError(f"{len(raw)} document embeddings for {len(doc_ids)} documents")
        emb = self._normalise(raw)
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


@dataclass(frozen=True)
class FirstStageSettings:
    """What a first stage is computed with (the command line's ``--bm25-*``, ``--dense-model``, ``--rrf-k``).

    ``stemmer`` is ``None`` (no stemming) or a Snowball language (``"english"``); ``stopwords`` ``None`` or
    ``"english"`` (bm25s's list). Defaults: bm25s Lucene BM25 k1=1.5 b=0.75, lowercase, no stemming, no stopwords;
    MiniLM (all-MiniLM-L6-v2) cosine; RRF k=60.
    """

    k1: float = 1.5
    b: float = 0.75
    method: str = "lucene"
    stemmer: str | None = None
    stopwords: str | None = None
    dense_model: str = "minilm"
    rrf_k: int = 60

    def __post_init__(self) -> None:
        if self.k1 < 0 or not 0 <= self.b <= 1:
            raise ConfigError(f"BM25 needs k1 >= 0 and 0 <= b <= 1, got k1={self.k1}, b={self.b}")
        if self.stopwords not in (None, "english", "en"):
            raise ConfigError(f"stopwords must be None or 'english', got {self.stopwords!r}")
        check_int("rrf_k", self.rrf_k, 0)

    def bm25_options(self) -> dict[str, Any]:
        """Keyword arguments of :func:`bm25_run` (the stemmer built from its name)."""
        stem = make_stemmer(self.stemmer)[0] if self.stemmer is not None else None
        return {"k1": self.k1, "b": self.b, "method": self.method, "stopwords": self.stopwords, "stemmer": stem}

    def key(self, stage: str) -> dict[str, Any]:
        """The settings that change the run of ``stage`` (the cache key's part)."""
        bm25 = {k: v for k, v in asdict(self).items() if k in ("k1", "b", "method", "stopwords")}
        if self.stemmer is not None:
            bm25["stemmer"] = make_stemmer(self.stemmer)[1]
        if stage == "bm25":
            return {"bm25": bm25}
        if stage == "dense":
            return {"dense": self.dense_model}
        return {"bm25": bm25, "dense": self.dense_model, "rrf_k": self.rrf_k}


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


def dense_run(
    dataset: Dataset,
    k: int = 100,
    *,
    embedder: Any = None,
    progress: bool = False,
    model: str = "minilm",
    disk_cache: RunCache | None = None,
) -> Run:
    """Dense top-``k`` (faiss, cosine of ``model`` embeddings unless ``embedder`` is given).

    With ``disk_cache`` the document embeddings of ``model`` are read from it when this corpus was embedded
    before (keyed by the corpus content and the model's weight files), and written to it otherwise.
    """
    ids, texts = _corpus(dataset)
    if disk_cache is not None and embedder is None:
        key = {"kind": "doc-embeddings", "corpus": dataset.content_hash("corpus"), "model": _model_key(model)}
        holder: list[DenseRetriever] = []

        def embed() -> Any:
            holder.append(DenseRetriever(None, model=model, progress=progress))
            return holder[0].embedder.embed_documents(texts)

        doc_emb = disk_cache.embeddings(key, embed)
        retriever = holder[0] if holder else _LazyDense(model, progress)
        return retriever.index(ids, texts, embeddings=doc_emb).search(dataset.queries, k)
    retriever = DenseRetriever(embedder, model=model, progress=progress)
    return retriever.index(ids, texts).search(dataset.queries, k)


class _LazyDense:
    """A :class:`DenseRetriever` whose model is loaded only when queries are embedded (documents came from the
    cache)."""

    def __init__(self, model: str, progress: bool) -> None:
        self.model, self.progress = model, progress

    def index(self, doc_ids: Sequence[str], texts: Sequence[str], *, embeddings: Any) -> DenseRetriever:
        retriever = DenseRetriever(_LazyEmbedder(self.model, self.progress), progress=self.progress)
        return retriever.index(doc_ids, texts, embeddings=embeddings)


class _LazyEmbedder:
    def __init__(self, model: str, progress: bool) -> None:
        self.model, self.progress = model, progress
        self._inner: Any = None

    def embed_queries(self, texts: list[str]) -> Any:
        if self._inner is None:
            from ..rankers.embedding import EmbeddingReranker

            self._inner = EmbeddingReranker(self.model, normalize=True, progress=self.progress)
        return self._inner.embed_queries(texts)


def _model_key(model: str) -> dict[str, Any]:
    """What identifies a dense model's weights: the resolved reference and a fingerprint of each weight file."""
    from ..file_cache import fingerprint
    from .provenance import weight_files

    resolved, files = weight_files(model)
    return {"name": model, "resolved": resolved, "files": {p.name: fingerprint(p) for p in files}}


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
    settings: FirstStageSettings | None = None,
    disk_cache: RunCache | None = None,
) -> Run:
    """``"bm25"``, ``"dense"`` or ``"rrf"`` (reciprocal-rank fusion of BM25 and dense, each taken to ``depth``;
    ``"fusion"`` is its old name, accepted with a FutureWarning).

    ``settings`` (:class:`FirstStageSettings`) sets BM25, the dense model and RRF's k; ``bm25_options`` (keyword
    arguments of :func:`bm25_run`) is the older way to set BM25 and is not combined with ``settings``. ``cache``
    (a dict) shares runs between several first stages of one evaluation. ``disk_cache`` (a
    :class:`~rerank_plugins.eval.cache.RunCache`) keeps runs and document embeddings on disk between
    evaluations, keyed by the data set's content, the stage, ``depth`` and the settings; it is skipped for
    stages that use a caller's ``embedder`` or ``bm25_options`` (their identity cannot be keyed).
    """
    name = canonical_first_stage(name)
    check_int("depth", depth, 1)
    if settings is not None and bm25_options is not None:
        raise ConfigError("give settings= or bm25_options=, not both")
    conf = settings if settings is not None else FirstStageSettings()
    memo = cache if cache is not None else {}
    mkey = f"{name}@{depth}"
    if mkey in memo:
        return memo[mkey]
    keyable = disk_cache is not None and bm25_options is None and (embedder is None or name == "bm25")
    if keyable and disk_cache is not None:
        key = {
            "kind": "run",
            "stage": name,
            "depth": depth,
            "corpus": dataset.content_hash("corpus"),
            "queries": dataset.content_hash("queries"),
            **conf.key(name),
        }
        run = disk_cache.run(
            key, lambda: _compute(dataset, name, depth, embedder, progress, memo, bm25_options, conf, disk_cache)
        )
    else:
        run = _compute(dataset, name, depth, embedder, progress, memo, bm25_options, conf, None)
    memo[mkey] = run
    return run


def _compute(
    dataset: Dataset,
    name: str,
    depth: int,
    embedder: Any,
    progress: bool,
    memo: dict[str, Run],
    bm25_options: Mapping[str, Any] | None,
    conf: FirstStageSettings,
    disk_cache: RunCache | None,
) -> Run:
    if name == "bm25":
        options = dict(bm25_options) if bm25_options is not None else conf.bm25_options()
        return bm25_run(dataset, depth, progress=progress, **options)
    if name == "dense":
        return dense_run(
            dataset, depth, embedder=embedder, progress=progress, model=conf.dense_model, disk_cache=disk_cache
        )
    parts = [
        first_stage_run(
            dataset,
            part,
            depth,
            embedder=embedder,
            progress=progress,
            cache=memo,
            bm25_options=bm25_options,
            settings=None if bm25_options is not None else conf,
            disk_cache=disk_cache,
        )
        for part in ("bm25", "dense")
    ]
    return reciprocal_rank_fusion(parts, k=conf.rrf_k, depth=depth)
