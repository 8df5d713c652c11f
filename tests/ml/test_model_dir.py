"""A wrong or corrupt model directory fails at load, saying what is wrong."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from ml.clip import ClipModel
from ml.manifest import TINY_MODEL_DIR, ModelDirError, read_manifest
from ml.preprocess import ImageError, preprocess
from ml.manifest import ImageSpec
from tests.ml.conftest import image_bytes


@pytest.fixture()
def model_copy(tmp_path: Path) -> Path:
    """A writable copy of the tiny model."""
    return Path(shutil.copytree(TINY_MODEL_DIR, tmp_path / "model"))


def _edit_manifest(directory: Path, **changes: object) -> None:
    path = directory / "manifest.json"
    data = json.loads(path.read_text())
    data.update(changes)
    path.write_text(json.dumps(data))


def test_tiny_model_loads_and_says_it_is_not_semantic(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level("WARNING", logger="backroom.ml"):
        model = ClipModel.load(TINY_MODEL_DIR)
    assert model.model_id == read_manifest(TINY_MODEL_DIR).model_id
    assert not model.manifest.semantic
    assert "NOT semantic" in caplog.text


def test_missing_directory(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="does not exist"):
        ClipModel.load(tmp_path / "nope")


def test_directory_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(ModelDirError, match="no manifest.json"):
        ClipModel.load(tmp_path)


def test_corrupt_onnx_file_is_named(model_copy: Path) -> None:
    with (model_copy / "image.onnx").open("r+b") as handle:
        handle.seek(1000)
        handle.write(b"\x00" * 16)
    with pytest.raises(ModelDirError, match=r"image\.onnx is corrupt"):
        ClipModel.load(model_copy)


def test_missing_file_is_named(model_copy: Path) -> None:
    (model_copy / "text.onnx").unlink()
    with pytest.raises(ModelDirError, match=r"text\.onnx is missing"):
        ClipModel.load(model_copy)


def test_garbage_that_matches_its_checksum_is_not_loadable(model_copy: Path) -> None:
    from ml.manifest import sha256_file

    (model_copy / "image.onnx").write_bytes(b"not an onnx graph")
    files = json.loads((model_copy / "manifest.json").read_text())["files"]
    files["image.onnx"] = sha256_file(model_copy / "image.onnx")
    _edit_manifest(model_copy, files=files)
    with pytest.raises(ModelDirError, match="not a loadable ONNX model"):
        ClipModel.load(model_copy)


def test_unreadable_manifest(model_copy: Path) -> None:
    (model_copy / "manifest.json").write_text("{not json")
    with pytest.raises(ModelDirError, match="not a valid manifest"):
        ClipModel.load(model_copy)


def test_unsupported_preprocessing(model_copy: Path) -> None:
    manifest = json.loads((model_copy / "manifest.json").read_text())
    _edit_manifest(model_copy, image={**manifest["image"], "resize_mode": "squash"})
    with pytest.raises(ModelDirError, match="not supported"):
        ClipModel.load(model_copy)


def test_wrong_embedding_dimension(model_copy: Path) -> None:
    _edit_manifest(model_copy, embed_dim=768)
    with pytest.raises(ModelDirError, match="expected"):
        ClipModel.load(model_copy)


def test_int8_without_quantised_files(model_copy: Path) -> None:
    with pytest.raises(ModelDirError, match=r"image\.int8\.onnx is not listed"):
        ClipModel.load(model_copy, precision="int8")


@pytest.mark.parametrize(
    "data,reason",
    [
        (b"", "not a usable image"),
        (b"hello, not an image", "not a usable image"),
        (image_bytes("broken.jpg"), "broken image"),
    ],
)
def test_unusable_images_raise_with_a_reason(data: bytes, reason: str) -> None:
    with pytest.raises(ImageError, match=reason):
        preprocess(data, ImageSpec())


def test_a_broken_image_does_not_fail_the_batch() -> None:
    model = ClipModel.load(TINY_MODEL_DIR)
    result = model.embed_images([image_bytes("photo.jpg"), image_bytes("broken.jpg"), image_bytes("tiny.png")])
    assert set(result.vectors) == {0, 2}
    assert "broken image" in result.errors[1]
