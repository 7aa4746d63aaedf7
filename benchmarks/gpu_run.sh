#!/usr/bin/env bash
# The whole GPU device run of issue 23 in one command (well inside 8 minutes on one H100/H200):
#   1. installs the carried wheels of the core dependencies the device image lacks (its image has CUDA torch,
#      transformers, sentence-transformers, onnxruntime, numpy, tqdm, typer, scipy ...; not pydantic), then the
#      package itself (pip install --no-deps -e ., and the source tree on PYTHONPATH in any case);
#   2. runs the gpu test tier: pytest -m gpu on the files that need no bundled model package;
#   3. runs benchmarks/gpu.py (cross-encoder, yes/no recipe, FIRST, token budget + OOM back-off);
#   leaving env.txt, pytest.txt, gpu_table.md, gpu_stderr.txt and gpu.json under $OUT.
#
# Here, once, with PyPI reachable (fills benchmarks/gpu_carry/, ignored by git, about 53 MiB):
#   PYTHON=/work/main/.venv/bin/python bash benchmarks/gpu_run.sh --fetch
# which runs (the wheels for the image's CPython 3.12, manylinux x86_64):
#   pip download --only-binary=:all: --python-version 3.12 --implementation cp --platform manylinux_2_28_x86_64 \
#     --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 -c constraints.txt \
#     -d benchmarks/gpu_carry/wheels <core deps the image lacks, with their dependencies>
#   python benchmarks/gpu.py --prepare benchmarks/gpu_carry/assets  # tokenizers, 2,000 Cranfield pairs, and
#     all-MiniLM-L6-v2's trained encoder with a seeded head in fp16 (45 MB, the context cross-encoder)
# and checks the wheels install and import in a fresh CPython 3.12 venv with no index (when python3.12 exists).
#
# On the device (the `run` tool): carry ["benchmarks/gpu_carry"], command `bash benchmarks/gpu_run.sh`.
# CPU rehearsal (tiny sizes, CUDA-only tests skip, the install goes to a scratch --target):
#   GPU_RUN_DEVICE=cpu PYTHON=/work/main/.venv/bin/python bash benchmarks/gpu_run.sh
set -uo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-python3}
CARRY=benchmarks/gpu_carry
WHEELS=$CARRY/wheels
DEVICE=${GPU_RUN_DEVICE:-cuda}
WHEEL_PY=${GPU_WHEEL_PY:-3.12}
OUT=${OUT:-$ROOT/benchmarks/results/gpu-run}
#: packages the device image holds (KINDS.md of the device tool, read 2026-11-17), by normalised name
IMAGE_HAS="numpy tqdm typer typing-extensions click rich shellingham torch transformers sentence-transformers"
IMAGE_HAS="$IMAGE_HAS onnxruntime onnx scipy scikit-learn huggingface-hub tokenizers safetensors jinja2 httpx"
IMAGE_HAS="$IMAGE_HAS accelerate peft pytest hypothesis"
export HF_HUB_OFFLINE=1 TRANSFORMERS_OFFLINE=1 TOKENIZERS_PARALLELISM=false PYTHONUNBUFFERED=1

missing_core_deps() {
  # core dependencies of pyproject.toml that the image lacks (markers for Python < 3.11 dropped: the image has 3.12)
  IMAGE_HAS="$IMAGE_HAS" "$PY" - <<'EOF'
import os, re, tomllib
deps = tomllib.load(open("pyproject.toml", "rb"))["project"]["dependencies"]
have = set(os.environ["IMAGE_HAS"].split())
out = []
for dep in deps:
    if "python_version < '3.11'" in dep.replace('"', "'"):
        continue
    name = re.split(r"[<>=!~;\[ ]", dep, maxsplit=1)[0].strip().lower().replace("_", "-")
    if name not in have:
        out.append(name)
print(" ".join(out))
EOF
}

fetch() {
  local deps
  deps=$(missing_core_deps) || exit 1
  echo "core dependencies the image lacks: $deps"
  rm -rf "$WHEELS" && mkdir -p "$WHEELS"
  # shellcheck disable=SC2086
  "$PY" -m pip download -q --disable-pip-version-check --only-binary=:all: --python-version "$WHEEL_PY" \
    --implementation cp --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 \
    --platform manylinux2014_x86_64 -c constraints.txt -d "$WHEELS" $deps || exit 1
  "$PY" benchmarks/gpu.py --prepare "$CARRY/assets" || exit 1
  ls -la "$WHEELS"
  local kib tree
  kib=$(du -sk "$CARRY" | cut -f1)
  tree=$(git ls-files -z | du -ck --files0-from=- 2>/dev/null | tail -1 | cut -f1)
  echo "benchmarks/gpu_carry: $((kib / 1024)) MiB + tracked tree $((tree / 1024)) MiB (64 MiB may travel in all)"
  if [ $((kib + tree)) -gt $((60 * 1024)) ]; then echo "too large to carry" >&2; exit 1; fi
  # the wheels alone install and import in a fresh CPython $WHEEL_PY venv, with no index and no system packages
  local py3
  py3=$(PYENV_VERSION="${GPU_PYENV_VERSION:-3.12.1}" command -v "python$WHEEL_PY" 2>/dev/null || true)
  if [ -n "$py3" ] && PYENV_VERSION="${GPU_PYENV_VERSION:-3.12.1}" "$py3" --version >/dev/null 2>&1; then
    local venv
    venv=$(mktemp -d)
    PYENV_VERSION="${GPU_PYENV_VERSION:-3.12.1}" "$py3" -m venv "$venv" &&
      "$venv/bin/python" -m pip install -q --disable-pip-version-check --no-index --find-links "$WHEELS" \
        $deps &&
      "$venv/bin/python" -c "import pydantic; print('fresh venv: pydantic', pydantic.VERSION, 'imports')" ||
      { echo "the carried wheels do not install on their own" >&2; rm -rf "$venv"; exit 1; }
    rm -rf "$venv"
  else
    echo "no python$WHEEL_PY here: the fresh-venv check of the wheels is skipped"
  fi
}

if [ "${1:-}" = "--fetch" ]; then
  fetch
  exit $?
fi

mkdir -p "$OUT"
: >"$OUT/env.txt"
START=$(date +%s)
stamp() { echo "[$(($(date +%s) - START))s] $*" | tee -a "$OUT/env.txt"; }

# 1. install ---------------------------------------------------------------------------------------------------
SITE=$(mktemp -d /tmp/gpu-run-site.XXXX)
if [ "$DEVICE" = "cpu" ]; then
  # the rehearsal's interpreter may not be the image's CPython: resolve the carried wheels for it without installing
  "$PY" -m pip install -q --disable-pip-version-check --dry-run --no-index --no-deps --only-binary=:all: \
    --python-version "$WHEEL_PY" --implementation cp --platform manylinux2014_x86_64 --target "$SITE" \
    "$WHEELS"/*.whl >>"$OUT/env.txt" 2>&1 && stamp "wheels resolve for CPython $WHEEL_PY (dry run)" ||
    stamp "WARNING: the carried wheels did not resolve (run --fetch first)"
else
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-compile --target "$SITE" \
    "$WHEELS"/*.whl >>"$OUT/env.txt" 2>&1 || { stamp "installing the carried wheels failed"; exit 1; }
  export PYTHONPATH="$SITE"
  stamp "carried wheels installed to $SITE"
  "$PY" -m pip install -q --disable-pip-version-check --no-index --no-deps --no-build-isolation -e . \
    >>"$OUT/env.txt" 2>&1 && stamp "pip install --no-deps -e . done" ||
    stamp "pip install -e . failed: the source tree on PYTHONPATH serves instead"
fi
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"
{
  "$PY" -c "import sys, torch, transformers, sentence_transformers, pydantic, rerank_plugins
print('python', sys.version.split()[0], 'torch', torch.__version__, 'transformers', transformers.__version__,
      'sentence-transformers', sentence_transformers.__version__, 'pydantic', pydantic.VERSION)
print('rerank_plugins from', rerank_plugins.__file__)
print('cuda', torch.cuda.is_available(), torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
  if command -v nvidia-smi >/dev/null; then nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv; fi
} >>"$OUT/env.txt" 2>&1 || { stamp "the package does not import"; cat "$OUT/env.txt"; exit 1; }
stamp "environment checked"

# 2. the gpu test tier -----------------------------------------------------------------------------------------
# (tests/rankers/test_cross_encoder.py and test_embedding.py's gpu tests need the bundled MiniLM package, 88 MB:
# over what can be carried, so they stay for a machine that has it)
timeout 150 "$PY" -m pytest -q -p no:cacheprovider -m gpu -rs tests/test_gpu_bench.py tests/backends/test_device.py \
  >"$OUT/pytest.txt" 2>&1
PYTEST_RC=$?
stamp "pytest -m gpu: exit $PYTEST_RC ($(tail -1 "$OUT/pytest.txt"))"

# 3. the benchmark ---------------------------------------------------------------------------------------------
EXTRA=()
[ "$DEVICE" = "cpu" ] && EXTRA=(--tiny --repeats 1)
timeout 300 "$PY" benchmarks/gpu.py --device "$DEVICE" "${EXTRA[@]}" --out "$OUT/gpu.json" \
  >"$OUT/gpu_table.md" 2>"$OUT/gpu_stderr.txt"
BENCH_RC=$?
cat "$OUT/gpu_table.md"
stamp "benchmarks/gpu.py: exit $BENCH_RC"
[ "$PYTEST_RC" -eq 0 ] && [ "$BENCH_RC" -eq 0 ]
