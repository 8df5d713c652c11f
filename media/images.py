"""Downloaded marketplace images made ours: size and type checked, re-encoded without metadata.

Re-encoding (rather than editing tags) drops EXIF (GPS, camera serials), XMP, IPTC and
comments wholesale: only the pixels survive. CPU-bound: async callers use asyncio.to_thread.
"""

from __future__ import annotations

import io
import warnings

from PIL import Image, ImageOps, UnidentifiedImageError

FORMATS = {"JPEG", "PNG", "WEBP"}
JPEG_QUALITY = 88


class ImageRejected(ValueError):
    """This image is not acceptable (too large, wrong type, undecodable, gone): retrying will not help."""


def probe(data: bytes, *, max_pixels: int) -> str:
    """The format of `data` (JPEG, PNG or WEBP) read from its header and structure, without decoding the pixels.

    Cheap enough for a request handler: an upload that is no image, another format or too many
    pixels is refused at the door; `reencode` (in a worker) still decodes and may refuse it.
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image = Image.open(io.BytesIO(data))
            image_format, (width, height) = image.format, image.size
            image.verify()  # a PNG's chunks and their checksums; a JPEG's or WebP's header
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
        ValueError,
    ) as error:
        raise ImageRejected(f"not a readable image ({type(error).__name__})") from None
    if image_format not in FORMATS:
        raise ImageRejected(
            f"unsupported image format {image_format or 'unknown'} (accepted: {', '.join(sorted(FORMATS))})"
        )
    if width * height > max_pixels:
        raise ImageRejected(f"image too large: {width}x{height} pixels (limit {max_pixels})")
    return str(image_format)


def reencode(data: bytes, *, max_pixels: int, max_edge: int) -> bytes:
    """A clean JPEG of `data`: oriented as EXIF said, scaled to fit `max_edge`, with no metadata at all."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            if image.format not in FORMATS:
                raise ImageRejected(
                    f"unsupported image format {image.format or 'unknown'} (accepted: {', '.join(sorted(FORMATS))})"
                )
            width, height = image.size
            if width * height > max_pixels:  # checked from the header, before decoding the pixels
                raise ImageRejected(f"image too large: {width}x{height} pixels (limit {max_pixels})")
            image.draft("RGB", (max_edge, max_edge))  # a JPEG decodes at 1/2..1/8 scale when that suffices
            image.load()
    except (
        UnidentifiedImageError,
        Image.DecompressionBombError,
        Image.DecompressionBombWarning,
        OSError,
        SyntaxError,
    ) as error:
        raise ImageRejected(f"not a readable image ({type(error).__name__})") from None
    image = ImageOps.exif_transpose(image)  # keep the orientation the EXIF tag gave, before the tag goes
    image.thumbnail((max_edge, max_edge), Image.Resampling.LANCZOS)
    out = io.BytesIO()
    _flatten(image).save(out, format="JPEG", quality=JPEG_QUALITY, optimize=True)
    return out.getvalue()


def _flatten(image: Image.Image) -> Image.Image:
    """RGB pixels only: transparency on white, palettes and other modes converted."""
    if image.mode in ("RGBA", "LA") or (image.mode == "P" and "transparency" in image.info):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, (255, 255, 255))
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return _without_info(image.convert("RGB") if image.mode != "RGB" else image)


def _without_info(image: Image.Image) -> Image.Image:
    """The same pixels in a fresh image, so no metadata of the original can be carried into the save."""
    clean = Image.new(image.mode, image.size)
    clean.paste(image)
    return clean
