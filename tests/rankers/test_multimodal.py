"""Multimodal strategies on tiny random models (offline): vision yes/no, vision reasoning (MM-R5 format), CLIP.

The realistic fixture is a set of Cranfield abstracts rendered to PNG pages (``rerank_plugins.testing.pages``),
so a Cranfield query ranks page screenshots as in MMDocIR. The weights are random: the tests prove the
mechanics (every input back once, image tokens, labels read after them, failures), not the quality.
"""

from __future__ import annotations

import dataclasses
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
Image = pytest.importorskip("PIL.Image")

from rerank_plugins import Candidate, Query, load_reranker  # noqa: E402
from rerank_plugins.backends.base import Generation  # noqa: E402
from rerank_plugins.backends.vision import VisionLanguageBackend  # noqa: E402
from rerank_plugins.errors import InvalidInputError, ModelOutputError  # noqa: E402
from rerank_plugins.images import ImageLimits  # noqa: E402
from rerank_plugins.rankers.clip import ClipReranker  # noqa: E402
from rerank_plugins.rankers.vision_reasoning import VisionReasoningReranker  # noqa: E402
from rerank_plugins.rankers.vision_yes_no import VisionYesNoReranker  # noqa: E402
from rerank_plugins.testing import RerankerConformance, ScriptedLLM  # noqa: E402
from rerank_plugins.testing.pages import PageSet, page_candidates, page_png  # noqa: E402
from rerank_plugins.testing.tiny_vision import build_tiny_clip  # noqa: E402
from rerank_plugins.types import as_candidates  # noqa: E402


@pytest.fixture(scope="module")
def vl_backend(tiny_qwen2_vl_dir: Path) -> VisionLanguageBackend:
    return VisionLanguageBackend(str(tiny_qwen2_vl_dir), device="cpu", batch_size=8)


@pytest.fixture(scope="module")
def clip_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    pytest.importorskip("sentence_transformers")
    return build_tiny_clip(tmp_path_factory.mktemp("mm-clip"))


@pytest.fixture(scope="module")
def clip(clip_dir: Path) -> ClipReranker:
    return ClipReranker(str(clip_dir), device="cpu")


@pytest.fixture(scope="module")
def pages(tmp_path_factory: pytest.TempPathFactory) -> PageSet:
    return page_candidates(6, folder=tmp_path_factory.mktemp("pages"), size=(320, 452))


class AsPages:
    """The image-candidate variant of a reranker for the conformance suite: every candidate's text is rendered to
    a page image and the reranker sees only the image; results map back to the caller's candidates."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self._png: dict[str, bytes] = {}

    def _page(self, text: str) -> bytes:
        if text not in self._png:
            self._png[text] = page_png(text[:2000], size=(224, 224), font_size=12, margin=8)
        return self._png[text]

    def rerank(self, query: Any, candidates: Sequence[Any], top_k: int | None = None,
               score_threshold: float | None = None) -> Any:
        originals = as_candidates(candidates)
        images = [Candidate(id=c.id, image=self._page(c.content), metadata=c.metadata) for c in originals]
        result = self.inner.rerank(query, images, top_k=top_k, score_threshold=score_threshold)
        by_id = {c.id: c for c in originals}
        for r in result.results:
            assert r.candidate.text is None and r.candidate.image is not None  # the model saw only the image
        results = tuple(dataclasses.replace(r, candidate=by_id[r.id]) for r in result.results)
        return dataclasses.replace(result, results=results)


# ---------------------------------------------------------------------------------------------- conformance
class TestVisionYesNoConformanceText(RerankerConformance):
    @pytest.fixture
    def reranker(self, vl_backend: VisionLanguageBackend) -> Any:
        return VisionYesNoReranker(vl_backend)


class TestVisionYesNoConformanceImages(RerankerConformance):
    @pytest.fixture
    def reranker(self, vl_backend: VisionLanguageBackend) -> Any:
        return AsPages(VisionYesNoReranker(vl_backend))


class TestVisionReasoningConformanceText(RerankerConformance):
    @pytest.fixture
    def reranker(self, vl_backend: VisionLanguageBackend) -> Any:
        return VisionReasoningReranker(vl_backend, fallback="keep", max_new_tokens=4)


class TestVisionReasoningConformanceImages(RerankerConformance):
    # The random model never closes its reasoning: with fallback="keep" each window keeps its order.
    @pytest.fixture
    def reranker(self, vl_backend: VisionLanguageBackend) -> Any:
        return AsPages(VisionReasoningReranker(vl_backend, fallback="keep", max_new_tokens=4))


class TestClipConformanceText(RerankerConformance):
    @pytest.fixture
    def reranker(self, clip: ClipReranker) -> Any:
        return clip


class TestClipConformanceImages(RerankerConformance):
    @pytest.fixture
    def reranker(self, clip: ClipReranker) -> Any:
        return AsPages(clip)


# ---------------------------------------------------------------------------------------------- page screenshots
def _check_all_back(result: Any, cands: Sequence[Candidate]) -> None:
    assert sorted(result.ids) == sorted(c.id for c in cands)
    assert [r.rank for r in result.results] == list(range(1, len(cands) + 1))
    assert all(type(r.score) is float for r in result.results)


def test_cranfield_pages_through_every_strategy(
    pages: PageSet, vl_backend: VisionLanguageBackend, clip: ClipReranker
) -> None:
    assert pages.source in ("cranfield", "faq-en")  # FAQ when Cranfield is not beside the checkout
    assert any(g > 0 for g in pages.gains.values())
    yes_no = VisionYesNoReranker(vl_backend).rerank(pages.query, pages.candidates)
    _check_all_back(yes_no, pages.candidates)
    assert all(0.0 < r.score < 1.0 and r.details["modality"] == "image" for r in yes_no.results)
    reasoning = VisionReasoningReranker(vl_backend, fallback="keep", max_new_tokens=4).rerank(
        pages.query, pages.candidates
    )
    _check_all_back(reasoning, pages.candidates)
    assert reasoning.details["windows"] == 2  # 6 pages, window 5, stride 3
    assert all(t.failed for t in reasoning.traces)
    clip_result = clip.rerank(pages.query, pages.candidates)
    _check_all_back(clip_result, pages.candidates)
    assert all(r.details["modality"] == "image" for r in clip_result.results)


def test_mixed_modalities(vl_backend: VisionLanguageBackend, clip: ClipReranker) -> None:
    cands = [
        Candidate(id="img", image=Image.new("RGB", (300, 420), "white")),
        Candidate(id="txt", text="Shock waves form ahead of a supersonic wing."),
        Candidate(id="both", text="Boundary layer transition.", image=Image.new("RGB", (120, 90), "gray")),
    ]
    for reranker in (VisionYesNoReranker(vl_backend), clip):
        result = reranker.rerank("shock waves", cands)
        _check_all_back(result, cands)
        assert {r.id: r.details["modality"] for r in result.results} == {
            "img": "image", "txt": "text", "both": "image+text",
        }


def test_rerank_batch_and_async(pages: PageSet, vl_backend: VisionLanguageBackend) -> None:
    reranker = VisionYesNoReranker(vl_backend)
    alone = [reranker.rerank(q, pages.candidates[:3]) for q in ("shock waves", "heat transfer")]
    batch = reranker.rerank_batch(["shock waves", "heat transfer"], [pages.candidates[:3]] * 2)
    assert [b.ids for b in batch] == [a.ids for a in alone]
    assert batch[1].scores == pytest.approx(alone[1].scores, abs=1e-5)
    import asyncio

    got = asyncio.run(reranker.arerank("shock waves", pages.candidates[:3]))
    assert got.ids == alone[0].ids


# ---------------------------------------------------------------------------------------------- bad images
@pytest.mark.parametrize("which", ["corrupt", "missing", "huge", "not-an-image"])
def test_bad_images_fail_early_and_name_the_candidate(
    which: str, vl_backend: VisionLanguageBackend, clip: ClipReranker, tmp_path: Path
) -> None:
    good = Candidate(id="good", image=page_png("fine page", size=(100, 140)))
    png = page_png("a page", size=(200, 280))
    bad_image: Any = {
        "corrupt": png[: len(png) // 2],
        "missing": str(tmp_path / "missing.png"),
        "huge": Image.new("RGB", (2000, 1500)),
        "not-an-image": b"%PDF-1.4 this is not an image",
    }[which]
    expected = {"corrupt": "corrupt or truncated", "missing": "does not exist", "huge": "over the limit",
                "not-an-image": "not an image"}[which]
    cands = [good, Candidate(id="bad-7", image=bad_image)]
    limits = ImageLimits(max_pixels=1_000_000)
    before = vl_backend.stats.forward_calls
    for reranker in (
        VisionYesNoReranker(vl_backend, image_limits=limits),
        VisionReasoningReranker(vl_backend, image_limits=limits, fallback="keep", max_new_tokens=2),
        ClipReranker(clip.model, image_limits=limits),
    ):
        with pytest.raises(InvalidInputError, match=rf"candidate 'bad-7'.*{expected}"):
            reranker.rerank("query", cands)
    assert vl_backend.stats.forward_calls == before  # refused before any model work


def test_mixed_image_sizes_batch_equals_one_by_one(tiny_qwen2_vl_dir: Path, vl_backend: VisionLanguageBackend) -> None:
    sizes = [(640, 905), (90, 60), (1200, 300), (300, 1200), (28, 28), (500, 500)]
    cands = [Candidate(id=f"p{i}", image=Image.new("RGB", s, (i * 40, 100, 200))) for i, s in enumerate(sizes)]
    batched = VisionYesNoReranker(vl_backend, batch_size=6).rerank("wing flutter", cands)
    single_backend = VisionLanguageBackend(str(tiny_qwen2_vl_dir), device="cpu", batch_size=1)
    single = VisionYesNoReranker(single_backend, batch_size=1).rerank("wing flutter", cands)
    assert batched.ids == single.ids
    assert batched.scores == pytest.approx(single.scores, abs=1e-5)
    assert single_backend.stats.forward_calls == 6


# ---------------------------------------------------------------------------------------------- yes/no reads logits
def test_yes_no_reads_the_configured_answer_tokens_after_the_image_tokens(vl_backend: VisionLanguageBackend) -> None:
    reranker = VisionYesNoReranker(vl_backend, preset="monoqwen2-vl")
    assert reranker.labels.yes == ("True",) and reranker.labels.no == ("False",)
    tok = vl_backend.tokenizer
    true_id, false_id = (tok("x\n" + w, add_special_tokens=False)["input_ids"][-1] for w in ("True", "False"))
    forwards: list[dict[str, Any]] = []
    generates: list[Any] = []
    model = vl_backend.model
    real_forward = model.forward

    def forward_spy(*args: Any, **kwargs: Any) -> Any:
        out = real_forward(*args, **kwargs)
        forwards.append({**kwargs, "logits": out.logits.detach().clone()})
        return out

    model.forward = forward_spy  # type: ignore[method-assign]
    model.generate = lambda *a, **k: generates.append(1)  # type: ignore[method-assign]
    gen_before = vl_backend.stats.generate_calls
    try:
        cands = [Candidate(id="a", image=Image.new("RGB", (224, 224), "white")),
                 Candidate(id="b", image=Image.new("RGB", (168, 300), "black"))]
        result = reranker.rerank("shock waves", cands)
    finally:
        del model.forward
        del model.generate
    assert generates == [] and vl_backend.stats.generate_calls == gen_before
    assert len(forwards) == 1
    call = forwards[0]
    assert call["logits_to_keep"] == 1 and call["logits"].shape[1] == 1
    tail = tok("<|im_end|>\n<|im_start|>assistant\n", add_special_tokens=False)["input_ids"]
    image_id = vl_backend.image_token_id
    for row in call["input_ids"].tolist():
        assert row[-len(tail) :] == tail  # the answer position follows the generation prompt ...
        assert row.count(image_id) > 0  # ... which follows the image tokens
        assert max(i for i, t in enumerate(row) if t == image_id) < len(row) - len(tail)
    logp = torch.log_softmax(call["logits"][:, -1, :].float(), dim=-1)
    by_id = {r.id: r for r in result.results}
    for row, cid in enumerate(["a", "b"]):
        lt, lf = float(logp[row, true_id]), float(logp[row, false_id])
        assert by_id[cid].details["logprob_yes"] == pytest.approx(lt, abs=1e-5)
        assert by_id[cid].details["logprob_no"] == pytest.approx(lf, abs=1e-5)
        p = float(torch.softmax(torch.tensor([lt, lf]), 0)[0])
        assert by_id[cid].score == pytest.approx(p, abs=1e-6)  # MonoQwen's softmax over (True, False)


def test_preset_follows_the_exact_model_id() -> None:
    fake = ScriptedLLM(logprobs={"True": -0.1, "False": -2.3}, model_id="lightonai/MonoQwen2-VL-v0.1")
    reranker = VisionYesNoReranker(fake)
    assert reranker.template.name == "monoqwen2-vl"
    result = reranker.rerank("q", [Candidate(id="p", image=Image.new("RGB", (10, 10)))])
    assert result.results[0].details["labels"] == ["True", "False"]
    other = VisionYesNoReranker(ScriptedLLM(logprobs={"yes": -1.0, "no": -1.0}))
    assert other.template.name == "vision-yes-no"


def test_query_image_is_refused_by_vision_llm_strategies(vl_backend: VisionLanguageBackend) -> None:
    query = Query(text="", image=Image.new("RGB", (20, 20)))
    with pytest.raises(InvalidInputError, match="ClipReranker"):
        VisionYesNoReranker(vl_backend).rerank(query, [Candidate(id="a", text="x")])


def test_clip_image_query_and_fusion_weight(clip: ClipReranker) -> None:
    img = Image.new("RGB", (300, 300), "white")
    cands = [Candidate(id="same", image=img), Candidate(id="txt", text="unrelated words entirely")]
    result = clip.rerank(Query(text="", image=img), cands)
    assert result.ids[0] == "same" and result.results[0].score == pytest.approx(1.0, abs=1e-5)
    assert result.details["query_modality"] == "image"
    both = Candidate(id="both", text="shock waves", image=img)
    text_only = ClipReranker(clip.model, image_weight=0.0).rerank("shock waves", [both])
    assert text_only.results[0].score == pytest.approx(1.0, abs=1e-5)  # fused embedding == the text's


# ---------------------------------------------------------------------------------------------- reasoning rules
def _window_answer(text: str) -> str:
    n = text.count("'type': 'image'")
    order = ", ".join(str(i) for i in range(n, 0, -1))
    return f"<think>Image 2 shows the shock.</think><answer>[{order}]</answer>"


def test_reasoning_answer_is_read_from_the_answer_only() -> None:
    fake = ScriptedLLM(outputs=_window_answer)
    reranker = VisionReasoningReranker(fake, window_size=5, stride=3)
    cands = [Candidate(id=f"p{i}", image=Image.new("RGB", (40, 40))) for i in range(3)]
    result = reranker.rerank("shock", cands)
    assert result.ids == ["p2", "p1", "p0"]
    assert all(r.reasoning == "Image 2 shows the shock." for r in result.results)
    assert len(fake.generate_calls) == 1 and not fake.logprob_calls
    sent = fake.calls[0].prompts[0].messages[-1]["content"]
    assert [p["type"] for p in sent] == ["text", "text", "image", "text", "image", "text", "image"]
    assert sent[0]["text"].endswith("images:\n")
    assert [sent[1]["text"], sent[3]["text"], sent[5]["text"]] == ["Image 1:", "\nImage 2:", "\nImage 3:"]


@pytest.mark.parametrize(
    ("output", "reason"),
    [
        (Generation("<think>the first page shows [2] > [1]", "length"), "not closed"),
        (Generation("<think>fine</think> so the ranking is 2, 1", "stop"), "no <answer>"),
        (Generation("<think>fine</think><answer>  </answer>", "stop"), "empty"),
        (Generation("<think>fine</think><answer>[2, 1", "length"), "not closed"),
        (Generation("<think>fine</think><answer>none of them</answer>", "stop"), "names no passage"),
    ],
)
def test_reasoning_failures_follow_the_text_rules(output: Generation, reason: str) -> None:
    cands = [Candidate(id=f"p{i}", image=Image.new("RGB", (30, 30))) for i in range(2)]
    with pytest.raises(ModelOutputError, match=reason) as info:
        VisionReasoningReranker(ScriptedLLM(outputs=[output])).rerank("q", cands)
    assert info.value.raw_text is not None and output.text in info.value.raw_text
    kept = VisionReasoningReranker(ScriptedLLM(outputs=[output]), fallback="keep").rerank("q", cands)
    assert kept.ids == ["p0", "p1"]
    (trace,) = kept.traces
    assert trace.failed and reason in (trace.error or "")
    assert kept.details["failed_windows"] == 1
    assert all(r.reasoning is None for r in kept.results)  # never taken from a failed window


def test_real_backend_truncation_raises_by_default(vl_backend: VisionLanguageBackend) -> None:
    cands = [Candidate(id=f"p{i}", image=Image.new("RGB", (60, 60))) for i in range(2)]
    with pytest.raises(ModelOutputError, match="token limit"):
        VisionReasoningReranker(vl_backend, max_new_tokens=3).rerank("q", cands)


# ---------------------------------------------------------------------------------------------- registry
def test_load_reranker_kinds(tiny_qwen2_vl_dir: Path, clip_dir: Path) -> None:
    yes_no = load_reranker(str(tiny_qwen2_vl_dir), kind="vision-yes-no", backend_options={"device": "cpu"})
    assert isinstance(yes_no, VisionYesNoReranker)
    assert isinstance(yes_no.backend, VisionLanguageBackend)
    yes_no.close()
    reasoning = load_reranker(str(tiny_qwen2_vl_dir), kind="vision-reasoning", fallback="keep", max_new_tokens=2)
    assert isinstance(reasoning, VisionReasoningReranker)
    reasoning.close()
    clip = load_reranker(str(clip_dir), kind="clip")
    assert isinstance(clip, ClipReranker)
    buf = io.BytesIO()
    Image.new("RGB", (50, 50), "red").save(buf, "PNG")
    assert clip.rerank("red", [{"id": "a", "image": buf.getvalue()}, {"id": "b", "text": "red"}]).ids


def test_siglip_dual_encoder(tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    from rerank_plugins.testing.tiny_vision import build_tiny_siglip

    reranker = ClipReranker(str(build_tiny_siglip(tmp_path / "siglip")), device="cpu")
    cands = [Candidate(id="i", image=Image.new("RGB", (100, 100))), Candidate(id="t", text="text")]
    _check_all_back(reranker.rerank("query", cands), cands)
