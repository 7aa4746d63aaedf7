"""Rank page screenshots for a query: Cranfield abstracts rendered to PNG pages, reranked by the three multimodal
strategies (vision yes/no, MM-R5-style reasoning, CLIP).

    python examples/multimodal_pages.py                 # tiny random models: MECHANICS ONLY
    python examples/multimodal_pages.py --pages 10 --query-index 3
    python examples/multimodal_pages.py --vlm lightonai/MonoQwen2-VL-v0.1 --clip openai/clip-vit-base-patch32

MECHANICS ONLY by default. No real vision-language or CLIP weights can be downloaded in this project's offline
environment, so without ``--vlm`` / ``--clip`` the script builds tiny models with RANDOM weights from the real
Qwen2-VL and CLIP configs. Everything real users run happens (pages rendered and validated, images resized by
the Qwen2-VL processor into image tokens, the answer token's logits read after them, generation and answer
parsing for the reasoning strategy, CLIP embeddings), but the scores and orders are noise: do not read quality
into them. With ``--vlm`` / ``--clip`` pointing at real models (hub ids on a connected machine, or local
folders) the same code ranks for real.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=6, help="candidate pages (half of them judged relevant when possible)")
    p.add_argument("--query-index", type=int, default=0, help="which judged Cranfield query")
    p.add_argument("--vlm", default=None, help="a real vision-language model (hub id or folder); default: tiny random")
    p.add_argument("--clip", default=None, help="a real CLIP / SigLIP model (hub id or folder); default: tiny random")
    p.add_argument("--max-pixels", type=int, default=28 * 28 * 256, help="Qwen2-VL max_pixels (image tokens x 784)")
    args = p.parse_args()
    warnings.simplefilter("ignore", UserWarning)

    from rerank_plugins import load_reranker
    from rerank_plugins.testing.pages import page_candidates
    from rerank_plugins.testing.tiny_vision import build_tiny_clip, build_tiny_qwen2_vl

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        pages = page_candidates(args.pages, query_index=args.query_index, folder=root / "pages", size=(827, 1169))
        print(f"query ({pages.source}): {pages.query}")
        print(f"{len(pages.candidates)} page screenshots in {root / 'pages'}; judged gains: {pages.gains}\n")

        random_weights = args.vlm is None or args.clip is None
        vlm = args.vlm or str(build_tiny_qwen2_vl(root / "tiny-qwen2-vl"))
        clip = args.clip or str(build_tiny_clip(root / "tiny-clip"))
        if random_weights:
            print("!! tiny models with RANDOM weights: this run shows the mechanics, the scores mean nothing !!\n")

        options = {"device": "cpu", "max_pixels": args.max_pixels}
        rerankers = {
            "vision yes/no": load_reranker(vlm, kind="vision-yes-no", backend_options=options),
            "vision reasoning (MM-R5 format)": load_reranker(
                vlm, kind="vision-reasoning", backend_options=options, fallback="keep",
                max_new_tokens=64 if args.vlm is None else 1024,
            ),
            "CLIP": load_reranker(clip, kind="clip"),
        }
        for name, reranker in rerankers.items():
            start = time.perf_counter()
            result = reranker.rerank(pages.query, pages.candidates)
            took = time.perf_counter() - start
            print(f"== {name} ({took:.2f} s)")
            for r in result.results:
                extra = r.details.get("modality", "")
                print(f"  {r.rank}. page {r.id:>5}  score {r.score:+.4f}  gain {pages.gains[r.id]}  {extra}")
            for t in result.traces:
                status = f"FAILED ({t.error})" if t.failed else f"answer -> {list(t.output_ids)}"
                print(f"  window [{t.start}, {t.end}) {status}")
            print()
            reranker.close()


if __name__ == "__main__":
    main()
