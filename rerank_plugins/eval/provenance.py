"""What reproduces an evaluation: command line, reranker options, package versions, model files, threads.

``rerank-plugins eval`` writes :func:`provenance` into the ``"provenance"`` entry of ``<dataset>.eval.json``, so
a figure can be traced to the exact weights (a SHA-256 of each local weight file, or the hub revision of a cached
model), the options each reranker was built with and the software that computed it.
"""

from __future__ import annotations

import hashlib
import os
import platform
import sys
from collections.abc import Iterable, Mapping, Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

__all__ = [
    "PACKAGES",
    "code_version",
    "model_files",
    "package_versions",
    "provenance",
    "thread_info",
    "weight_files",
]

#: Distributions whose versions can change a figure (missing ones are reported as ``None``).
PACKAGES = (
    "rerank-plugins",
    "torch",
    "transformers",
    "sentence-transformers",
    "tokenizers",
    "huggingface-hub",
    "safetensors",
    "gguf",
    "numpy",
    "scipy",
    "ir-measures",
    "pytrec-eval-terrier",
    "rank-bm25",
    "bm25s",
    "faiss-cpu",
    "vllm",
    "llama-cpp-python",
)

#: Weight files hashed whole up to this size; larger ones are described by size only (hashing would dominate).
MAX_HASH_BYTES = 4 << 30
_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth", ".onnx")


def package_versions(names: Iterable[str] = PACKAGES) -> dict[str, str | None]:
    out: dict[str, str | None] = {}
    for name in names:
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = None
    return out


def thread_info() -> dict[str, Any]:
    """CPU count, the thread environment variables, and torch's intra/inter-op threads when torch is loaded."""
    info: dict[str, Any] = {"cpu_count": os.cpu_count()}
    for var in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "TOKENIZERS_PARALLELISM", "RAYON_NUM_THREADS"):
        info[var] = os.environ.get(var)
    torch = sys.modules.get("torch")  # never import torch just to report on it
    if torch is not None:
        info["torch_num_threads"] = torch.get_num_threads()
        info["torch_num_interop_threads"] = torch.get_num_interop_threads()
    return info


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _describe_file(path: Path) -> dict[str, Any]:
    size = path.stat().st_size
    row: dict[str, Any] = {"file": path.name, "bytes": size}
    row["sha256"] = _sha256(path) if size <= MAX_HASH_BYTES else None
    return row


def _hub_revision(hub_id: str) -> str | None:
    """The commit of the cached copy of ``hub_id`` (``refs/main`` in the Hugging Face cache), if any."""
    try:
        from huggingface_hub import constants
    except ImportError:
        return None
    ref = Path(constants.HF_HUB_CACHE) / f"models--{hub_id.replace('/', '--')}" / "refs" / "main"
    try:
        return ref.read_text(encoding="utf-8").strip() or None
    except OSError:
        return None


def weight_files(name_or_path: str) -> tuple[str, list[Path]]:
    """The resolved reference of a model name and its local weight files (empty for a hub id not on disk).

    Raises what :func:`rerank_plugins.models.resolve_model` raises for a name that does not resolve."""
    from ..models import resolve_model

    ref = resolve_model(name_or_path)
    root = Path(ref.name_or_path).expanduser()
    if not root.exists():
        return str(ref), []
    if ref.gguf_file is not None:
        return str(ref), [root / ref.gguf_file]
    if root.is_file():
        return str(ref), [root]
    return str(ref), sorted(p for p in root.rglob("*") if p.is_file() and p.suffix in _WEIGHT_SUFFIXES)


def model_files(name_or_path: str) -> dict[str, Any]:
    """The weights behind a reranker name: resolved path, hub revision, and each weight file's size and SHA-256.

    A strategy that needs no model (``bm25`` fusion, a remote service) and a name that does not resolve give
    ``{"model": name, "resolved": None}`` with the reason.
    """
    try:
        from ..models import resolve_model

        ref = resolve_model(name_or_path)
        resolved, files = weight_files(name_or_path)
    except Exception as exc:  # provenance must never stop an evaluation that already ran
        return {"model": name_or_path, "resolved": None, "reason": f"{type(exc).__name__}: {exc}"}
    out: dict[str, Any] = {"model": name_or_path, "resolved": resolved}
    if not Path(ref.name_or_path).expanduser().exists():
        out["hub_revision"] = _hub_revision(ref.name_or_path)
        return out
    out["files"] = [_describe_file(p) for p in files]
    return out


def code_version() -> dict[str, Any]:
    """The code that computed a figure: the git commit (and whether tracked files differ from it) when the package
    runs from a git checkout, else the installed distribution's version."""
    import subprocess

    out: dict[str, Any] = {"package_version": package_versions(("rerank-plugins",))["rerank-plugins"]}
    repo = Path(__file__).resolve().parents[2]
    if (repo / ".git").exists() and (repo / "rerank_plugins").is_dir():
        try:
            commit = subprocess.run(
                ["git", "-C", str(repo), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
            ).stdout.strip()
            dirty = subprocess.run(
                ["git", "-C", str(repo), "status", "--porcelain", "--untracked-files=no"],
                capture_output=True,
                text=True,
                timeout=10,
                check=True,
            ).stdout.strip()
        except (OSError, subprocess.SubprocessError):
            return out
        out["git_commit"] = commit
        out["git_dirty"] = bool(dirty)
    return out


def provenance(
    *,
    argv: Sequence[str] | None = None,
    rerankers: Sequence[Mapping[str, Any]] = (),
    extra: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything needed to rerun an evaluation; ``rerankers`` are dicts with ``label``, ``model``, ``kind`` and
    ``options`` (what each was built with)."""
    return {
        "command_line": list(sys.argv if argv is None else argv),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "code": code_version(),
        "packages": package_versions(),
        "threads": thread_info(),
        "rerankers": [{**dict(r), "model_files": model_files(str(r["model"]))} for r in rerankers],
        **dict(extra or {}),
    }
