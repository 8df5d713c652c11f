"""Image preprocessing in Pillow/NumPy that reproduces open_clip's eval transform for CLIP ViTs.

open_clip (torchvision) does: Resize(shortest side -> size, bicubic, antialiased PIL resize),
CenterCrop(size) with `round()` offsets, convert RGB, ToTensor (/255), Normalize(mean, std).
We decode, apply the EXIF orientation and convert to RGB first (as the seed scripts did:
Pillow would otherwise resize palette images with NEAREST), then do exactly those steps.
"""

from __future__ import annotations

import io
import os
import warnings
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ml.manifest import ImageSpec

# JPEG draft decoding (libjpeg's DCT scaling) keeps the shortest side at least this many
# times the model size, so the bicubic resize still does the final, antialiased step.
DRAFT_MARGIN = 2
MAX_PIXELS = 80_000_000  # refuse decompression bombs rather than exhaust a worker's memory


class ImageError(ValueError):
    """An image that cannot be decoded or used (the reason is the message)."""


def decode(data: bytes, *, size: int, draft: bool = True) -> Image.Image:
    """Decode image bytes to an upright RGB Pillow image (JPEGs drafted down when large)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            image: Image.Image = Image.open(io.BytesIO(data))
            if image.width * image.height > MAX_PIXELS:
                raise ImageError(f"image too large: {image.width}x{image.height}")
            if draft and image.format == "JPEG":
                image.draft(None, (size * DRAFT_MARGIN, size * DRAFT_MARGIN))
            image = ImageOps.exif_transpose(image)
            return image.convert("RGB")
    except ImageError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombWarning, Image.DecompressionBombError) as error:
        raise ImageError(f"not a usable image: {error}") from None
    except (OSError, SyntaxError, ValueError, EOFError) as error:
        raise ImageError(f"broken image: {error}") from None


def resize_shortest(image: Image.Image, size: int) -> Image.Image:
    """Resize so the shortest side is `size` (longest side truncated, as torchvision does)."""
    width, height = image.size
    short, long = (width, height) if width <= height else (height, width)
    if short == size:
        return image
    new_short, new_long = size, int(size * long / short)
    new_size = (new_short, new_long) if width <= height else (new_long, new_short)
    return image.resize(new_size, Image.Resampling.BICUBIC)


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """Crop the centre `size` x `size` square with torchvision's `round()` offsets."""
    width, height = image.size
    top = int(round((height - size) / 2.0))
    left = int(round((width - size) / 2.0))
    return image.crop((left, top, left + size, top + size))


def to_array(image: Image.Image, spec: ImageSpec) -> np.ndarray:
    """An RGB image of the model size -> normalised float32 CHW array."""
    pixels = np.asarray(image, dtype=np.float32) / np.float32(255.0)
    mean = np.asarray(spec.mean, dtype=np.float32)
    std = np.asarray(spec.std, dtype=np.float32)
    return np.ascontiguousarray(((pixels - mean) / std).transpose(2, 0, 1))


def preprocess(data: bytes, spec: ImageSpec, *, draft: bool = True) -> np.ndarray:
    """Image bytes -> the image tower's float32 (3, size, size) input; ImageError when unusable."""
    image = decode(data, size=spec.size, draft=draft)
    if min(image.size) < 1:
        raise ImageError("empty image")
    return to_array(center_crop(resize_shortest(image, spec.size), spec.size), spec)


def _attempt(data: bytes, spec: ImageSpec, draft: bool) -> np.ndarray | str:
    try:
        return preprocess(data, spec, draft=draft)
    except ImageError as error:
        return str(error)


def preprocess_batch(
    images: Sequence[bytes], spec: ImageSpec, *, draft: bool = True, threads: int | None = None
) -> tuple[np.ndarray, dict[int, str]]:
    """Preprocess many images in parallel threads (Pillow and NumPy release the GIL while they work).

    Returns the stacked batch of the usable ones and {index: reason} for the rest.
    """
    workers = min(len(images), threads or os.cpu_count() or 1)
    if workers > 1:
        with ThreadPoolExecutor(workers, thread_name_prefix="preprocess") as pool:
            results = list(pool.map(lambda data: _attempt(data, spec, draft), images))
    else:
        results = [_attempt(data, spec, draft) for data in images]
    arrays = [r for r in results if isinstance(r, np.ndarray)]
    errors = {i: r for i, r in enumerate(results) if isinstance(r, str)}
    empty = np.zeros((0, 3, spec.size, spec.size), dtype=np.float32)
    return (np.stack(arrays) if arrays else empty), errors
