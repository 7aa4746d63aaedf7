"""Optional faster CPU paths for the cross-encoder: int8 dynamic quantisation and ONNX Runtime.

* ``quantize="int8"``: torch dynamic quantisation of every ``nn.Linear`` (weights int8, activations quantised
  on the fly); CPU only, no extra dependency.
* ``quantize="onnx"``: the model is exported once with ``torch.onnx`` (eager attention, dynamic batch and
  sequence axes) to a cache folder, its attention, GELU and layer norms fused by ONNX Runtime's transformer
  optimizer (kept only when the fused graph gives the same logits on a probe batch), and run with ONNX Runtime
  (extra ``fast``). Scores equal the fp32 torch scores to float rounding.
* ``quantize="onnx-int8"``: the same graph, then ONNX Runtime dynamic int8 quantisation of its weights.

Quantisation noise is small in absolute terms (about 1e-2 on a logit) but reorders candidates whose scores are
closer than that; on CPUs with AMX or AVX512-BF16, ``dtype="bfloat16"`` is usually both faster and closer to the
fp32 order than int8.

Exports are cached under ``$RERANK_PLUGINS_CACHE`` (default ``~/.cache/rerank_plugins``) in a folder named by a
hash of the weights and the library versions, written atomically, so a second process reuses them.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any

from .._optional import require
from ..errors import BackendError, ConfigError

__all__ = ["QUANTIZE_MODES", "OnnxClassifier", "cache_root", "quantize_int8"]

QUANTIZE_MODES = (None, "int8", "onnx", "onnx-int8")


def cache_root() -> Path:
    """Folder for exported models (``$RERANK_PLUGINS_CACHE`` or ``~/.cache/rerank_plugins``)."""
    env = os.environ.get("RERANK_PLUGINS_CACHE")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "rerank_plugins"


def quantize_int8(model: Any) -> Any:
    """Return a copy of ``model`` with int8 dynamically quantised ``nn.Linear`` layers (CPU inference)."""
    torch = require("torch", "hf")
    with warnings.catch_warnings():
        # torch.ao.quantization announces its move to torchao; the eager API still works and needs no extra.
        warnings.simplefilter("ignore")
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)


def _weights_digest(model: Any, extra: str) -> str:
    import numpy as np

    h = hashlib.blake2b(digest_size=12)
    h.update(extra.encode())
    h.update(type(model).__name__.encode())
    h.update(model.config.to_json_string().encode())
    for name, tensor in model.state_dict().items():
        h.update(name.encode())
        h.update(str(tuple(tensor.shape)).encode())
        h.update(np.ascontiguousarray(tensor.detach().float().cpu().numpy()).tobytes())
    return h.hexdigest()


def _export(model: Any, path: Path, input_names: list[str]) -> None:
    torch = require("torch", "hf")
    require("onnx", "fast", purpose="exporting the cross-encoder to ONNX")
    setter = getattr(model, "set_attn_implementation", None)
    previous = getattr(model.config, "_attn_implementation", None)
    if setter is not None:
        # The traced graph must not depend on SDPA's Python-level shape checks.
        setter("eager")
    dummy_ids = torch.full((2, 16), 100, dtype=torch.long, device=model.device)
    mask = torch.ones_like(dummy_ids)
    mask[1, 10:] = 0
    args = {"input_ids": dummy_ids, "attention_mask": mask, "token_type_ids": torch.zeros_like(dummy_ids)}
    inputs = tuple(args[name] for name in input_names)
    axes = {name: {0: "batch", 1: "sequence"} for name in input_names}
    axes["logits"] = {0: "batch"}
    tmp = Path(tempfile.mkdtemp(dir=path.parent, prefix=".export-"))
    try:
        with warnings.catch_warnings(), torch.inference_mode(False), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                inputs,
                str(tmp / "model.onnx"),
                input_names=input_names,
                output_names=["logits"],
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )
        os.replace(tmp / "model.onnx", path)
    except Exception as exc:
        raise BackendError(f"ONNX export of {type(model).__name__} failed: {exc}") from exc
    finally:
        for leftover in tmp.iterdir():
            leftover.unlink()
        tmp.rmdir()
        if setter is not None and previous is not None:
            setter(previous)


def _probe_feed(input_names: list[str]) -> dict[str, Any]:
    import numpy as np

    rng = np.random.default_rng(0)
    ids = rng.integers(1000, 2000, size=(3, 24)).astype(np.int64)
    mask = np.ones_like(ids)
    mask[2, 15:] = 0
    types = np.zeros_like(ids)
    types[:, 10:] = 1
    arrays = {"input_ids": ids, "attention_mask": mask, "token_type_ids": types}
    return {name: arrays[name] for name in input_names}


def _fuse(source: Path, target: Path, config: Any, input_names: list[str]) -> bool:
    """Fuse attention, GELU and layer norms with ONNX Runtime's transformer optimizer; keep it only if the fused
    graph gives the same logits (to 1e-4) on a probe batch. Returns whether ``target`` was written."""
    import numpy as np

    ort = require("onnxruntime", "fast")
    try:
        from onnxruntime.transformers import optimizer
    except ImportError:  # pragma: no cover - ships with onnxruntime
        return False
    heads = int(getattr(config, "num_attention_heads", 0) or 0)
    hidden = int(getattr(config, "hidden_size", 0) or 0)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fused = optimizer.optimize_model(str(source), model_type="bert", num_heads=heads, hidden_size=hidden,
                                             opt_level=0)
            fused.save_model_to_file(str(tmp))
        feed = _probe_feed(input_names)
        plain = ort.InferenceSession(str(source), providers=["CPUExecutionProvider"]).run(["logits"], feed)[0]
        got = ort.InferenceSession(str(tmp), providers=["CPUExecutionProvider"]).run(["logits"], feed)[0]
    except Exception:  # a graph the optimizer cannot handle stays unfused
        tmp.unlink(missing_ok=True)
        return False
    if not np.allclose(plain, got, atol=1e-4, rtol=0):
        tmp.unlink(missing_ok=True)
        return False
    os.replace(tmp, target)
    return True


def _quantize_onnx(source: Path, target: Path) -> None:
    quant = require("onnxruntime.quantization", "fast", purpose="int8 quantisation of the ONNX model")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Fused contrib ops (Attention, SkipLayerNormalization) defeat shape inference: their outputs are fp32.
        quant.quantize_dynamic(str(source), str(tmp), weight_type=quant.QuantType.QInt8,
                               extra_options={"DefaultTensorType": 1})  # onnx.TensorProto.FLOAT
    os.replace(tmp, target)


class OnnxClassifier:
    """A sequence classifier exported to ONNX and run with ONNX Runtime; call it with numpy int64 arrays."""

    def __init__(self, model: Any, *, input_names: list[str], int8: bool = False, device: Any = None) -> None:
        ort = require("onnxruntime", "fast", purpose="running the cross-encoder with ONNX Runtime")
        torch = require("torch", "hf")
        versions = f"torch={torch.__version__};ort={ort.__version__};inputs={','.join(input_names)}"
        folder = cache_root() / "onnx" / _weights_digest(model, versions)
        folder.mkdir(parents=True, exist_ok=True)
        exported = folder / "model.onnx"
        if not exported.exists():
            _export(model, exported, input_names)
        fused = folder / "model-fused.onnx"
        unfusable = folder / "unfusable"
        if not fused.exists() and not unfusable.exists() and not _fuse(exported, fused, model.config, input_names):
            unfusable.touch()
        path = fused if fused.exists() else exported
        #: whether attention / GELU / layer norms were fused by ONNX Runtime's transformer optimizer
        self.fused = path == fused
        if int8:
            source = path
            path = folder / f"{source.stem}-int8.onnx"
            if not path.exists():
                _quantize_onnx(source, path)
        self.path = path
        self.input_names = input_names
        providers = ["CPUExecutionProvider"]
        if device is not None and getattr(device, "type", str(device)) == "cuda":
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise ConfigError("device 'cuda' with quantize='onnx' needs onnxruntime-gpu")
            providers.insert(0, "CUDAExecutionProvider")
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)

    def __call__(self, arrays: dict[str, Any]) -> Any:
        feed = {name: arrays[name] for name in self.input_names}
        return self.session.run(["logits"], feed)[0]
