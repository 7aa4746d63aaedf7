"""Validation and loading of the images carried by multimodal queries and candidates.

An image may be given as a filesystem path (``str`` or :class:`~pathlib.Path`), raw encoded bytes (PNG, JPEG,
WebP, ...: anything Pillow reads), or an already opened ``PIL.Image.Image``. :func:`load_image` turns each into
one decoded RGB ``PIL.Image.Image``, and fails early with an :class:`~rerank_plugins.errors.InvalidInputError`
that names the candidate when

* the file does not exist or cannot be read,
* the data is not an image Pillow can identify, or is corrupt / truncated,
* the encoded data is larger than :attr:`ImageLimits.max_bytes`, or
* the image has more pixels than :attr:`ImageLimits.max_pixels` (checked from the header, *before* decoding,
  so a decompression bomb is refused without allocating it).

Images are decoded once per ``rerank`` call (strategies decode every candidate up front and pass the decoded
images around); an input ``PIL.Image.Image`` is never modified - conversion returns a new image. Transparent
images (RGBA, LA, palette with transparency) are composited on white, which is what a rendered page looks like.

Pillow is imported lazily, through :func:`rerank_plugins._optional.require` (extra ``vision``).
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ._optional import require
from .errors import InvalidInputError
from .types import Candidate, ImageInput, Query
from .validation import check_int

__all__ = [
    "DEFAULT_LIMITS",
    "ImageLimits",
    "is_pil_image",
    "load_candidate_images",
    "load_image",
    "load_query_image",
]

#: 64 megapixels: a 300 dpi A3 page scan is ~17 MP, so real pages pass and decompression bombs do not.
DEFAULT_MAX_PIXELS = 64_000_000
#: 64 MiB of encoded data per image.
DEFAULT_MAX_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class ImageLimits:
    """Upper bounds applied to every image before it is decoded (both must be positive integers)."""

    max_pixels: int = DEFAULT_MAX_PIXELS
    max_bytes: int = DEFAULT_MAX_BYTES

    def __post_init__(self) -> None:
        for name in ("max_pixels", "max_bytes"):
            check_int(f"ImageLimits.{name}", getattr(self, name), 1)


DEFAULT_LIMITS = ImageLimits()


def _pil() -> Any:
    return require("PIL.Image", "vision", purpose="image candidates")


def is_pil_image(value: Any) -> bool:
    """True when ``value`` is a ``PIL.Image.Image`` (without importing Pillow if it is not loaded)."""
    import sys

    module = sys.modules.get("PIL.Image")
    return module is not None and isinstance(value, module.Image)


def _describe(image: Any) -> str:
    if isinstance(image, (str, os.PathLike)):
        return f"image file {os.fspath(image)!r}"
    if isinstance(image, (bytes, bytearray, memoryview)):
        return f"image bytes ({len(image)} bytes)"
    return f"image of type {type(image).__name__}"


def _read_path(path: Path, limits: ImageLimits, owner: str) -> bytes:
    if not path.exists():
        raise InvalidInputError(f"{owner}: image file {str(path)!r} does not exist")
    if not path.is_file():
        raise InvalidInputError(f"{owner}: image path {str(path)!r} is not a file")
    size = path.stat().st_size
    if size > limits.max_bytes:
        raise InvalidInputError(
            f"{owner}: image file {str(path)!r} is {size} bytes, over the limit of {limits.max_bytes} bytes "
            "(raise ImageLimits.max_bytes to accept it)"
        )
    try:
        return path.read_bytes()
    except OSError as exc:
        raise InvalidInputError(f"{owner}: cannot read image file {str(path)!r}: {exc}") from exc


def _check_pixels(width: int, height: int, limits: ImageLimits, owner: str, what: str) -> None:
    if width < 1 or height < 1:
        raise InvalidInputError(f"{owner}: {what} has an empty size {width}x{height}")
    if width * height > limits.max_pixels:
        raise InvalidInputError(
            f"{owner}: {what} is {width}x{height} = {width * height} pixels, over the limit of "
            f"{limits.max_pixels} pixels (raise ImageLimits.max_pixels to accept it)"
        )


def _to_rgb(image: Any, pil: Any) -> Any:
    """A new RGB image; transparency is composited on white (a page background)."""
    has_alpha = image.mode in ("RGBA", "LA", "La", "RGBa") or (
        image.mode == "P" and "transparency" in image.info
    )
    if has_alpha:
        rgba = image.convert("RGBA")
        background = pil.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    if image.mode == "RGB":
        return image.copy()
    return image.convert("RGB")


def _decode(data: bytes, limits: ImageLimits, owner: str, what: str) -> Any:
    pil = _pil()
    if len(data) > limits.max_bytes:
        raise InvalidInputError(
            f"{owner}: {what} is {len(data)} bytes, over the limit of {limits.max_bytes} bytes "
            "(raise ImageLimits.max_bytes to accept it)"
        )
    if not data:
        raise InvalidInputError(f"{owner}: {what} is empty (0 bytes)")
    try:
        opened = pil.open(io.BytesIO(data))
    except pil.UnidentifiedImageError as exc:
        raise InvalidInputError(f"{owner}: {what} is not an image Pillow can read") from exc
    except pil.DecompressionBombError as exc:
        raise InvalidInputError(f"{owner}: {what} is refused as a decompression bomb: {exc}") from exc
    except (OSError, ValueError, SyntaxError) as exc:
        raise InvalidInputError(f"{owner}: {what} could not be opened as an image: {exc}") from exc
    with opened:
        width, height = opened.size
        _check_pixels(width, height, limits, owner, what)
        try:
            opened.load()
        except (OSError, ValueError, SyntaxError, pil.DecompressionBombError) as exc:
            raise InvalidInputError(f"{owner}: {what} is corrupt or truncated ({exc})") from exc
        return _to_rgb(opened, pil)


def load_image(image: ImageInput, *, limits: ImageLimits | None = None, owner: str = "image") -> Any:
    """Decode ``image`` (path, bytes or PIL image) into a new RGB ``PIL.Image.Image``.

    ``owner`` names what the image belongs to in error messages (e.g. ``"candidate 'd3'"``).
    Raises :class:`~rerank_plugins.errors.InvalidInputError` for a missing file, data that is not an image,
    a corrupt image, or an image over ``limits``.
    """
    limits = DEFAULT_LIMITS if limits is None else limits
    if isinstance(image, (str, os.PathLike)):
        path = Path(os.fspath(image)).expanduser()
        return _decode(_read_path(path, limits, owner), limits, owner, _describe(image))
    if isinstance(image, (bytes, bytearray, memoryview)):
        return _decode(bytes(image), limits, owner, _describe(image))
    pil = _pil()
    if isinstance(image, pil.Image):
        width, height = image.size
        _check_pixels(width, height, limits, owner, "PIL image")
        try:
            return _to_rgb(image, pil)
        except (OSError, ValueError, SyntaxError) as exc:
            raise InvalidInputError(f"{owner}: PIL image is corrupt or truncated ({exc})") from exc
    raise InvalidInputError(
        f"{owner}: image must be a file path, bytes or a PIL.Image.Image, got {type(image).__name__}"
    )


def load_candidate_images(
    candidates: Sequence[Candidate], *, limits: ImageLimits | None = None, required: bool = False
) -> list[Any | None]:
    """Decode every candidate's image once (``None`` for a candidate without an image), in input order.

    With ``required``, a candidate without an image is an :class:`~rerank_plugins.errors.InvalidInputError`.
    All images are validated before any model work starts, so one bad image fails the call early.
    """
    out: list[Any | None] = []
    for cand in candidates:
        if cand.image is None:
            if required:
                raise InvalidInputError(f"candidate {cand.id!r} has no image, and this reranker needs one")
            out.append(None)
            continue
        out.append(load_image(cand.image, limits=limits, owner=f"candidate {cand.id!r}"))
    return out


def load_query_image(query: Query, *, limits: ImageLimits | None = None) -> Any | None:
    """Decode the query's image, or ``None`` when the query is text only."""
    if query.image is None:
        return None
    owner = "query" if query.id is None else f"query {query.id!r}"
    return load_image(query.image, limits=limits, owner=owner)
