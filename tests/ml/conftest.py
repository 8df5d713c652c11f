"""The tiny test model and the golden vectors open_clip/torch computed for it (ml_export/make_tiny_model.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from ml.clip import ClipModel
from ml.manifest import TINY_MODEL_DIR

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "tiny-clip"


@pytest.fixture(scope="session")
def tiny_model() -> ClipModel:
    """The bundled tiny model, opened once."""
    return ClipModel.load(TINY_MODEL_DIR)


@pytest.fixture(scope="session")
def golden() -> dict[str, np.ndarray]:
    """Golden arrays: image_names, pixels (uint8 crops), images, tokens, texts."""
    with np.load(FIXTURES / "golden.npz") as data:
        return {key: data[key] for key in data.files}


@pytest.fixture(scope="session")
def golden_texts() -> list[str]:
    """The texts the golden text vectors were computed from."""
    return json.loads((FIXTURES / "texts.json").read_text(encoding="utf-8"))


def image_bytes(name: str) -> bytes:
    """A fixture image's encoded bytes."""
    return (FIXTURES / "images" / name).read_bytes()
