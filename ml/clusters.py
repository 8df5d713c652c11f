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


def kmeans(vectors: np.ndarray, k: int, *, seed: int, iterations: int = 25, restarts: int = 8) -> np.ndarray:
    """Up to `k` unit centroids of the rows' directions (k-means++ start, cosine assignment), largest cluster first.

    One k-means++ start can put two centroids in one group and never recover, so it runs
    `restarts` starts (seeded, so repeatable) and keeps the tightest (highest total cosine).
    """
    unit = unit_rows(vectors)
    n = len(unit)
    k = min(k, n)
    if k <= 0:
        return np.zeros((0, unit.shape[1] if unit.ndim == 2 else 0), dtype=np.float32)
    rng = np.random.default_rng(seed)
    runs = [_lloyd(unit, _plus_plus(unit, k, rng), iterations) for _ in range(max(1, restarts))]
    centres, labels, _ = max(runs, key=lambda run: run[2])
    sizes = np.bincount(labels, minlength=len(centres))
    return centres[np.argsort(-sizes, kind="stable")]


def _plus_plus(unit: np.ndarray, k: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ starting centroids: each next one drawn with probability by its cosine distance."""
    n = len(unit)
    centroids = [unit[rng.integers(n)]]
    for _ in range(1, k):
        distance = np.clip(1.0 - np.max(unit @ np.array(centroids).T, axis=1), 0.0, None)
        total = float(distance.sum())
        if total <= 1e-12:  # fewer distinct directions than k
            break
        centroids.append(unit[rng.choice(n, p=distance / total)])
    return np.array(centroids, dtype=np.float32)


def _lloyd(unit: np.ndarray, centres: np.ndarray, iterations: int) -> tuple[np.ndarray, np.ndarray, float]:
    """Spherical Lloyd iterations from `centres`: (centres, labels, total cosine to the assigned centre)."""
    labels = np.zeros(len(unit), dtype=np.int64)
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
    labels = np.argmax(unit @ centres.T, axis=1)
    return centres, labels, float(np.max(unit @ centres.T, axis=1).sum())
