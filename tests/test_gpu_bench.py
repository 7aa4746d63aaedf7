"""benchmarks/gpu.py (issue 23): the CPU rehearsal computes every ratio and score difference (default tier), a figure
that is not computed is an error, and - in the ``gpu`` tier - each path runs on CUDA at small sizes.

The default-tier run is ``python benchmarks/gpu.py --device cpu --tiny`` in a child process (tiny random models, 24
pairs; about 30 s of CPU): its speed figures are not claims, only their presence and the back-off's correctness are
checked.
"""

from __future__ import annotations

import importlib.util
import json
import math
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("transformers")
pytest.importorskip("sentence_transformers")

ROOT = Path(__file__).resolve().parents[1]
BENCHMARKS = ROOT / "benchmarks"
SCRIPT = BENCHMARKS / "gpu.py"


def _load_gpu() -> Any:
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))  # gpu.py imports its siblings _common, pointwise and listwise
    spec = importlib.util.spec_from_file_location("_bench_gpu", SCRIPT)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


gpu = _load_gpu()


def _run_script(tmp: Path, *extra: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    out = tmp / "gpu.json"
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env.setdefault("OMP_NUM_THREADS", "1")
    proc = subprocess.run(
        [sys.executable, str(SCRIPT), "--device", "cpu", "--tiny", "--repeats", "1", "--out", str(out),
         "--assets", str(tmp / "no-assets"), *extra],
        capture_output=True, text=True, timeout=900, env=env, cwd=str(ROOT),
    )
    return proc, out


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    pytest.importorskip("bm25s")  # the Cranfield pairs are BM25's top 100
    proc, out = _run_script(tmp_path_factory.mktemp("gpu-rehearsal"))
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    result["stdout"] = proc.stdout
    return result


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def test_cpu_rehearsal_computes_every_target(rehearsal: dict[str, Any]) -> None:
    assert rehearsal["missing"] == []
    names = [t["target"] for t in rehearsal["targets"]]
    assert names[: len(gpu.TARGETS)] == [name for name, _, _ in gpu.TARGETS]
    # context: sentence-transformers' own bf16 tau at both sizes (the trained encoder is skipped at tiny sizes)
    assert names[len(gpu.TARGETS) :] == [name for name, _, _ in gpu.CONTEXT[:2]]
    for t in rehearsal["targets"]:
        assert _finite(t["value"]), t
        assert t["verdict"] != "NOT COMPUTED"
        # speed is not judged on the CPU; the back-off's correctness is
        if t["target"].startswith("(context)"):
            assert t["verdict"] == "computed (not judged off CUDA)", t
        elif t["target"].startswith("back-off"):
            assert t["verdict"] == "pass", t
        else:
            assert t["verdict"].startswith("computed"), t


def test_cpu_rehearsal_rows(rehearsal: dict[str, Any]) -> None:
    ce = {r["model"]: r for r in rehearsal["cross_encoder"]}
    assert set(ce) == {"minilm-l6", "xlmr-base"}
    for res in ce.values():
        systems = [r["system"] for r in res["rows"]]
        assert systems == [f"{who} {dt}" for who in ("ours", "sentence-transformers")
                           for dt in ("fp32", "fp16", "bf16")]
        by = {r["system"]: r for r in res["rows"]}
        # the same weights: sentence-transformers fp32 gives our fp32 scores
        assert by["sentence-transformers fp32"]["max_abs_diff_vs_fp32"] < 1e-5
        for row in res["rows"]:
            for key in ("pairs_per_s", "max_abs_diff_vs_fp32", "kendall_tau_vs_fp32", "useful_tflops",
                        "ceiling_share"):
                assert _finite(row[key]), (row["system"], key)
            assert row["peak_gib"] is None  # GPU memory only on CUDA
        assert res["gflop_per_pair"] > 0
    assert rehearsal["bf16_ceiling_tflops"] > 0
    yes_no = rehearsal["yes_no"]
    assert yes_no["max_abs_diff"] < 1e-4  # fp32 on the CPU: the recipe is the card's arithmetic
    assert _finite(yes_no["max_abs_diff_ours_vs_card_fp32"])
    first = rehearsal["first"]
    assert first["passages"] == 20 and first["windows"] == 1 and first["prompt_tokens"] > 100
    assert _finite(first["generate_over_first"])
    backoff = rehearsal["backoff"]
    assert backoff["forced"]["ooms"] >= 1 and backoff["not_scored_once"] == 0
    assert backoff["fitted"]["ooms"] == 0 and backoff["max_abs_diff_fitted"] <= 1e-5
    table = [line for line in rehearsal["stdout"].splitlines() if line.startswith("|")]
    assert len({line.count("|") for line in table[: len(rehearsal["table"]) + 2]}) == 1


def test_a_missing_figure_is_an_error(tmp_path: Path) -> None:
    proc, out = _run_script(tmp_path, "--parts", "backoff")
    assert proc.returncode == 1
    assert "NOT COMPUTED" in proc.stderr and "yes/no" in proc.stderr
    result = json.loads(out.read_text())
    assert result["backoff"]["not_scored_once"] == 0


def test_judge_flags_missing_and_nan() -> None:
    result: dict[str, Any] = {"cross_encoder": [], "yes_no": {"ratio": float("nan"), "max_abs_diff": 0.0},
                              "table": [{"section": "s", "system": "x", "pairs_per_s": None}]}
    targets, missing = gpu.judge(result, check=True)
    assert "yes/no: ours / card loop pairs/s" in missing
    assert "yes/no: max |ours - card|" not in missing
    assert "s / x: pairs_per_s" in missing
    assert {t["verdict"] for t in targets if t["target"] == "yes/no: max |ours - card|"} == {"pass"}


def test_token_budget_grows_with_free_memory() -> None:
    config = type("C", (), {"intermediate_size": 1536, "hidden_size": 384, "num_attention_heads": 12,
                            "max_position_embeddings": 512})()
    small, big = gpu.token_budget(2**30, config, 4), gpu.token_budget(2**34, config, 4)
    assert 1 <= small < big
    assert gpu.token_budget(0, config, 4) == 1


# ---------------------------------------------------------------------------------------------- gpu tier
@pytest.fixture(scope="module")
def cuda_setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    device = torch.device("cuda")
    tmp = tmp_path_factory.mktemp("gpu-cuda")
    assets = gpu.DEFAULT_ASSETS
    return {"device": device, "tmp": tmp, "assets": assets, "pairs": gpu.load_pairs(assets, 3, 256)}


@pytest.mark.gpu
def test_cuda_cross_encoder_small(cuda_setup: dict[str, Any]) -> None:
    s = cuda_setup
    folder = gpu.build_cross_encoder(s["tmp"] / "ce", gpu.CE_SHAPES["minilm-l6"], gpu.minilm_tokenizer_dir(s["assets"]),
                                     tiny=False, device=s["device"])
    res = gpu.bench_cross_encoder("minilm-l6", folder, s["pairs"][:64], s["device"], repeats=1, max_length=256,
                                  ceiling=gpu.matmul_ceiling(s["device"], 2048))
    by = {r["system"]: r for r in res["rows"]}
    assert by["sentence-transformers fp32"]["max_abs_diff_vs_fp32"] < 1e-4
    for row in res["rows"]:
        assert _finite(row["peak_gib"]) and row["peak_gib"] > 0
        assert _finite(row["kendall_tau_vs_fp32"]) and _finite(row["ceiling_share"])


@pytest.mark.gpu
def test_cuda_yes_no_and_first_small(cuda_setup: dict[str, Any]) -> None:
    s = cuda_setup
    tok = gpu.llm_tokenizer_dir(s["assets"], s["tmp"])
    qwen3 = gpu.build_causal_lm(s["tmp"] / "qwen3", gpu.LLM_SHAPES["qwen3-0.6b"], tok, tiny=True, device=s["device"])
    yes_no = gpu.bench_yes_no(qwen3, s["pairs"][:16], s["device"], "bfloat16", repeats=1, batch_size=8)
    assert _finite(yes_no["ratio"]) and yes_no["max_abs_diff"] < 2e-2
    assert yes_no["max_abs_diff_ours_vs_card_fp32"] < 2e-2
    qwen2 = gpu.build_causal_lm(s["tmp"] / "qwen2", gpu.LLM_SHAPES["qwen2.5-0.5b"], tok, tiny=True, device=s["device"])
    first = gpu.bench_first(qwen2, s["pairs"], s["device"], "bfloat16", repeats=2, words=30, max_new_tokens=16)
    assert first["windows"] == 1 and _finite(first["first_over_bare"]) and first["first_over_bare"] > 0


@pytest.mark.gpu
def test_cuda_forced_backoff_loses_nothing(cuda_setup: dict[str, Any]) -> None:
    s = cuda_setup
    folder = s["tmp"] / "backoff"
    gpu.build_cross_encoder(folder, gpu.CE_SHAPES["minilm-l6"], gpu.minilm_tokenizer_dir(s["assets"]), tiny=False,
                            device=s["device"])
    res = gpu.bench_backoff(folder, s["pairs"], s["device"], headroom_mib=128)
    assert res["forced"]["ooms"] >= 1, res
    assert res["not_scored_once"] == 0 and res["max_abs_diff"] <= 1e-5
