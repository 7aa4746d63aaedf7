"""``RerankPluginsRanker``: a Haystack ranker component over a rerank-plugins reranker.

Only conversion lives here: ``Document`` -> :class:`rerank_plugins.Candidate` and the ranked list -> documents
rebuilt with ``dataclasses.replace``. Ranking, ``top_k`` and ``score_threshold`` are done by the reranker itself.
"""

from __future__ import annotations

import math
import mimetypes
from dataclasses import replace
from pathlib import Path
from typing import Any

from haystack import Document, component, default_from_dict, default_to_dict
from haystack.core.errors import SerializationError
from haystack.utils import ComponentDevice, Secret
from haystack.utils.hf import deserialize_hf_model_kwargs, serialize_hf_model_kwargs

from rerank_plugins import Candidate, ConfigError, InvalidInputError, Query, RankedList, Reranker
from rerank_plugins.integration import (
    RUNTIMES,
    affixed,
    build_reranker,
    candidate_ids,
    check_limits,
    document_text,
    host_options,
    model_name,
    result_metadata,
)
from rerank_plugins.validation import check_bool, check_choice, check_int


@component
class RerankPluginsRanker:
    """Rank documents with any rerank-plugins strategy (cross-encoder, embedding, listwise, FIRST, reasoning...).

    ```python
    ranker = RerankPluginsRanker(model="minilm", top_k=5)
    ranker.run(query="What is a shock wave?", documents=docs)["documents"]
    ```

    ``__init__`` only records its (JSON-serialisable) arguments; the model is loaded once, by :meth:`warm_up`,
    which a pipeline calls and :meth:`run` calls too when it was not (as Haystack's own components do).
    ``model`` may also be an already-built :class:`rerank_plugins.Reranker` (used as is; such a ranker cannot be
    serialised).

    As Haystack's rankers do, documents are first deduplicated by id, keeping of each id the document with the
    highest ``score`` (the first one among equals or unscored ones; ``haystack.utils.misc._deduplicate_documents``,
    haystack-ai 3.4.0); every remaining document comes back exactly once, best first, unless ``top_k`` (an int
    ``>= 1``; ``None`` returns all, where Haystack's rankers keep 10; 0 is a ``ValueError`` as there) or
    ``score_threshold`` (keep scores ``>=`` it; 0.0 is a threshold like any other) says otherwise. Documents are
    never modified: each result is ``dataclasses.replace(doc, score=..., meta=...)`` with the same id, its meta
    extended by ``rerank_rank`` and, when the strategy produces them, ``rerank_reasoning``, ``rerank_details`` and
    ``rerank_windows``. A document without ``content`` is ranked as an empty text (as Haystack's rankers do), or
    by its image when its ``blob`` has an ``image/*`` mime type or, as ``ImageFileToDocument`` and
    ``DocumentToImageContent`` do, its ``meta[file_path_meta_field]`` names an image file (under ``root_path``);
    a document with both content and an image is a mixed candidate.

    The loading conventions of Haystack's own rankers (``SentenceTransformersSimilarityRanker``) are accepted and
    serialised: ``device`` (a ``ComponentDevice``), ``token`` (a ``Secret``, read from ``HF_API_TOKEN`` /
    ``HF_TOKEN`` by default), ``trust_remote_code`` (also accepted inside ``model_kwargs``), ``model_kwargs``,
    ``tokenizer_kwargs``, ``config_kwargs``, ``backend`` (``"torch"``, or ``"onnx"``: a cross-encoder's ONNX
    Runtime path), ``batch_size`` and ``scale_score`` (``False``: a cross-encoder's raw logits; ``None`` or
    ``True``: its probabilities), which :meth:`run` also takes per call and as a pipeline input (the loaded model
    is shared, never loaded twice). They reach the strategy
    under its own keywords (an LLM strategy's backend options); one that cannot apply is a ``ConfigError``. So do
    ``query_prefix`` / ``query_suffix`` / ``document_prefix`` / ``document_suffix``, ``meta_fields_to_embed`` and
    ``embedding_separator``, applied exactly as Haystack's rankers apply them. Every argument is checked here,
    before any model is loaded.

    :param model: model or strategy name, local path (``str`` or ``pathlib.Path``, stored as ``str``) or hub id
        (see ``rerank_plugins.load_reranker``), or a built reranker.
    :param kind: strategy kind (``"cross-encoder"``, ``"embedding"``, ``"listwise"``, ``"first"``...); ``None``
        reads it from the model or the registry.
    :param top_k: default number of documents to return; ``None`` returns all, 0 none.
    :param score_threshold: default minimum score; ``None`` keeps all.
    :param options: keyword arguments for ``load_reranker`` (window size, max length...).
    :param meta_fields_to_embed: meta fields whose values are put before the content, as Haystack rankers do.
    :param embedding_separator: separator between those values and the content.
    :param file_path_meta_field: meta field holding an image file path (``None``: images only from ``blob``).
    :param root_path: folder that relative image paths are resolved against.
    :param device: where the model runs; ``None`` lets the strategy choose.
    :param token: Hugging Face token for private models.
    :param trust_remote_code: allow custom model code from the hub; ``None`` keeps the strategy's (or recipe's)
        default.
    :param model_kwargs: extra ``from_pretrained`` arguments for the model.
    :param tokenizer_kwargs: extra ``from_pretrained`` arguments for the tokenizer.
    :param config_kwargs: ``AutoConfig`` overrides (passed to ``from_pretrained`` with ``model_kwargs``).
    :param backend: ``"torch"`` or ``"onnx"`` (sentence-transformers' backend names); ``None`` keeps the strategy's.
    :param batch_size: most inputs per forward pass; ``None`` keeps the strategy's default.
    :param scale_score: ``False`` for a cross-encoder's raw logits; ``None`` keeps the strategy's scores.
    :param query_prefix: text put before the query (an instruction, e.g. for bge models).
    :param query_suffix: text put after the query.
    :param document_prefix: text put before each document.
    :param document_suffix: text put after each document.
    :param instruction: task instruction passed to the reranker's ``instruction=`` option (LLM recipes).
    """

    def __init__(
        self,
        model: str | Path | Reranker = "minilm",
        kind: str | None = None,
        top_k: int | None = None,
        score_threshold: float | None = None,
        options: dict[str, Any] | None = None,
        meta_fields_to_embed: list[str] | None = None,
        embedding_separator: str = "\n",
        file_path_meta_field: str | None = "file_path",
        root_path: str | None = None,
        *,
        device: ComponentDevice | None = None,
        token: Secret | None = Secret.from_env_var(["HF_API_TOKEN", "HF_TOKEN"], strict=False),  # noqa: B008
        trust_remote_code: bool | None = None,
        model_kwargs: dict[str, Any] | None = None,
        tokenizer_kwargs: dict[str, Any] | None = None,
        config_kwargs: dict[str, Any] | None = None,
        backend: str | None = None,
        batch_size: int | None = None,
        scale_score: bool | None = None,
        query_prefix: str = "",
        query_suffix: str = "",
        document_prefix: str = "",
        document_suffix: str = "",
        instruction: str | None = None,
    ) -> None:
        check_int("top_k", top_k, 1, optional=True)  # Haystack's rankers refuse 0 ("top_k must be > 0")
        check_limits(top_k, score_threshold)
        check_bool("trust_remote_code", trust_remote_code, optional=True)
        check_choice("backend", backend, RUNTIMES, optional=True)
        self._check(
            kind=kind, options=options, meta_fields_to_embed=meta_fields_to_embed,
            embedding_separator=embedding_separator, file_path_meta_field=file_path_meta_field, root_path=root_path,
            device=device, token=token, model_kwargs=model_kwargs, tokenizer_kwargs=tokenizer_kwargs,
            config_kwargs=config_kwargs,
            batch_size=batch_size, scale_score=scale_score, query_prefix=query_prefix, query_suffix=query_suffix,
            document_prefix=document_prefix, document_suffix=document_suffix, instruction=instruction,
        )
        self._reranker: Reranker | None = None
        if isinstance(model, Reranker):
            loading = {"device": device, "model_kwargs": model_kwargs, "tokenizer_kwargs": tokenizer_kwargs,
                       "batch_size": batch_size, "scale_score": scale_score, "trust_remote_code": trust_remote_code,
                       "config_kwargs": config_kwargs, "backend": backend}
            given = sorted(k for k, v in loading.items() if v is not None)
            if given:
                raise ConfigError(
                    f"{', '.join(given)} configure a reranker loaded by name; got an already-built "
                    f"{type(model).__name__} as well: configure that object instead"
                )
            self._reranker = build_reranker(model, kind, options, instruction=instruction)
        self.model = model_name(model)
        self.kind = kind
        self.top_k = top_k
        self.score_threshold = score_threshold
        self.options = options
        self.meta_fields_to_embed = meta_fields_to_embed
        self.embedding_separator = embedding_separator
        self.file_path_meta_field = file_path_meta_field
        self.root_path = root_path
        self.device = device
        self.token = token
        self.trust_remote_code = trust_remote_code
        self.model_kwargs = model_kwargs
        self.tokenizer_kwargs = tokenizer_kwargs
        self.config_kwargs = config_kwargs
        self.backend = backend
        self.batch_size = batch_size
        self.scale_score = scale_score
        self.query_prefix = query_prefix
        self.query_suffix = query_suffix
        self.document_prefix = document_prefix
        self.document_suffix = document_suffix
        self.instruction = instruction
        self._serialisable = self._reranker is None
        self._views: dict[bool, Reranker] = {}  # per-call scale_score -> a reranker sharing the loaded model

    @staticmethod
    def _check(**values: Any) -> None:
        """Type checks of the configuration (``None`` is "not given" wherever it is allowed)."""
        expected: dict[str, tuple[type, ...]] = {
            "kind": (str,), "options": (dict,), "meta_fields_to_embed": (list,), "file_path_meta_field": (str,),
            "root_path": (str,), "device": (ComponentDevice,), "token": (Secret,), "model_kwargs": (dict,),
            "tokenizer_kwargs": (dict,), "config_kwargs": (dict,), "batch_size": (int,), "scale_score": (bool,),
            "instruction": (str,),
        }
        for name, types in expected.items():
            value = values[name]
            if value is not None and (not isinstance(value, types) or (types == (int,) and isinstance(value, bool))):
                raise ConfigError(f"{name} must be {' or '.join(t.__name__ for t in types)} or None, got {value!r}")
        for name in ("embedding_separator", "query_prefix", "query_suffix", "document_prefix", "document_suffix"):
            if not isinstance(values[name], str):
                raise ConfigError(f"{name} must be a str, got {values[name]!r}")
        fields = values["meta_fields_to_embed"]
        if fields is not None and not all(isinstance(f, str) for f in fields):
            raise ConfigError(f"meta_fields_to_embed must be a list of str, got {fields!r}")
        if values["batch_size"] is not None and values["batch_size"] < 1:
            raise ConfigError(f"batch_size must be >= 1, got {values['batch_size']}")
        device = values["device"]
        if device is not None and device.has_multiple_devices:
            raise ConfigError("a multi-device ComponentDevice is not supported; pass model_kwargs={'device_map': ...}")

    @property
    def reranker(self) -> Reranker:
        """The rerank-plugins reranker doing the work (loaded on first use)."""
        return self._live()

    def warm_up(self) -> None:
        """Load the reranker (once; later calls do nothing)."""
        self._live()

    def _live(self) -> Reranker:
        if self._reranker is None:
            options = host_options(
                self.model, self.kind, self.options,
                device=self.device.to_torch_str() if self.device is not None else None,
                batch_size=self.batch_size, model_kwargs=self.model_kwargs, tokenizer_kwargs=self.tokenizer_kwargs,
                token=self.token.resolve_value() if self.token is not None else None,
                scale_score=self.scale_score, trust_remote_code=self.trust_remote_code,
                config_kwargs=self.config_kwargs, runtime=self.backend,
            )
            reranker = build_reranker(self.model, self.kind, options, instruction=self.instruction)
            # True means scaled, as in Haystack's rankers, also for a model that saves an identity activation
            self._reranker = _scaled(reranker, True) if self.scale_score else reranker
        return self._reranker

    def _with_scale(self, reranker: Reranker, scale_score: bool | None) -> Reranker:
        """``reranker``, or a copy sharing its model that gives the scores ``run(scale_score=...)`` asks for."""
        if scale_score is None:
            return reranker
        check_bool("scale_score", scale_score, error=InvalidInputError)
        if scale_score not in self._views:
            self._views[scale_score] = _scaled(reranker, scale_score)
        return self._views[scale_score]

    def to_dict(self) -> dict[str, Any]:
        if not self._serialisable:
            raise SerializationError(
                f"RerankPluginsRanker was given a built {self.model!r} reranker object, which cannot be serialised; "
                "configure it by model=, kind= and options= to save it in a pipeline"
            )
        data = default_to_dict(
            self,
            model=self.model,
            kind=self.kind,
            top_k=self.top_k,
            score_threshold=self.score_threshold,
            options=self.options,
            meta_fields_to_embed=self.meta_fields_to_embed,
            embedding_separator=self.embedding_separator,
            file_path_meta_field=self.file_path_meta_field,
            root_path=self.root_path,
            device=self.device,
            token=self.token,
            trust_remote_code=self.trust_remote_code,
            model_kwargs=self.model_kwargs,
            tokenizer_kwargs=self.tokenizer_kwargs,
            config_kwargs=self.config_kwargs,
            backend=self.backend,
            batch_size=self.batch_size,
            scale_score=self.scale_score,
            query_prefix=self.query_prefix,
            query_suffix=self.query_suffix,
            document_prefix=self.document_prefix,
            document_suffix=self.document_suffix,
            instruction=self.instruction,
        )
        if data["init_parameters"].get("model_kwargs") is not None:
            data["init_parameters"]["model_kwargs"] = dict(data["init_parameters"]["model_kwargs"])
            serialize_hf_model_kwargs(data["init_parameters"]["model_kwargs"])  # torch dtypes as strings
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RerankPluginsRanker:
        params = data.get("init_parameters", {})
        if params.get("model_kwargs") is not None:
            data = {**data, "init_parameters": {**params, "model_kwargs": dict(params["model_kwargs"])}}
            deserialize_hf_model_kwargs(data["init_parameters"]["model_kwargs"])
        return default_from_dict(cls, data)  # type: ignore[no-any-return]

    # ------------------------------------------------------------------ conversion
    def _prepare(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None,
        score_threshold: float | None,
        scale_score: bool | None,
    ) -> tuple[Reranker, Query, list[Document], list[Candidate], dict[str, Any]]:
        check_int("top_k", top_k, 1, optional=True, error=InvalidInputError)  # "top_k must be > 0" in Haystack
        reranker = self._with_scale(self._live(), scale_score)
        for i, doc in enumerate(documents):
            if not isinstance(doc, Document):
                raise TypeError(f"document at position {i} must be a haystack Document, got {type(doc).__name__}")
        documents = deduplicated(documents)
        candidates = []
        for cid, doc in zip(candidate_ids([d.id for d in documents]), documents):
            is_image = doc.blob is not None and (doc.blob.mime_type or "").startswith("image/")
            image = doc.blob.data if is_image else self._image_path(doc)  # type: ignore[union-attr]
            # an image-only document stays image-only; any other gets Haystack's text rule (content None -> "")
            text = None if image is not None and doc.content is None and not self.meta_fields_to_embed else (
                document_text(
                    doc.content, doc.meta, prefix=self.document_prefix, suffix=self.document_suffix,
                    meta_fields=self.meta_fields_to_embed, separator=self.embedding_separator,
                )
            )
            candidates.append(Candidate(id=cid, text=text, metadata=doc.meta, score=doc.score, image=image))
        limits = {
            "top_k": self.top_k if top_k is None else top_k,
            "score_threshold": self.score_threshold if score_threshold is None else score_threshold,
        }
        # an empty query stays empty, so the reranker refuses it with its usual message
        query_text = affixed(query, self.query_prefix, self.query_suffix) if isinstance(query, str) \
            and query.strip() else query
        return reranker, Query(text=query_text), documents, candidates, limits

    def _image_path(self, doc: Document) -> str | None:
        """The image file a document stands for (``ImageFileToDocument`` convention), or None."""
        value = doc.meta.get(self.file_path_meta_field) if self.file_path_meta_field else None
        if not isinstance(value, str):
            return None
        mime, _ = mimetypes.guess_type(value)
        if mime is None or not mime.startswith("image/"):
            return None
        return str(Path(self.root_path) / value) if self.root_path is not None else value

    @staticmethod
    def _documents(documents: list[Document], ranked: RankedList) -> dict[str, list[Document]]:
        out = []
        for item, extra in zip(ranked.results, result_metadata(ranked)):
            doc = documents[item.original_position]
            out.append(replace(doc, score=item.score, meta={**doc.meta, **extra}))
        return {"documents": out}

    # ------------------------------------------------------------------ component API
    @component.output_types(documents=list[Document])
    def run(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
        scale_score: bool | None = None,
    ) -> dict[str, list[Document]]:
        """Rank ``documents`` for ``query``; ``top_k`` / ``score_threshold`` / ``scale_score`` override the
        defaults when given (``scale_score`` as Haystack's rankers take it: ``False`` for a cross-encoder's raw
        logits). Documents with the same id are deduplicated first, as Haystack's rankers do."""
        reranker, q, docs, candidates, limits = self._prepare(query, documents, top_k, score_threshold, scale_score)
        return self._documents(docs, reranker.rerank(q, candidates, **limits))

    @component.output_types(documents=list[Document])
    async def run_async(
        self,
        query: str,
        documents: list[Document],
        top_k: int | None = None,
        score_threshold: float | None = None,
        scale_score: bool | None = None,
    ) -> dict[str, list[Document]]:
        """Async form of :meth:`run` (uses the reranker's native ``arerank``)."""
        reranker, q, docs, candidates, limits = self._prepare(query, documents, top_k, score_threshold, scale_score)
        return self._documents(docs, await reranker.arerank(q, candidates, **limits))


def deduplicated(documents: list[Document]) -> list[Document]:
    """Of each document id, the document with the highest ``score`` (``None`` below any number; the first among
    equals), in the order the ids first appear: what Haystack's rankers do before ranking
    (``haystack.utils.misc._deduplicate_documents``, haystack-ai 3.4.0, called by sentence-transformers-haystack
    2.0.0's ``SentenceTransformersSimilarityRanker.run``)."""
    best: dict[str, Document] = {}
    for doc in documents:
        kept = best.get(doc.id)
        if kept is None or _score(doc) > _score(kept):
            best[doc.id] = doc
    return list(best.values())


def _score(doc: Document) -> float:
    return doc.score if doc.score is not None else -math.inf


def _scaled(reranker: Reranker, scale_score: bool) -> Reranker:
    """``reranker`` giving scaled (``True``: sigmoid, or softmax for a two-logit head, as Haystack's rankers'
    ``Sigmoid``) or raw (``False``) scores; a cross-encoder's copy sharing the loaded model when it must change."""
    activation = getattr(reranker, "activation", None)
    with_activation = getattr(reranker, "with_activation", None)
    if activation is None or with_activation is None:
        if not scale_score:
            raise InvalidInputError(
                f"scale_score=False (raw logits) applies to cross-encoders; {reranker.name!r} has no score scaling"
            )
        return reranker
    if scale_score == (activation != "raw"):
        return reranker
    return with_activation("sigmoid" if scale_score else "raw")  # type: ignore[no-any-return]
