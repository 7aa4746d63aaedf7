"""Image validation and loading: paths, bytes and PIL images; missing, corrupt, non-image and oversized inputs."""

from __future__ import annotations

import io
from pathlib import Path

import pytest

from rerank_plugins import Candidate, Query
from rerank_plugins.errors import ConfigError, InvalidInputError
from rerank_plugins.images import ImageLimits, load_candidate_images, load_image, load_query_image

Image = pytest.importorskip("PIL.Image")


def _png(size: tuple[int, int] = (40, 30), mode: str = "RGB", color: object = "red") -> bytes:
    buf = io.BytesIO()
    Image.new(mode, size, color).save(buf, "PNG")
    return buf.getvalue()


def test_path_bytes_and_pil_give_the_same_rgb_image(tmp_path: Path) -> None:
    data = _png()
    path = tmp_path / "page.png"
    path.write_bytes(data)
    from_path = load_image(path)
    from_str = load_image(str(path))
    from_bytes = load_image(data)
    from_pil = load_image(Image.open(io.BytesIO(data)))
    for img in (from_path, from_str, from_bytes, from_pil):
        assert img.mode == "RGB"
        assert img.size == (40, 30)
        assert img.getpixel((0, 0)) == (255, 0, 0)


def test_input_pil_image_is_not_modified() -> None:
    src = Image.new("L", (10, 10), 128)
    out = load_image(src)
    assert src.mode == "L"
    assert out.mode == "RGB"
    assert out is not src
    rgb = Image.new("RGB", (10, 10), "blue")
    assert load_image(rgb) is not rgb


def test_transparency_is_composited_on_white() -> None:
    img = load_image(_png(mode="RGBA", color=(0, 0, 0, 0)))
    assert img.mode == "RGB"
    assert img.getpixel((5, 5)) == (255, 255, 255)


def test_missing_file_names_the_candidate(tmp_path: Path) -> None:
    cands = [Candidate(id="page-7", image=str(tmp_path / "nope.png"))]
    with pytest.raises(InvalidInputError, match=r"candidate 'page-7'.*does not exist"):
        load_candidate_images(cands)


def test_directory_is_not_an_image(tmp_path: Path) -> None:
    with pytest.raises(InvalidInputError, match="not a file"):
        load_image(tmp_path)


def test_file_that_is_not_an_image(tmp_path: Path) -> None:
    path = tmp_path / "notes.png"
    path.write_text("this is plain text, not a PNG")
    with pytest.raises(InvalidInputError, match=r"candidate 'c1'.*not an image"):
        load_candidate_images([Candidate(id="c1", image=path)])


def test_truncated_image_is_corrupt() -> None:
    data = _png((300, 300), color="green")
    with pytest.raises(InvalidInputError, match=r"candidate 'bad'.*corrupt or truncated"):
        load_image(data[: len(data) // 2], owner="candidate 'bad'")


def test_empty_bytes() -> None:
    with pytest.raises(InvalidInputError, match="empty"):
        load_image(b"")


def test_too_many_pixels_refused_before_decoding() -> None:
    data = _png((200, 100))
    with pytest.raises(InvalidInputError, match=r"200x100 = 20000 pixels, over the limit of 10000"):
        load_image(data, limits=ImageLimits(max_pixels=10_000))
    with pytest.raises(InvalidInputError, match="pixels"):
        load_image(Image.new("RGB", (200, 100)), limits=ImageLimits(max_pixels=10_000))


def test_decompression_bomb_header_is_refused_without_decoding() -> None:
    # A 20000 x 20000 black PNG compresses to a small file; the header alone says 400 MP.
    big = Image.new("1", (20_000, 20_000))
    buf = io.BytesIO()
    big.save(buf, "PNG")
    data = buf.getvalue()
    assert len(data) < 1_000_000
    with pytest.raises(InvalidInputError, match=r"pixels|decompression bomb"):
        load_image(data, owner="candidate 'bomb'")


def test_too_many_bytes(tmp_path: Path) -> None:
    data = _png((64, 64))
    path = tmp_path / "p.png"
    path.write_bytes(data)
    limits = ImageLimits(max_bytes=len(data) - 1)
    with pytest.raises(InvalidInputError, match=r"bytes, over the limit"):
        load_image(path, limits=limits)
    with pytest.raises(InvalidInputError, match=r"bytes, over the limit"):
        load_image(data, limits=limits)


def test_wrong_type() -> None:
    with pytest.raises(InvalidInputError, match="file path, bytes or a PIL"):
        load_image(12345)  # type: ignore[arg-type]


@pytest.mark.parametrize("bad", [0, -1, True, 1.5])
def test_limits_validated(bad: object) -> None:
    with pytest.raises(ConfigError):
        ImageLimits(max_pixels=bad)  # type: ignore[arg-type]


def test_candidate_images_in_order_and_required() -> None:
    cands = [Candidate(id="t", text="text only"), Candidate(id="i", image=_png((8, 4)))]
    images = load_candidate_images(cands)
    assert images[0] is None
    assert images[1].size == (8, 4)
    with pytest.raises(InvalidInputError, match=r"candidate 't' has no image"):
        load_candidate_images(cands, required=True)


def test_query_image() -> None:
    assert load_query_image(Query(text="q")) is None
    img = load_query_image(Query(text="", image=_png((5, 6)), id="q9"))
    assert img.size == (5, 6)
    with pytest.raises(InvalidInputError, match="query 'q9'"):
        load_query_image(Query(text="x", image=b"garbage", id="q9"))


def test_image_limits_is_a_public_export() -> None:
    """docs/multimodal.md passes ``image_limits=ImageLimits(...)``: it must import from the package itself."""
    import rerank_plugins
    from rerank_plugins import ImageLimits as Public

    assert Public is ImageLimits and "ImageLimits" in rerank_plugins.__all__
