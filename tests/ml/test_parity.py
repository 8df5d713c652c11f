"""Our Pillow/NumPy/ONNX path against open_clip/torch's own outputs on real encoded files."""

from __future__ import annotations

import numpy as np
import pytest

from ml.clip import ClipModel
from ml.manifest import ImageSpec
from ml.preprocess import center_crop, decode, preprocess, resize_shortest, to_array
from ml.tokenizer import trim
from tests.ml.conftest import image_bytes

NAMES = [
    "photo.jpg",
    "portrait_exif6.jpg",
    "gray.png",
    "gray.jpg",
    "rgba.png",
    "palette.png",
    "tiny.png",
    "wide.webp",
    "huge.jpg",
]


def _golden_index(golden: dict, name: str) -> int:
    return list(golden["image_names"]).index(name)


def test_golden_covers_every_fixture_and_images_differ(golden: dict) -> None:
    assert sorted(golden["image_names"]) == sorted(NAMES)
    vectors = golden["images"]
    similarity = vectors @ vectors.T
    # the random test model must tell images apart, or parity would prove nothing
    assert similarity[~np.eye(len(vectors), dtype=bool)].max() < 0.95


@pytest.mark.parametrize("name", NAMES)
def test_resize_and_crop_are_pixel_exact_without_draft(golden: dict, name: str) -> None:
    image = decode(image_bytes(name), size=224, draft=False)
    crop = np.asarray(center_crop(resize_shortest(image, 224), 224), dtype=np.int16)
    assert crop.shape == (224, 224, 3)
    assert np.abs(crop - golden["pixels"][_golden_index(golden, name)]).max() == 0


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("draft", [True, False])
def test_image_vectors_match_open_clip(tiny_model: ClipModel, golden: dict, name: str, draft: bool) -> None:
    result = tiny_model.embed_images([image_bytes(name)], draft=draft)
    assert not result.errors
    vector = result.vectors[0]
    assert vector.dtype == np.float32 and vector.shape == (512,)
    assert abs(float(np.linalg.norm(vector)) - 1.0) < 1e-5
    assert float(vector @ golden["images"][_golden_index(golden, name)]) >= 0.999


def test_exif_orientation_matters(tiny_model: ClipModel, golden: dict) -> None:
    from PIL import Image
    import io

    sideways = Image.open(io.BytesIO(image_bytes("portrait_exif6.jpg"))).convert("RGB")  # EXIF ignored
    spec = ImageSpec()
    pixels = to_array(center_crop(resize_shortest(sideways, 224), 224), spec)[None]
    wrong = tiny_model.embed_pixels(pixels)[0]
    assert float(wrong @ golden["images"][_golden_index(golden, "portrait_exif6.jpg")]) < 0.99


def test_batches_equal_single_images(tiny_model: ClipModel) -> None:
    data = [image_bytes(n) for n in NAMES]
    batched = tiny_model.embed_images(data, batch_size=4)
    for index, item in enumerate(data):
        single = tiny_model.embed_images([item]).vectors[0]
        assert float(single @ batched.vectors[index]) > 0.99999


def test_tokens_equal_open_clip(tiny_model: ClipModel, golden: dict, golden_texts: list[str]) -> None:
    assert np.array_equal(tiny_model.tokenizer(golden_texts), golden["tokens"])


def test_text_vectors_match_open_clip(tiny_model: ClipModel, golden: dict, golden_texts: list[str]) -> None:
    vectors = tiny_model.embed_texts(golden_texts)
    cosines = (vectors * golden["texts"]).sum(axis=1)
    assert cosines.min() >= 0.999


def test_trimming_after_the_last_eot_is_exact(tiny_model: ClipModel, golden_texts: list[str]) -> None:
    tokens = tiny_model.tokenizer(golden_texts[:3])
    trimmed = trim(tokens)
    assert trimmed.shape[1] < tokens.shape[1]
    assert (trimmed.argmax(axis=1) == tokens.argmax(axis=1)).all()
    np.testing.assert_allclose(tiny_model.embed_tokens(trimmed), tiny_model.embed_tokens(tokens), atol=1e-5)


def test_preprocess_output_is_normalised_chw(golden: dict) -> None:
    array = preprocess(image_bytes("photo.jpg"), ImageSpec())
    assert array.shape == (3, 224, 224) and array.dtype == np.float32
    expected = to_array_from_pixels(golden["pixels"][_golden_index(golden, "photo.jpg")])
    np.testing.assert_allclose(array, expected, atol=1e-6)


def to_array_from_pixels(pixels: np.ndarray) -> np.ndarray:
    """ToTensor + Normalize as torchvision computes them, for a uint8 HWC crop."""
    mean = np.array([0.48145466, 0.4578275, 0.40821073], np.float32)
    std = np.array([0.26862954, 0.26130258, 0.27577711], np.float32)
    return ((pixels.astype(np.float32) / np.float32(255) - mean) / std).transpose(2, 0, 1)
