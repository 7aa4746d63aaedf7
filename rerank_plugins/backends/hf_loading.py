"""Loading a causal LM and its tokenizer with transformers: hub ids, local folders and GGUF files.

GGUF files are dequantised by transformers at load time, which is slow (about 20 s for SmolLM2-135M on two
CPU cores). The first load of a *local* GGUF file therefore saves the dequantised model (float32
safetensors) and the tokenizer read from the GGUF into ``<cache>/converted/<stem>-<fingerprint>/``; later
loads read that folder in about a second. The fingerprint is the file's size plus a hash of its first and
last 4 MiB (:func:`~rerank_plugins.file_cache.fingerprint`), so a changed file gets a new folder.

Saving a model loaded from GGUF needs the GGUF quantizer state removed first, else ``save_pretrained``
refuses ("The model is quantized with gguf and is not serializable"): the fields are ``model.hf_quantizer``,
``model.config.quantization_config``, ``model.quantization_method`` and ``model.is_quantized``. We load with
``GgufConfig(dequantize=True)`` (plain dense ``nn.Linear`` weights, never GGUF blocks) and clear them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from .._optional import require
from .._warnings import caller_stacklevel
from ..errors import ModelNotFoundError
from ..file_cache import atomic_dir, cache_dir, fingerprint
from ..refs import ModelRef, cached_snapshot, require_cached_offline

__all__ = [
    "TOKENIZER_FILES",
    "check_vocabulary",
    "clear_quantizer_state",
    "convert_gguf",
    "converted_gguf_folder",
    "load_causal_lm",
    "load_tokenizer",
    "quiet_load",
]

logger = logging.getLogger(__name__)

_WEIGHT_FILES = ("model.safetensors", "model.safetensors.index.json")
_QUIET_LOCK = threading.Lock()
_quiet_depth = 0
_bar_was_enabled = False


def _drop_load_report(record: logging.LogRecord) -> bool:
    return "LOAD REPORT" not in record.getMessage()


@contextlib.contextmanager
def quiet_load(*, progress: bool = False, report: bool = True) -> Iterator[None]:
    """Load weights without transformers' noise on stderr: no "Loading weights" progress bar unless ``progress``
    (the ``progress=`` option of the rankers and backends), and, with ``report=False``, no "LOAD REPORT" table
    (for callers that read ``output_loading_info`` themselves and raise their own error).

    transformers 5 draws that bar from ``core_model_loading`` through ``transformers.utils.logging.tqdm``, whose
    only switch is the process-wide ``disable_progress_bar()``; the table is a warning of the
    ``transformers.modeling_utils`` logger (``utils/loading_report.py: log_state_dict_report``). Both are turned
    off for the duration of the block only and restored after (nested and concurrent blocks share one switch: the
    bar comes back when the last block ends, and only if it was on before the first). A user's own
    ``transformers.logging.disable_progress_bar()`` is respected.
    """
    global _quiet_depth, _bar_was_enabled
    try:
        from transformers.utils import logging as hf_logging
    except ImportError:  # pragma: no cover - transformers is what we are loading with
        yield
        return
    if progress and report:
        yield
        return
    hide_bar = not progress
    if hide_bar:
        with _QUIET_LOCK:
            if _quiet_depth == 0:
                _bar_was_enabled = hf_logging.is_progress_bar_enabled()
                hf_logging.disable_progress_bar()
            _quiet_depth += 1
    # A filter, not a higher level: transformers runs an extra tensor-parallel check (and warns from another
    # logger) when this logger's level is WARNING or above (modeling_utils.py, before verify_tp_plan).
    report_logger = logging.getLogger("transformers.modeling_utils")
    if not report:
        report_logger.addFilter(_drop_load_report)
    try:
        yield
    finally:
        if not report:
            report_logger.removeFilter(_drop_load_report)
        if hide_bar:
            with _QUIET_LOCK:
                _quiet_depth -= 1
                if _quiet_depth == 0 and _bar_was_enabled:
                    hf_logging.enable_progress_bar()


#: the files a Hugging Face tokenizer reads its vocabulary from: the fast tokenizer's, then a slow one's
TOKENIZER_FILES = (
    "tokenizer.json", "tokenizer.model", "spiece.model", "sentencepiece.bpe.model", "vocab.json", "merges.txt",
    "vocab.txt", "tokenizer_config.json", "special_tokens_map.json", "added_tokens.json",
)


_BOUNDARY_PIECES = frozenset({"", "\u2581", "\u0120"})  # "", "▁" (sentencepiece), "Ġ" (byte-level BPE)


def _tokenizer_folder(source: str) -> Path | None:
    """The folder ``source`` is read from: a local folder, or a hub id's snapshot in the local cache."""
    path = Path(source).expanduser()
    return path if path.is_dir() else cached_snapshot(source)


def _broken_cache(source: str, folder: Path, what: str) -> ModelNotFoundError:
    repair = f"download it again (huggingface-cli download {source})" if folder != Path(source).expanduser() \
        else "copy the model's tokenizer files into it again"
    return ModelNotFoundError(f"the tokenizer of {source!r} is broken in {folder}: {what}; {repair}")


def check_vocabulary(tokenizer: Any, source: str, folder: Path | None = None) -> None:
    """A :class:`ModelNotFoundError` naming the tokenizer files when ``tokenizer`` (loaded from ``source``) has no
    vocabulary beyond its special and added tokens (see :func:`load_tokenizer`)."""
    if not (hasattr(tokenizer, "get_vocab") and hasattr(tokenizer, "get_added_vocab")):
        return  # a custom tokenizer class without the vocabulary API: nothing to read
    specials = set(tokenizer.get_added_vocab()) | set(getattr(tokenizer, "all_special_tokens", ()))
    # an empty sentencepiece tokenizer still holds the bare word-boundary piece: not a vocabulary
    if set(tokenizer.get_vocab()) - specials - _BOUNDARY_PIECES:
        return
    folder = folder if folder is not None else _tokenizer_folder(source)
    present = sorted(n for n in TOKENIZER_FILES if folder is not None and (folder / n).is_file())
    raise _broken_cache(
        source, folder if folder is not None else Path(source),
        f"its vocabulary is empty (only the {len(specials)} special tokens): tokenizer.json is missing, and so are "
        "the vocabulary files of a slow tokenizer (tokenizer.model, spiece.model, sentencepiece.bpe.model, "
        f"vocab.json + merges.txt, vocab.txt); present: {', '.join(present) or 'none'}",
    )


def load_tokenizer(
    source: str, *, trust_remote_code: bool = False, tokenizer_kwargs: Mapping[str, Any] | None = None,
) -> Any:
    """``AutoTokenizer.from_pretrained(source, **tokenizer_kwargs)``: where the backends load every tokenizer.

    A broken cache entry or folder is a :class:`ModelNotFoundError` naming the tokenizer files, before and after
    the load: a tokenizer file that is a link to a missing blob (an interrupted download), or a tokenizer with no
    vocabulary beyond its special tokens. transformers 5 builds such an empty tokenizer when ``tokenizer.json``
    (and a slow tokenizer's vocabulary files) are missing, and it then tokenises every word to ``[UNK]``: Qwen3's
    'yes' became 0 tokens, monoT5's '▁false' no single token, and bge-reranker-v2-m3 scored with 5 tokens.
    An unreadable source is a :class:`ModelNotFoundError` as well.
    """
    require_cached_offline(source, what="the tokenizer")
    transformers = require("transformers", "hf", purpose="loading a tokenizer")
    folder = _tokenizer_folder(source)
    if folder is not None:
        dangling = [name for name in TOKENIZER_FILES if (folder / name).is_symlink() and not (folder / name).exists()]
        if dangling:
            raise _broken_cache(source, folder, f"{', '.join(dangling)} link(s) to a missing file")
    try:
        tokenizer = transformers.AutoTokenizer.from_pretrained(
            source, trust_remote_code=trust_remote_code, **dict(tokenizer_kwargs or {})
        )
    except (OSError, ValueError) as exc:
        raise ModelNotFoundError(f"cannot load the tokenizer of {source!r}: {exc}") from exc
    check_vocabulary(tokenizer, source, folder)
    return tokenizer


def converted_gguf_folder(gguf_path: str | os.PathLike[str]) -> Path:
    """Cache folder for the dequantised copy of a local GGUF file (may not exist yet)."""
    path = Path(gguf_path)
    return cache_dir("converted") / f"{path.stem}-{fingerprint(path)}"


def _is_complete(folder: Path) -> bool:
    return (folder / "config.json").is_file() and any((folder / f).is_file() for f in _WEIGHT_FILES)


def clear_quantizer_state(model: Any) -> None:
    """Remove the GGUF quantizer fields so ``save_pretrained`` accepts the (dequantised) model."""
    for attr in ("hf_quantizer", "quantization_method"):
        if attr in vars(model):
            delattr(model, attr)
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    if "is_quantized" in vars(model):
        model.is_quantized = False


def _load_from_gguf(folder: str, gguf_file: str, tokenizer_src: str | None, trust_remote_code: bool) -> Any:
    transformers = require("transformers", "hf", purpose="loading causal language models")
    require("gguf", "hf", purpose="reading GGUF files")
    torch = require("torch", "hf")
    kwargs: dict[str, Any] = {"gguf_file": gguf_file, "dtype": torch.float32, "trust_remote_code": trust_remote_code}
    gguf_config = getattr(transformers, "GgufConfig", None)
    if gguf_config is not None:
        kwargs["quantization_config"] = gguf_config(gguf_file=gguf_file, dequantize=True)
    try:
        model = transformers.AutoModelForCausalLM.from_pretrained(folder, **kwargs)
        if tokenizer_src is not None:
            tokenizer = load_tokenizer(tokenizer_src, trust_remote_code=trust_remote_code)
        else:
            tokenizer = transformers.AutoTokenizer.from_pretrained(folder, gguf_file=gguf_file)
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load GGUF file {gguf_file!r} from {folder!r}: {exc}") from exc
    clear_quantizer_state(model)
    return model, tokenizer


def convert_gguf(ref: ModelRef, *, trust_remote_code: bool = False, progress: bool = False) -> Path:
    """Dequantise the local GGUF file of ``ref`` once into the cache (model and tokenizer); return the folder.

    Raises ``OSError`` when the cache cannot be written."""
    if ref.gguf_file is None:
        raise ValueError(f"{ref} is not a GGUF model")
    gguf_path = Path(ref.name_or_path) / ref.gguf_file
    if not gguf_path.is_file():
        raise ModelNotFoundError(f"GGUF file {gguf_path} does not exist (hub GGUF repos are not converted)")
    folder = converted_gguf_folder(gguf_path)
    if not _is_complete(folder):
        logger.info("dequantising %s once into %s", gguf_path, folder)
        with quiet_load(progress=progress):
            model, tokenizer = _load_from_gguf(ref.name_or_path, ref.gguf_file, ref.tokenizer, trust_remote_code)
        with atomic_dir(folder) as tmp:
            model.save_pretrained(str(tmp))
            tokenizer.save_pretrained(str(tmp))
    return folder


def load_causal_lm(
    ref: ModelRef,
    *,
    dtype: Any,
    trust_remote_code: bool = False,
    cache_conversion: bool = True,
    model_kwargs: dict[str, Any] | None = None,
    progress: bool = False,
    tokenizer_kwargs: dict[str, Any] | None = None,
) -> tuple[Any, Any, str]:
    """Return ``(model, tokenizer, source)`` on the CPU in ``dtype``; ``source`` says where weights came from
    (the hub id / folder, the GGUF file, or the converted cache folder). ``progress`` shows transformers'
    "Loading weights" bar (off by default, see :func:`quiet_load`)."""
    if ref.gguf_file is None:
        require_cached_offline(ref.name_or_path, what="the causal LM")
    transformers = require("transformers", "hf", purpose="loading causal language models")
    extra = dict(model_kwargs or {})
    tok_extra = dict(tokenizer_kwargs or {})
    if ref.gguf_file is not None:
        gguf_path = Path(ref.name_or_path) / ref.gguf_file
        if cache_conversion and gguf_path.is_file():
            try:
                folder = convert_gguf(ref, trust_remote_code=trust_remote_code, progress=progress)
            except OSError as exc:
                warnings.warn(
                    f"could not cache the dequantised copy of {gguf_path} ({exc}); every load will dequantise again",
                    stacklevel=caller_stacklevel(),
                )
            else:
                try:
                    with quiet_load(progress=progress):
                        model = transformers.AutoModelForCausalLM.from_pretrained(str(folder), dtype=dtype, **extra)
                    tokenizer = load_tokenizer(ref.tokenizer or str(folder), tokenizer_kwargs=tok_extra)
                except OSError as exc:
                    raise ModelNotFoundError(
                        f"the converted copy of {gguf_path} in {folder} is unreadable ({exc}); delete that folder"
                    ) from exc
                return model, tokenizer, str(folder)
        with quiet_load(progress=progress):
            model, tokenizer = _load_from_gguf(ref.name_or_path, ref.gguf_file, ref.tokenizer, trust_remote_code)
        return model.to(dtype), tokenizer, str(gguf_path)
    adapter = _adapter_base(ref.name_or_path)
    if adapter is not None:
        return _load_lora(ref, adapter, dtype=dtype, trust_remote_code=trust_remote_code, extra=extra)
    try:
        tokenizer = load_tokenizer(
            ref.tokenizer or ref.name_or_path, trust_remote_code=trust_remote_code, tokenizer_kwargs=tok_extra
        )
        with quiet_load(progress=progress):
            model = transformers.AutoModelForCausalLM.from_pretrained(
                ref.name_or_path, dtype=dtype, trust_remote_code=trust_remote_code, **extra
            )
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load causal LM {ref.name_or_path!r}: {exc}") from exc
    return model, tokenizer, ref.name_or_path


def _adapter_base(name_or_path: str) -> str | None:
    """The base model named by a PEFT LoRA adapter (folder or hub repo with ``adapter_config.json``), else None."""
    import json

    from .vision_loading import find_adapter_config

    config = find_adapter_config(name_or_path)
    if config is None:
        return None
    base = json.loads(Path(config).read_text(encoding="utf-8")).get("base_model_name_or_path")
    if not isinstance(base, str) or not base:
        raise ModelNotFoundError(f"the LoRA adapter {name_or_path!r} does not name its base model")
    return base


def _load_lora(ref: ModelRef, base: str, *, dtype: Any, trust_remote_code: bool, extra: dict[str, Any]) -> tuple[
    Any, Any, str
]:
    """A LoRA adapter on its base causal LM, merged (Rank-R1's README ``get_model``: ``PeftModel.from_pretrained``
    then ``merge_and_unload``); the tokenizer is the base model's unless ``ref.tokenizer`` names one."""
    transformers = require("transformers", "hf", purpose="loading causal language models")
    peft = require("peft", "hf", purpose=f"the LoRA adapter {ref.name_or_path!r}")
    require_cached_offline(base, what=f"the base model of the LoRA adapter {ref.name_or_path!r},")
    try:
        tokenizer = load_tokenizer(ref.tokenizer or base, trust_remote_code=trust_remote_code)
        model = transformers.AutoModelForCausalLM.from_pretrained(
            base, dtype=dtype, trust_remote_code=trust_remote_code, **extra
        )
        model = peft.PeftModel.from_pretrained(model, ref.name_or_path).merge_and_unload()
    except OSError as exc:
        raise ModelNotFoundError(f"cannot load the LoRA adapter {ref.name_or_path!r} on {base!r}: {exc}") from exc
    return model, tokenizer, f"{ref.name_or_path} (LoRA on {base})"
