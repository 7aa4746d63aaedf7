"""Images per second for multimodal reranking on the CPU, and the share of the time spent preprocessing images.

Data: ``--pages`` Cranfield abstracts rendered to PNG page screenshots (A4 at ``--dpi``, default 150 dpi:
1240 x 1754 px, the size of a scanned or rendered PDF page), one Cranfield query.

Models: tiny random models built from the real configs (Qwen2-VL with hidden size 32 and 2 layers per tower;
CLIP with hidden size 32), because no real weights can be downloaded here. Their towers are tiny, so the model
time is far below a real 2B model's, while the image preprocessing (decode, resize, normalise, patchify) is
exactly what the real processors do at the real resolution settings:

* Qwen2-VL / MonoQwen2-VL: the processor as shipped (``min_pixels=56*56``, ``max_pixels=28*28*1280``, up to
  1280 image tokens per page; MonoQwen2-VL uses the Qwen2-VL-2B-Instruct processor unchanged), and two lower
  ``max_pixels`` settings (768 and 256 tokens);
* CLIP ViT-B/32 at 224 px and ViT-L/14 at 336 px input resolution.

Timed per setting (best of ``--repeats``), inside the real call path: PNG decode (:mod:`rerank_plugins.images`),
the processor, the model (for CLIP: the rest of the call, mostly the model), all through the public rerankers
(``VisionYesNoReranker``: one forward pass per page, batched; ``ClipReranker``).
Peer baseline in the same run: one page per forward pass (``batch_size=1``), the loop AnswerDotAI rerankers'
``MonoVLMRanker`` runs. rerankers itself cannot run here: its processor load needs torchvision, which this
machine's CPU torch build cannot use.

    python benchmarks/multimodal.py [--pages 8] [--repeats 2] [--threads 1] [--dpi 150]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from _common import save_results

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

QWEN_SETTINGS = [
    ("Qwen2-VL / MonoQwen2-VL as shipped (max 1280 tok)", 28 * 28 * 1280),
    ("Qwen2-VL max_pixels 768 tok", 28 * 28 * 768),
    ("Qwen2-VL max_pixels 256 tok", 28 * 28 * 256),
]
CLIP_SETTINGS = [("CLIP ViT-B/32 224 px", 224, 32), ("CLIP ViT-L/14 336 px", 336, 14)]


def _pages(n: int, dpi: int, folder: Path) -> tuple[str, list[Any]]:
    from rerank_plugins.testing.pages import page_candidates

    width = round(8.27 * dpi)
    size = (width, round(width * 1.414))
    pages = page_candidates(n, folder=folder, size=size)
    return pages.query, pages.candidates


class _Timer:
    """Seconds spent in a wrapped callable, measured inside the real call path."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def wrap(self, fn: Any) -> Any:
        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        return timed


def _timed_decode(module: Any) -> _Timer:
    """Time the PNG decoding a reranker module does (its ``load_candidate_images``), in place."""
    timer = _Timer()
    original = getattr(module, "_original_load_candidate_images", module.load_candidate_images)
    module._original_load_candidate_images = original
    module.load_candidate_images = timer.wrap(original)
    return timer


def _time_qwen(folder: Path, max_pixels: int, query: str, cands: list[Any], repeats: int, batch: int) -> dict[str, Any]:
    from rerank_plugins.backends.vision import VisionLanguageBackend
    from rerank_plugins.rankers import _vision
    from rerank_plugins.rankers.vision_yes_no import VisionYesNoReranker

    backend = VisionLanguageBackend(str(folder), device="cpu", max_pixels=max_pixels, batch_size=batch,
                                    max_batch_tokens=None)
    reranker = VisionYesNoReranker(backend, batch_size=batch)
    best: dict[str, Any] | None = None
    for _ in range(repeats):
        decode = _timed_decode(_vision)
        backend.stats.reset()
        start = time.perf_counter()
        reranker.rerank(query, cands)
        total = time.perf_counter() - start
        row = {
            "seconds": total,
            "decode_seconds": decode.seconds,
            "processor_seconds": backend.stats.processor_seconds,
            "model_seconds": backend.stats.model_seconds,
            "image_tokens_per_page": backend.stats.image_tokens / len(cands),
            "forward_calls": backend.stats.forward_calls,
        }
        if best is None or total < best["seconds"]:
            best = row
    assert best is not None
    return best


def _time_clip(folder: Path, query: str, cands: list[Any], repeats: int) -> dict[str, Any]:
    from rerank_plugins.rankers import clip as clip_module
    from rerank_plugins.rankers.clip import ClipReranker

    reranker = ClipReranker(str(folder), device="cpu")
    processor = reranker.model[0].processor
    proc_timer = _Timer()
    # time the processor inside sentence-transformers' own encode call (a subclass, so isinstance checks hold)
    processor.__class__ = type("Timed" + type(processor).__name__, (type(processor),),
                               {"__call__": proc_timer.wrap(type(processor).__call__)})
    best: dict[str, Any] | None = None
    for _ in range(repeats):
        decode = _timed_decode(clip_module)
        proc_timer.seconds = 0.0
        start = time.perf_counter()
        reranker.rerank(query, cands)
        total = time.perf_counter() - start
        row = {"seconds": total, "decode_seconds": decode.seconds, "processor_seconds": proc_timer.seconds,
               "model_seconds": max(0.0, total - decode.seconds - proc_timer.seconds)}
        if best is None or total < best["seconds"]:
            best = row
    assert best is not None
    return best


def _fmt(name: str, n: int, row: dict[str, Any], ref: float | None) -> str:
    per_s = n / row["seconds"]
    share = row["processor_seconds"] / row["seconds"]
    decode_share = row["decode_seconds"] / row["seconds"]
    tokens = row.get("image_tokens_per_page")
    ratio = "" if ref is None else f"{ref / row['seconds']:.2f}x"
    tok = "" if tokens is None else f"{tokens:.0f}"
    return (f"| {name} | {tok} | {per_s:.2f} | {row['decode_seconds']:.3f} | {row['processor_seconds']:.3f} | "
            f"{row['model_seconds']:.3f} | {share:.0%} | {decode_share:.0%} | {ratio} |")


def main(argv: Sequence[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pages", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--dpi", type=int, default=150)
    ap.add_argument("--output", default=str(Path(__file__).parent / "results" / "multimodal.json"))
    args = ap.parse_args(argv)

    import torch

    from rerank_plugins.testing.tiny_vision import build_tiny_clip, build_tiny_qwen2_vl

    if args.threads is not None:
        torch.set_num_threads(args.threads)
    warnings.simplefilter("ignore")
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        query, cands = _pages(args.pages, args.dpi, root / "pages")
        from PIL import Image

        w, h = Image.open(cands[0].image).size
        print(f"{len(cands)} Cranfield pages rendered at {w}x{h} px ({args.dpi} dpi); query: {query[:70]!r}")
        cpu = platform.processor() or platform.machine()
        print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, {cpu}")
        print("\n| setting | image tokens / page | images/s | decode s | processor s | model s | processor share "
              "| decode share | vs one-per-forward |")
        print("|---|---|---|---|---|---|---|---|---|")
        qwen_dir = build_tiny_qwen2_vl(root / "qwen2-vl")
        for name, max_pixels in QWEN_SETTINGS:
            single = _time_qwen(qwen_dir, max_pixels, query, cands, args.repeats, batch=1)
            batched = _time_qwen(qwen_dir, max_pixels, query, cands, args.repeats, batch=len(cands))
            print(_fmt(f"{name}, one page per forward (rerankers' loop)", len(cands), single, None))
            print(_fmt(f"{name}, batched", len(cands), batched, single["seconds"]))
            rows += [{"setting": name, "mode": "one-per-forward", **single},
                     {"setting": name, "mode": "batched", **batched}]
        for name, size, patch in CLIP_SETTINGS:
            clip_dir = build_tiny_clip(root / f"clip-{size}", image_size=size, patch_size=patch)
            row = _time_clip(clip_dir, query, cands, args.repeats)
            print(_fmt(name, len(cands), row, None))
            rows.append({"setting": name, "mode": "batched", **row})
    print("\nTiny random towers: the model column is a floor, not a real model's cost; decode and processor are real.")
    meta = {"pages": len(cands), "page_px": [w, h], "dpi": args.dpi, "threads": torch.get_num_threads(),
            "python": sys.version.split()[0], "torch": torch.__version__}
    save_results(args.output, {"meta": meta, "results": rows})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
