"""Curated collections: diverse picks from ranked candidates, which seeds a surface shows, and titles.

Pure: vectors arrive as plain float sequences or as a similarity matrix computed by the caller
(NumPy lives in the actor layer), the clock arrives as a date.
"""

from __future__ import annotations

import math
import re
import zlib
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

SURFACE = re.compile(r"^[a-z0-9_-]{1,50}$")


class InvalidSurface(ValueError):
    """A surface name outside `[a-z0-9_-]{1,50}`."""


def check_surface(surface: str) -> str:
    """The surface name, or InvalidSurface (it ends up in URLs and lock keys)."""
    if not isinstance(surface, str) or not SURFACE.match(surface):
        raise InvalidSurface(f"invalid surface {surface!r}: use 1-50 of a-z, 0-9, _ and -")
    return surface


@dataclass(frozen=True)
class Candidate:
    """An available item near a collection's centre: `score` is its cosine similarity to it."""

    id: int
    score: float
    brand: str | None = None


@dataclass(frozen=True)
class DiversityRules:
    """How a collection is picked: size, per-brand cap, near-duplicate threshold, relevance weight."""

    size: int = 12
    brand_cap: int = 2
    max_similarity: float = 0.95
    relevance_weight: float = 0.7

    def __post_init__(self) -> None:
        if self.size < 1 or self.brand_cap < 1:
            raise ValueError("size and brand_cap must be at least 1")
        if not -1.0 <= self.max_similarity <= 1.0 or not 0.0 <= self.relevance_weight <= 1.0:
            raise ValueError("max_similarity must be in [-1, 1] and relevance_weight in [0, 1]")


def brand_key(brand: str | None) -> str | None:
    """The brand as the cap counts it: case and surrounding blanks ignored; unknown brands are uncapped."""
    if brand is None or not brand.strip():
        return None
    return " ".join(brand.split()).casefold()


def cosine_matrix(vectors: Sequence[Sequence[float]]) -> list[list[float]]:
    """Pairwise cosine similarities of plain float vectors (small inputs; callers with NumPy pass their own)."""
    norms = [math.sqrt(sum(x * x for x in v)) or 1.0 for v in vectors]
    unit = [[x / n for x in v] for v, n in zip(vectors, norms)]
    return [[sum(a * b for a, b in zip(u, w)) for w in unit] for u in unit]


def select_diverse(
    candidates: Sequence[Candidate],
    similarity: Sequence[Sequence[float]],
    rules: DiversityRules,
    *,
    exclude: frozenset[int] | set[int] = frozenset(),
) -> list[int]:
    """Indices of up to `rules.size` candidates, picked greedily by maximal marginal relevance.

    Each step takes the candidate maximising `w * score - (1 - w) * (its highest similarity to
    a pick)`, skipping ids in `exclude`, brands at their cap and anything more similar than
    `max_similarity` to a pick (a near-duplicate). Ties go to the earlier candidate.
    """
    if len(similarity) != len(candidates):
        raise ValueError("similarity must be a square matrix over the candidates")
    counts: Counter[str] = Counter()
    closest = [-math.inf] * len(candidates)  # highest similarity to any pick so far
    open_ = [c.id not in exclude for c in candidates]
    picked: list[int] = []
    w = rules.relevance_weight
    while len(picked) < rules.size:
        best, best_value = -1, -math.inf
        for index, candidate in enumerate(candidates):
            if not open_[index]:
                continue
            brand = brand_key(candidate.brand)
            if brand is not None and counts[brand] >= rules.brand_cap:
                open_[index] = False
                continue
            penalty = closest[index] if picked else 0.0
            value = w * candidate.score - (1.0 - w) * penalty
            if value > best_value:
                best, best_value = index, value
        if best < 0:
            break
        picked.append(best)
        open_[best] = False
        brand = brand_key(candidates[best].brand)
        if brand is not None:
            counts[brand] += 1
        row = similarity[best]
        for index in range(len(candidates)):
            if open_[index]:
                closest[index] = max(closest[index], float(row[index]))
                if closest[index] > rules.max_similarity:
                    open_[index] = False
    return picked


def pick_seeds(seed_ids: Sequence[int], count: int, *, surface: str, day: date) -> list[int]:
    """`count` seeds for a surface on a day: a window that moves one step a day, offset per surface."""
    ordered = sorted(set(seed_ids))
    if count <= 0 or not ordered:
        return []
    if len(ordered) <= count:
        return ordered
    start = (day.toordinal() + zlib.crc32(surface.encode())) % len(ordered)
    return [ordered[(start + i) % len(ordered)] for i in range(count)]


def seed_title(label: str) -> str:
    """A collection title from a seed label: blanks collapsed, first letter up, the rest as written."""
    text = " ".join(label.split())
    return text[:1].upper() + text[1:200]


def cluster_title(slots: Sequence[str | None], brands: Sequence[str | None], ordinal: int) -> str:
    """A title for a collection found by clustering (no seed label): its commonest slot or brands."""
    slot = _most_common([s for s in slots if s])
    if slot is not None:
        return f"{seed_title(slot.replace('_', ' '))} edit"
    names = [name for name, _ in Counter(b.strip() for b in brands if b and b.strip()).most_common(2)]
    if names:
        return " & ".join(names) + (" and more" if len(set(filter(None, brands))) > len(names) else "")
    return f"Edit {ordinal}"


def _most_common(values: Sequence[str]) -> str | None:
    if not values:
        return None
    counts = Counter(values)
    top = max(counts.values())
    return min(value for value, n in counts.items() if n == top)


def distinct_titles(titles: Sequence[str]) -> list[str]:
    """The titles, repeated ones numbered (`Outer shell edit`, `Outer shell edit 2`)."""
    seen: Counter[str] = Counter()
    result = []
    for title in titles:
        seen[title] += 1
        result.append(title if seen[title] == 1 else f"{title} {seen[title]}")
    return result


@dataclass(frozen=True)
class PlannedCollection:
    """One collection of a new generation: its title, the seed it grew from, and its picks in order."""

    title: str
    description: str | None
    seed_id: int | None
    item_ids: tuple[int, ...]
    scores: tuple[float, ...]
