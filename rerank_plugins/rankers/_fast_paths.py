"""Optional faster CPU paths for the cross-encoder: int8 dynamic quantisation and ONNX Runtime.

* ``quantize="int8"``: torch dynamic quantisation of every ``nn.Linear`` (weights int8, activations quantised
  on the fly); CPU only, no extra dependency.
* ``quantize="onnx"``: the model is exported once with ``torch.onnx`` (eager attention, dynamic batch and
  sequence axes) to a cache folder and run with ONNX Runtime (extra ``fast``).
* ``quantize="onnx-int8"``: the same export, then ONNX Runtime dynamic int8 quantisation of its weights.

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


def _quantize_onnx(source: Path, target: Path) -> None:
    quant = require("onnxruntime.quantization", "fast", purpose="int8 quantisation of the ONNX model")
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        quant.quantize_dynamic(str(source), str(tmp), weight_type=quant.QuantType.QInt8)
    os.replace(tmp, target)


class OnnxClassifier:
    """A sequence classifier exported to ONNX and run with ONNX Runtime; call it with numpy int64 arrays."""

    def __init__(self, model: Any, *, input_names: list[str], int8: bool = False, device: Any = None) -> None:
        ort = require("onnxruntime", "fast", purpose="running the cross-encoder with ONNX Runtime")
        torch = require("torch", "hf")
        versions = f"torch={torch.__version__};ort={ort.__version__};inputs={','.join(input_names)}"
        folder = cache_root() / "onnx" / _weights_digest(model, versions)
        folder.mkdir(parents=True, exist_ok=True)
        fp32 = folder / "model.onnx"
        if not fp32.exists():
            _export(model, fp32, input_names)
        path = fp32
        if int8:
            path = folder / "model-int8.onnx"
            if not path.exists():
                _quantize_onnx(fp32, path)
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
