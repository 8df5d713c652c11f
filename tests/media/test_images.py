"""Re-encoding downloaded images: metadata (GPS above all) gone, orientation kept, bad input refused."""

from __future__ import annotations

import io

import pytest
from PIL import Image

from fakes.marketplace.data import make_jpeg
from media.images import ImageRejected, reencode

LIMITS = {"max_pixels": 40_000_000, "max_edge": 2048}
GPS_IFD = 0x8825


def encoded(image: Image.Image, fmt: str, **params: object) -> bytes:
    out = io.BytesIO()
    image.save(out, format=fmt, **params)
    return out.getvalue()


def test_the_marketplace_photo_really_carries_gps() -> None:
    """The fixture is what the proof below depends on: EXIF with a GPS block."""
    exif = Image.open(io.BytesIO(make_jpeg("vinted-1-0", 1, "olive"))).getexif()
    assert exif.get_ifd(GPS_IFD) and exif[0x010F] == "FakeCam"


def test_gps_and_every_other_exif_tag_are_gone() -> None:
    original = make_jpeg("vinted-1-0", 1, "olive")
    clean = reencode(original, **LIMITS)
    image = Image.open(io.BytesIO(clean))
    assert image.format == "JPEG" and image.size == (480, 640)
    assert not image.getexif() and not image.getexif().get_ifd(GPS_IFD)
    assert "exif" not in image.info and b"Exif" not in clean and b"FakeCam" not in clean
    # still the same picture: the fixture's background colour survives
    assert all(abs(a - b) < 12 for a, b in zip(image.getpixel((2, 2)), (85, 95, 45)))


def test_the_exif_orientation_is_applied_before_the_tag_goes() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    clean = reencode(encoded(Image.new("RGB", (300, 100), "red"), "JPEG", exif=exif), **LIMITS)
    assert Image.open(io.BytesIO(clean)).size == (100, 300)


def test_large_images_are_scaled_to_the_longest_edge() -> None:
    clean = reencode(encoded(Image.new("RGB", (3000, 1500), "blue"), "PNG"), max_pixels=10**8, max_edge=1000)
    assert Image.open(io.BytesIO(clean)).size == (1000, 500)


def test_transparent_png_and_webp_become_flat_jpegs() -> None:
    for fmt in ("PNG", "WEBP"):
        clean = reencode(encoded(Image.new("RGBA", (50, 50), (0, 0, 0, 0)), fmt), **LIMITS)
        image = Image.open(io.BytesIO(clean))
        assert image.format == "JPEG" and image.mode == "RGB" and image.getpixel((25, 25)) == (255, 255, 255)


def test_png_text_chunks_are_dropped() -> None:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "seller home address")
    clean = reencode(encoded(Image.new("RGB", (20, 20)), "PNG", pnginfo=info), **LIMITS)
    assert b"seller home address" not in clean


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"<html>Just a moment...</html>", "not a readable image"),
        (encoded(Image.new("RGB", (10, 10)), "GIF"), "unsupported image format GIF"),
        (encoded(Image.new("RGB", (10, 10)), "BMP"), "unsupported image format BMP"),
        (make_jpeg("vinted-1-0", 1)[:400], "not a readable image"),
    ],
)
def test_bad_input_is_rejected_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageRejected, match=reason):
        reencode(data, **LIMITS)


def test_too_many_pixels_is_rejected_before_decoding() -> None:
    data = encoded(Image.new("L", (5000, 5000)), "PNG")
    with pytest.raises(ImageRejected, match=r"image too large: 5000x5000 pixels \(limit 1000000\)"):
        reencode(data, max_pixels=1_000_000, max_edge=2048)


def test_large_jpegs_decode_at_reduced_scale_and_still_fit_exactly() -> None:
    clean = reencode(encoded(Image.new("RGB", (4000, 3000), "green"), "JPEG"), max_pixels=10**8, max_edge=1000)
    assert Image.open(io.BytesIO(clean)).size == (1000, 750)
