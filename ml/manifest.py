"""The model directory's manifest: what was exported, how to preprocess, and each file's checksum."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

MANIFEST = "manifest.json"
FORMAT = 1
TINY_MODEL_DIR = Path(__file__).resolve().parent / "tiny_model"


class ModelDirError(Exception):
    """The model directory is missing, incomplete, corrupt or of a kind we cannot run."""


@dataclass(frozen=True)
class ImageSpec:
    """How images are turned into the image tower's input (open_clip's eval transform)."""

    size: int = 224
    resize_mode: str = "shortest"
    interpolation: str = "bicubic"
    mean: tuple[float, float, float] = (0.48145466, 0.4578275, 0.40821073)
    std: tuple[float, float, float] = (0.26862954, 0.26130258, 0.27577711)


@dataclass(frozen=True)
class TextSpec:
    """The CLIP BPE tokenizer's settings."""

    context_length: int = 77
    vocab_size: int = 49408
    vocab_file: str = "bpe_simple_vocab_16e6.txt.gz"


@dataclass(frozen=True)
class Manifest:
    """One exported CLIP model: identity, dimensions, preprocessing and file checksums."""

    model_id: str
    arch: str
    embed_dim: int
    pretrained: str | None = None
    checkpoint_sha256: str | None = None
    semantic: bool = True
    image: ImageSpec = field(default_factory=ImageSpec)
    text: TextSpec = field(default_factory=TextSpec)
    files: dict[str, str] = field(default_factory=dict)
    exported_with: dict[str, str] = field(default_factory=dict)
    format: int = FORMAT

    def to_json(self) -> str:
        """The manifest as pretty JSON."""
        return json.dumps(asdict(self), indent=2, sort_keys=True) + "\n"


def sha256_file(path: Path) -> str:
    """The hex sha256 of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _parse(raw: dict[str, Any]) -> Manifest:
    data = dict(raw)
    data["image"] = ImageSpec(
        **{
            **data.get("image", {}),
            "mean": tuple(data.get("image", {}).get("mean", ImageSpec.mean)),
            "std": tuple(data.get("image", {}).get("std", ImageSpec.std)),
        }
    )
    data["text"] = TextSpec(**data.get("text", {}))
    return Manifest(**data)


def read_manifest(directory: Path) -> Manifest:
    """Read and validate `directory/manifest.json` (no checksums: see `verify_files`)."""
    path = Path(directory) / MANIFEST
    if not Path(directory).is_dir():
        raise ModelDirError(f"model directory {directory} does not exist (set MODEL_DIR to an exported model)")
    if not path.is_file():
        raise ModelDirError(
            f"{directory} is not a model directory: no {MANIFEST} (make one with `backroom models export`)"
        )
    try:
        manifest = _parse(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, TypeError) as error:
        raise ModelDirError(f"{path} is not a valid manifest: {error}") from None
    _check_supported(manifest, path)
    return manifest


def _check_supported(manifest: Manifest, path: Path) -> None:
    if manifest.format != FORMAT:
        raise ModelDirError(f"{path}: manifest format {manifest.format} is not supported (expected {FORMAT})")
    spec = manifest.image
    if (spec.resize_mode, spec.interpolation) != ("shortest", "bicubic"):
        raise ModelDirError(
            f"{path}: preprocessing {spec.resize_mode}/{spec.interpolation} is not supported "
            "(only shortest-side bicubic resize with a centre crop)"
        )
    for name in ("image.onnx", "text.onnx", manifest.text.vocab_file):
        if name not in manifest.files:
            raise ModelDirError(f"{path}: the manifest lists no checksum for {name}")


def verify_files(directory: Path, manifest: Manifest, names: list[str]) -> None:
    """Check that each named file exists and matches its manifest checksum."""
    for name in names:
        path = Path(directory) / name
        expected = manifest.files.get(name)
        if expected is None:
            raise ModelDirError(f"{directory}: {name} is not listed in the manifest")
        if not path.is_file():
            raise ModelDirError(f"{directory}: {name} is missing")
        actual = sha256_file(path)
        if actual != expected:
            raise ModelDirError(
                f"{directory}: {name} is corrupt (sha256 {actual[:12]}…, manifest says {expected[:12]}…)"
            )
