"""Zero-shot labels: image vectors against the averaged text vectors of each label's prompts.

A label's vector is the normalised mean of its prompts' text embeddings (CLIP's prompt
ensembling). Those depend only on the model and the vocabulary, so they are computed
once per process per (model, vocabulary version) and kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from ml.clip import ClipModel, normalise

_CACHE_SIZE = 4  # a vocabulary edit adds an entry; old ones fall out
_lock = threading.Lock()
_cache: OrderedDict[tuple[str, str], tuple[LabelMatrix, LabelMatrix]] = OrderedDict()


@dataclass(frozen=True)
class LabelMatrix:
    """Labels in order and their unit vectors, one row each."""

    labels: tuple[str, ...]
    vectors: np.ndarray

    def scores(self, images: np.ndarray) -> list[dict[str, float]]:
        """Cosine similarity of each unit image vector (rows) with every label."""
        if len(images) == 0:
            return []
        matrix = normalise(np.asarray(images, dtype=np.float32)) @ self.vectors.T
        return [dict(zip(self.labels, map(float, row))) for row in matrix]


def label_matrix(model: ClipModel, prompts: Mapping[str, Sequence[str]]) -> LabelMatrix:
    """Embed every prompt once; each label's vector is the normalised mean of its prompts'."""
    labels = tuple(prompts)
    flat = [p for label in labels for p in prompts[label]]
    vectors = model.embed_texts(flat)
    rows, start = [], 0
    for label in labels:
        count = len(prompts[label])
        rows.append(vectors[start : start + count].mean(axis=0))
        start += count
    return LabelMatrix(labels, normalise(np.stack(rows)))


def label_matrices(
    model: ClipModel, version: str, slot_prompts: Mapping[str, Sequence[str]], tag_prompts: Mapping[str, Sequence[str]]
) -> tuple[LabelMatrix, LabelMatrix]:
    """The slot and tag matrices of a vocabulary `version` on `model`, cached per process."""
    key = (model.model_id, version)
    with _lock:
        if key in _cache:
            _cache.move_to_end(key)
            return _cache[key]
    made = (label_matrix(model, slot_prompts), label_matrix(model, tag_prompts))
    with _lock:
        _cache[key] = made
        while len(_cache) > _CACHE_SIZE:
            _cache.popitem(last=False)
    return made


def clear_cache() -> None:
    """Forget every cached label matrix (tests)."""
    with _lock:
        _cache.clear()


def cached_keys() -> list[tuple[str, str]]:
    """The (model id, vocabulary version) pairs held now."""
    with _lock:
        return list(_cache)
