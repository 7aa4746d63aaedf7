"""Evaluation data sets: Cranfield (SMART format), the Zaragoza construction FAQ, BEIR folders.

Every loader returns a :class:`Dataset` whose ``report`` (:class:`LoadReport`) counts what was read and every
problem met (a qrels line that does not parse, a query without judgments, a judgment for an unknown document...).
Nothing is dropped silently: problems are counted and described, a :class:`DataWarning` summarises them, and
``strict=True`` turns the first one into a :class:`DataFormatError`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .report import DataFormatError, DataWarning, LoadReport
from .trec import Qrels, Run, add_judgment, check_run, read_trec_qrels, read_trec_run, write_trec_qrels, write_trec_run

__all__ = [
    "CRANFIELD_ENV",
    "DataFormatError",
    "DataWarning",
    "Dataset",
    "LoadReport",
    "Qrels",
    "Run",
    "check_run",
    "find_cranfield",
    "load_beir",
    "load_cranfield",
    "load_dataset",
    "load_faq",
    "read_trec_qrels",
    "read_trec_run",
    "write_trec_qrels",
    "write_trec_run",
]

CRANFIELD_ENV = "RERANK_PLUGINS_CRANFIELD"
_CRANFIELD_FILES = ("cran.all.1400", "cran.qry", "cranqrel")


@dataclass(frozen=True)
class Dataset:
    """A test collection: ``corpus`` doc_id -> (title, text), ``queries`` qid -> text, ``qrels`` qid -> doc -> gain."""

    name: str
    corpus: dict[str, tuple[str, str]]
    queries: dict[str, str]
    qrels: dict[str, dict[str, int]]
    report: LoadReport = field(default_factory=lambda: LoadReport("dataset"))
    metadata: dict[str, Any] = field(default_factory=dict)

    def document_text(self, doc_id: str) -> str:
        """Title and text joined by a space, as BEIR does (for Cranfield, whose ``.W`` repeats the title, this
        weighs title words twice, like a title-boosted field; the published figures are measured this way)."""
        title, text = self.corpus[doc_id]
        return f"{title} {text}".strip()

    @property
    def judged_query_ids(self) -> list[str]:
        """Queries (in load order) that have at least one judgment: the ones metrics are computed on."""
        return [qid for qid in self.queries if self.qrels.get(qid)]

    def head(self, n: int | None) -> Dataset:
        """The same collection restricted to the first ``n`` judged queries (``None``: all judged queries)."""
        if n is None:
            return self
        if n < 1:
            raise DataFormatError(f"number of queries must be at least 1, got {n}")
        keep = self.judged_query_ids[:n]
        return replace(
            self,
            queries={q: self.queries[q] for q in keep},
            qrels={q: dict(self.qrels[q]) for q in keep},
        )

    def check_run(
        self, run: Run, *, strict: bool = False, source: str = "run", expected: Iterable[str] | None = None
    ) -> LoadReport:
        """Count unknown document ids, queries not in the data set, unjudged queries, judged queries missing
        from ``run`` (of ``expected``, default all judged queries) and duplicates (see :func:`check_run`)."""
        return check_run(
            run,
            corpus_ids=self.corpus.keys(),
            qrels=self.qrels,
            query_ids=self.queries.keys(),
            expected=self.judged_query_ids if expected is None else expected,
            strict=strict,
            source=source,
        )

    def content_hash(self, part: str = "all") -> str:
        """SHA-256 of the collection's content, in load order (order breaks ties): ``"corpus"`` (ids, titles,
        texts), ``"queries"``, ``"qrels"``, or ``"all"`` (the three). Independent of the path it was read from."""
        if part == "all":
            text = "|".join(self.content_hash(p) for p in ("corpus", "queries", "qrels"))
            return hashlib.sha256(text.encode("utf-8")).hexdigest()
        data: Any
        if part == "corpus":
            data = list(self.corpus.items())
        elif part == "queries":
            data = list(self.queries.items())
        elif part == "qrels":
            data = [(q, sorted(j.items())) for q, j in self.qrels.items()]
        else:
            raise DataFormatError(f"part must be corpus, queries, qrels or all, got {part!r}")
        blob = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
        return hashlib.sha256(blob.encode("utf-8")).hexdigest()

    def summary(self) -> str:
        return (
            f"{self.name}: {len(self.corpus)} documents, {len(self.queries)} queries "
            f"({len(self.judged_query_ids)} judged), {sum(len(j) for j in self.qrels.values())} judgments"
        )


def _finish(ds: Dataset) -> Dataset:
    """Cross-check queries, qrels and corpus; count the problems; warn once."""
    rep = ds.report
    for qid in ds.queries:
        judged = ds.qrels.get(qid)
        if not judged:
            rep.problem("queries_without_judgments", f"query {qid!r} has no judgments (it is left out of metrics)")
        elif not any(g > 0 for g in judged.values()):
            rep.problem("queries_without_relevant_documents", f"query {qid!r} has no document with a positive gain")
    for qid, judged in ds.qrels.items():
        if qid not in ds.queries:
            rep.problem("judgments_for_unknown_queries", f"qrels name query {qid!r}, which is not in the queries")
        for doc_id in judged:
            if doc_id not in ds.corpus:
                rep.problem("judgments_for_unknown_documents", f"query {qid!r} judges unknown document {doc_id!r}")
    rep.counts["documents"] = len(ds.corpus)
    rep.counts["queries"] = len(ds.queries)
    rep.counts["judged_queries"] = len(ds.judged_query_ids)
    rep.emit()
    return ds


# ---------------------------------------------------------------------------------------------- Cranfield
def _candidate_roots() -> Iterator[Path]:
    seen: set[Path] = set()
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for folder in (start, *start.parents):
            if folder not in seen:
                seen.add(folder)
                yield folder


def find_cranfield() -> Path:
    """Locate the Cranfield folder: ``$RERANK_PLUGINS_CRANFIELD``, else a ``shared/data/cranfield`` folder found
    walking up from the current directory and from this package (a sibling of the repository)."""
    env = os.environ.get(CRANFIELD_ENV)
    if env:
        path = Path(env).expanduser()
        if not all((path / f).is_file() for f in _CRANFIELD_FILES):
            raise DataFormatError(f"${CRANFIELD_ENV}={env} does not contain {', '.join(_CRANFIELD_FILES)}")
        return path
    tried = []
    for root in _candidate_roots():
        for cand in (root / "shared" / "data" / "cranfield", root / "data" / "cranfield"):
            tried.append(cand)
            if all((cand / f).is_file() for f in _CRANFIELD_FILES):
                return cand
    raise DataFormatError(
        "Cranfield not found: set $RERANK_PLUGINS_CRANFIELD to the folder holding "
        f"{', '.join(_CRANFIELD_FILES)} or pass its path (looked in e.g. {tried[0]})"
    )


def _smart_records(path: Path) -> Iterator[tuple[str, dict[str, str]]]:
    """Yield (``.I`` value, {field letter: text}) from a SMART-format file."""
    ident: str | None = None
    fields: dict[str, list[str]] = {}
    current: str | None = None
    marker = re.compile(r"^\.([A-Z])(?:\s+(.*))?$")
    with path.open(encoding="utf-8-sig", errors="replace") as fh:
        for line in fh:
            m = marker.match(line.rstrip("\n"))
            if m and m.group(1) == "I":
                if ident is not None:
                    yield ident, {k: " ".join(" ".join(v).split()) for k, v in fields.items()}
                ident, fields, current = (m.group(2) or "").strip(), {}, None
            elif m:
                current = m.group(1)
                fields.setdefault(current, [])
                if m.group(2):
                    fields[current].append(m.group(2))
            elif current is not None:
                fields[current].append(line.strip())
    if ident is not None:
        yield ident, {k: " ".join(" ".join(v).split()) for k, v in fields.items()}


def load_cranfield(path: str | os.PathLike[str] | None = None, *, strict: bool = False) -> Dataset:
    """Load Cranfield (1,400 documents, 225 queries) from its SMART files.

    Traps handled (see the collection's README): ``cranqrel`` numbers queries by POSITION in ``cran.qry``
    (1..225), not by the non-consecutive ``.I`` value, so query ids here are positions ("1".."225") and
    ``metadata["query_dot_i"]`` maps them to the ``.I`` values; code c in 1..4 becomes gain 5 - c and -1 becomes
    gain 0; an empty ``.W`` leaves the title as the text (counted as ``documents_with_empty_text``).
    """
    folder = Path(path).expanduser() if path is not None else find_cranfield()
    for f in _CRANFIELD_FILES:
        if not (folder / f).is_file():
            raise DataFormatError(f"{folder} is not a Cranfield folder: {f} is missing")
    rep = LoadReport(f"cranfield ({folder})", strict=strict)
    corpus: dict[str, tuple[str, str]] = {}
    for ident, fields in _smart_records(folder / "cran.all.1400"):
        doc_id = ident.lstrip("0") or "0"
        if doc_id in corpus:
            rep.problem("duplicate_documents", f"document .I {ident} appears twice; keeping the first")
            continue
        title, text = fields.get("T", ""), fields.get("W", "")
        if not text:
            rep.count("documents_with_empty_text")
        if not title and not text:
            rep.count("empty_documents")  # a fact of the collection (.I 471, 995), kept: they rank last
        corpus[doc_id] = (title, text)
    queries: dict[str, str] = {}
    dot_i: dict[str, str] = {}
    for position, (ident, fields) in enumerate(_smart_records(folder / "cran.qry"), 1):
        qid = str(position)
        text = fields.get("W", "")
        if not text:
            rep.problem("empty_queries", f"query #{position} (.I {ident}) has no text; skipped")
            continue
        queries[qid] = text
        dot_i[qid] = ident
    qrels: Qrels = {}
    gains = {1: 4, 2: 3, 3: 2, 4: 1, -1: 0}
    with (folder / "cranqrel").open(encoding="utf-8-sig") as fh:
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.split()
            try:
                qnum, doc, code = (int(p) for p in parts)
            except ValueError:
                rep.problem("bad_qrels_lines", f"cranqrel line {lineno}: expected 'query doc code', got {line!r}")
                continue
            if code not in gains:
                rep.problem("bad_qrels_lines", f"cranqrel line {lineno}: unknown relevance code {code}")
                continue
            judged = qrels.setdefault(str(qnum), {})
            if str(doc) in judged and judged[str(doc)] != gains[code]:
                rep.problem("conflicting_judgments", f"cranqrel line {lineno}: query {qnum} doc {doc} judged twice")
            judged[str(doc)] = max(gains[code], judged.get(str(doc), 0))
            rep.count("judgments")
    ds = Dataset("cranfield", corpus, queries, qrels, rep, {"path": str(folder), "query_dot_i": dot_i})
    return _finish(ds)


# ---------------------------------------------------------------------------------------------- FAQ
def load_faq(*, lang: str = "en", strict: bool = False) -> Dataset:
    """The ``zaragoza-construction-faq`` package (503 Q&A pairs): each question is a query whose one relevant
    document (gain 1) is its own answer; the documents are the answers (no title, so the question text is not
    in the index). ``lang`` is ``"en"`` (default) or ``"sv"``."""
    if lang not in ("en", "sv"):
        raise DataFormatError(f"lang must be 'en' or 'sv', got {lang!r}")
    spec = importlib.util.find_spec("zaragoza_construction_faq")
    if spec is None or not spec.submodule_search_locations:
        raise DataFormatError(
            "the FAQ data set needs the package zaragoza-construction-faq: pip install 'rerank-plugins[models]'"
        )
    package = Path(next(iter(spec.submodule_search_locations)))
    data_file = package / "data" / ("faq-en.json" if lang == "en" else "faq.json")
    rep = LoadReport(f"faq ({data_file.name})", strict=strict)
    try:
        records = json.loads(data_file.read_text(encoding="utf-8-sig"))["questions"]
    except (OSError, ValueError, KeyError) as exc:
        raise DataFormatError(f"cannot read the FAQ data from {data_file}: {exc}") from exc
    corpus: dict[str, tuple[str, str]] = {}
    queries: dict[str, str] = {}
    qrels: Qrels = {}
    categories: dict[str, str] = {}
    for i, rec in enumerate(records):
        ident, question, answer = rec.get("id"), rec.get("q"), rec.get("a")
        if not ident or not isinstance(question, str) or not isinstance(answer, str) or not question.strip():
            rep.problem("bad_records", f"record #{i} lacks an id, a question or an answer: {str(rec)[:80]!r}")
            continue
        if ident in corpus:
            rep.problem("duplicate_documents", f"record id {ident!r} appears twice; keeping the first")
            continue
        corpus[ident] = ("", answer)
        queries[ident] = question
        qrels[ident] = {ident: 1}
        categories[ident] = str(rec.get("category", ""))
        rep.count("judgments")
    meta = {"path": str(data_file), "category": categories}
    return _finish(Dataset(f"faq-{lang}", corpus, queries, qrels, rep, meta))


# ---------------------------------------------------------------------------------------------- BEIR
def _jsonl(path: Path, rep: LoadReport, kind: str) -> Iterator[dict[str, Any]]:
    with path.open(encoding="utf-8-sig") as fh:  # -sig: a byte-order mark would make line 1 invalid JSON
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            try:
                rec = json.loads(line)
            except ValueError as exc:
                rep.problem(f"bad_{kind}_lines", f"{path.name} line {lineno}: not JSON ({exc})")
                continue
            if not isinstance(rec, dict) or "_id" not in rec:
                rep.problem(f"bad_{kind}_lines", f"{path.name} line {lineno}: no '_id' field")
                continue
            yield rec


def _read_beir_qrels(path: Path, rep: LoadReport) -> Qrels:
    qrels: Qrels = {}
    with path.open(encoding="utf-8-sig") as fh:  # -sig: a byte-order mark would hide the header line
        for lineno, line in enumerate(fh, 1):
            if not line.strip():
                continue
            parts = line.rstrip("\n").split("\t")
            if lineno == 1 and parts[:2] == ["query-id", "corpus-id"]:
                continue
            if len(parts) != 3:
                rep.problem("bad_qrels_lines", f"{path.name} line {lineno}: expected 3 tab-separated fields: {line!r}")
                continue
            qid, doc_id, gain_s = (p.strip() for p in parts)
            try:
                gain = int(float(gain_s))
            except ValueError:
                rep.problem("bad_qrels_lines", f"{path.name} line {lineno}: gain {gain_s!r} is not a number")
                continue
            add_judgment(qrels, rep, f"{path.name} line {lineno}", qid, doc_id, gain)
    return qrels


def load_beir(folder: str | os.PathLike[str], *, split: str | None = None, strict: bool = False) -> Dataset:
    """Load a BEIR folder: ``corpus.jsonl``, ``queries.jsonl`` and ``qrels/<split>.tsv`` (header line).

    ``split`` defaults to ``test`` when that file exists, else the only qrels file. Queries judged only in another
    split are not loaded (counted as ``queries_in_other_splits``); queries judged in no split are a problem.
    """
    root = Path(folder).expanduser()
    for f in ("corpus.jsonl", "queries.jsonl"):
        if not (root / f).is_file():
            raise DataFormatError(f"{root} is not a BEIR folder: {f} is missing")
    qrel_files = sorted((root / "qrels").glob("*.tsv")) if (root / "qrels").is_dir() else []
    if not qrel_files:
        raise DataFormatError(f"{root} is not a BEIR folder: no qrels/*.tsv file")
    names = {p.stem: p for p in qrel_files}
    if split is None:
        split = "test" if "test" in names else (qrel_files[0].stem if len(qrel_files) == 1 else None)
        if split is None:
            raise DataFormatError(
            f"{root}: several qrels files {sorted(names)}; choose one with split= (--split on the command line)"
        )
    if split not in names:
        raise DataFormatError(f"{root}: no qrels/{split}.tsv (have {sorted(names)})")
    rep = LoadReport(f"beir ({root}, {split})", strict=strict)
    corpus: dict[str, tuple[str, str]] = {}
    for rec in _jsonl(root / "corpus.jsonl", rep, "corpus"):
        doc_id = str(rec["_id"])
        if doc_id in corpus:
            rep.problem("duplicate_documents", f"document {doc_id!r} appears twice; keeping the first")
            continue
        title, text = str(rec.get("title") or ""), str(rec.get("text") or "")
        if not title.strip() and not text.strip():
            # kept (it ranks last and a judgment of it stays valid) but counted: nothing can retrieve it
            rep.problem("empty_documents", f"document {doc_id!r} has an empty title and text; kept, it ranks last")
        corpus[doc_id] = (title, text)
    qrels = _read_beir_qrels(names[split], rep)
    other: set[str] = set()
    for name, p in names.items():
        if name != split:
            other |= set(_read_beir_qrels(p, LoadReport(str(p))))
    queries: dict[str, str] = {}
    for rec in _jsonl(root / "queries.jsonl", rep, "query"):
        qid, text = str(rec["_id"]), str(rec.get("text") or "")
        if qid not in qrels and qid in other:
            rep.count("queries_in_other_splits")
            continue
        if qid in queries:
            rep.problem("duplicate_queries", f"query {qid!r} appears twice; keeping the first")
            continue
        if not text.strip():
            rep.problem("empty_queries", f"query {qid!r} has no text; skipped")
            continue
        queries[qid] = text
    return _finish(Dataset(root.name, corpus, queries, qrels, rep, {"path": str(root), "split": split}))


# ---------------------------------------------------------------------------------------------- one entry point
def load_dataset(spec: str | os.PathLike[str], *, strict: bool = False, split: str | None = None) -> Dataset:
    """``"cranfield"``, ``"faq"`` (``"faq-sv"`` for Swedish), or a path to a BEIR or Cranfield folder.

    ``split`` names the BEIR qrels file (``qrels/<split>.tsv``); the other collections have one set of judgments,
    so a ``split`` for them is an error.
    """
    name = os.fspath(spec)
    path = Path(name).expanduser()
    is_beir = path.is_dir() and (path / "corpus.jsonl").is_file()
    if split is not None and not is_beir:
        raise DataFormatError(f"split={split!r} applies to BEIR folders only; {name!r} has one set of judgments")
    if name == "cranfield":
        return load_cranfield(strict=strict)
    if name in ("faq", "faq-en"):
        return load_faq(strict=strict)
    if name == "faq-sv":
        return load_faq(lang="sv", strict=strict)
    if path.is_dir():
        if is_beir:
            return load_beir(path, split=split, strict=strict)
        if (path / "cran.all.1400").is_file():
            return load_cranfield(path, strict=strict)
        raise DataFormatError(f"{path} is neither a BEIR folder (corpus.jsonl) nor a Cranfield folder (cran.all.1400)")
    raise DataFormatError(f"unknown dataset {name!r}: use 'cranfield', 'faq', 'faq-sv' or a folder path")
