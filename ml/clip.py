"""CLIP on ONNX Runtime: a model directory opened once, image and text towers, unit float32 vectors."""

from __future__ import annotations

import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np
import onnxruntime as ort

from ml.manifest import Manifest, ModelDirError, read_manifest, verify_files
from ml.preprocess import preprocess_batch
from ml.tokenizer import ClipTokenizer, trim

log = logging.getLogger("backroom.ml")
Precision = Literal["fp32", "int8"]
_FILES = {"fp32": ("image.onnx", "text.onnx"), "int8": ("image.int8.onnx", "text.int8.onnx")}


@dataclass
class ImageEmbeddings:
    """Vectors of the usable images by input index, and the reason each other one failed."""

    vectors: dict[int, np.ndarray] = field(default_factory=dict)
    errors: dict[int, str] = field(default_factory=dict)


def model_id(manifest: Manifest, precision: Precision) -> str:
    """The id stored beside each vector: the export's id, marked when quantised."""
    return manifest.model_id if precision == "fp32" else f"{manifest.model_id}+int8"


def normalise(vectors: np.ndarray) -> np.ndarray:
    """L2-normalise rows as float32 (a zero row stays zero)."""
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, np.float32(1e-12))


def _session(path: Path, threads: int) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as error:  # onnxruntime raises its own untyped errors for bad graphs
        raise ModelDirError(f"{path} is not a loadable ONNX model: {error}") from None


class ClipModel:
    """An exported CLIP model: `embed_images(bytes...)` and `embed_texts(str...)` -> unit vectors."""

    def __init__(self, directory: Path, manifest: Manifest, precision: Precision, threads: int = 0) -> None:
        image_file, text_file = _FILES[precision]
        verify_files(directory, manifest, [image_file, text_file, manifest.text.vocab_file])
        self.directory, self.manifest, self.precision = directory, manifest, precision
        self.image_session = _session(directory / image_file, threads)
        self.text_session = _session(directory / text_file, threads)
        self.tokenizer = ClipTokenizer(directory / manifest.text.vocab_file, manifest.text.context_length)
        self._lock = threading.Lock()  # one batch at a time: each run already uses every core
        self._check_shapes()

    @classmethod
    def load(cls, directory: Path | str, *, precision: Precision = "fp32", threads: int = 0) -> ClipModel:
        """Open a model directory; ModelDirError (with the reason) when it is wrong or corrupt."""
        directory = Path(directory)
        manifest = read_manifest(directory)
        model = cls(directory, manifest, precision, threads)
        if not manifest.semantic:
            log.warning(
                "MODEL_DIR %s holds %s, a test model with random weights: its embeddings are NOT "
                "semantic; set MODEL_DIR to a real export (`backroom models export`)",
                directory,
                manifest.model_id,
            )
        return model

    @property
    def model_id(self) -> str:
        """The id written beside every vector this model makes."""
        return model_id(self.manifest, self.precision)

    def _check_shapes(self) -> None:
        for name, session in (("image", self.image_session), ("text", self.text_session)):
            out = session.get_outputs()[0].shape
            if len(session.get_inputs()) != 1 or out[-1] != self.manifest.embed_dim:
                raise ModelDirError(
                    f"{self.directory}: the {name} model's output is {out}, expected (batch, {self.manifest.embed_dim})"
                )

    def _run(self, session: ort.InferenceSession, batch: np.ndarray) -> np.ndarray:
        name = session.get_inputs()[0].name
        with self._lock:
            return normalise(session.run(None, {name: batch})[0])

    def embed_pixels(self, pixels: np.ndarray) -> np.ndarray:
        """Preprocessed (n, 3, size, size) float32 images -> (n, dim) unit vectors."""
        return self._run(self.image_session, np.ascontiguousarray(pixels, dtype=np.float32))

    def embed_images(self, images: Sequence[bytes], *, batch_size: int = 8, draft: bool = True) -> ImageEmbeddings:
        """Embed encoded images in batches; an unusable image is reported, never fatal to the rest."""
        result = ImageEmbeddings()
        for start in range(0, len(images), batch_size):
            chunk = images[start : start + batch_size]
            pixels, errors = preprocess_batch(chunk, self.manifest.image, draft=draft)
            result.errors.update({start + i: reason for i, reason in errors.items()})
            ok = [start + i for i in range(len(chunk)) if i not in errors]
            if ok:
                result.vectors.update(zip(ok, self.embed_pixels(pixels)))
        return result

    def embed_tokens(self, tokens: np.ndarray) -> np.ndarray:
        """Token ids (n, length <= context) -> (n, dim) unit vectors."""
        return self._run(self.text_session, np.ascontiguousarray(tokens, dtype=np.int64))

    def embed_texts(self, texts: Sequence[str], *, batch_size: int = 64) -> np.ndarray:
        """Embed texts, each batch trimmed after its longest end-of-text token."""
        out = [
            self.embed_tokens(trim(self.tokenizer(texts[i : i + batch_size]))) for i in range(0, len(texts), batch_size)
        ]
        return np.concatenate(out) if out else np.zeros((0, self.manifest.embed_dim), np.float32)
