"""Spherical k-means over embedding vectors (cosine), for collections when no style seed exists."""
from __future__ import annotations

import numpy as np


def unit_rows(vectors: np.ndarray) -> np.ndarray:
    """The rows scaled to length 1 (zero rows stay zero)."""
    matrix = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(matrix, axis=1, keepdims=True)
    return matrix / np.where(norms == 0, 1.0, norms)


def cosine_matrix(vectors: np.ndarray) -> np.ndarray:
    """Pairwise cosine similarities of the rows."""
    unit = unit_rows(vectors)
    return unit @ unit.T


def kmeans(vectors: np.ndarray, k: int, *, seed: int, iterations: int = 25) -> np.ndarray:
    """Up to `k` unit centroids of the rows' directions (k-means++ start, cosine assignment), largest cluster first."""
    unit = unit_rows(vectors)
    n = len(unit)
    k = min(k, n)
    if k <= 0:
        return np.zeros((0, unit.shape[1] if unit.ndim == 2 else 0), dtype=np.float32)
    rng = np.random.default_rng(seed)
    centroids = [unit[rng.integers(n)]]
    for _ in range(1, k):
        distance = np.clip(1.0 - np.max(unit @ np.array(centroids).T, axis=1), 0.0, None)
        total = float(distance.sum())
        if total <= 1e-12:  # fewer distinct directions than k
            break
        centroids.append(unit[rng.choice(n, p=distance / total)])
    centres = np.array(centroids, dtype=np.float32)
    labels = np.zeros(n, dtype=np.int64)
    for _ in range(iterations):
        labels = np.argmax(unit @ centres.T, axis=1)
        moved = centres.copy()
        for cluster in range(len(centres)):
            members = unit[labels == cluster]
            if len(members):
                moved[cluster] = members.sum(axis=0)
        moved = unit_rows(moved)
        if np.allclose(moved, centres, atol=1e-6):
            break
        centres = moved
    sizes = np.bincount(labels, minlength=len(centres))
    return centres[np.argsort(-sizes, kind="stable")]
