"""Diverse picking, seed rotation and titles of curated collections (pure)."""

from __future__ import annotations

import math
import random
from datetime import date, timedelta

import pytest

from domain.collections import (
    Candidate,
    DiversityRules,
    InvalidSurface,
    brand_key,
    check_surface,
    cluster_title,
    cosine_matrix,
    distinct_titles,
    pick_seeds,
    seed_title,
    select_diverse,
)


def unit(angle_degrees: float) -> list[float]:
    """A 2-d unit vector at this angle."""
    radians = math.radians(angle_degrees)
    return [math.cos(radians), math.sin(radians)]


def picks(candidates: list[Candidate], vectors: list[list[float]], **rules: float) -> list[int]:
    """The ids select_diverse picks."""
    chosen = select_diverse(candidates, cosine_matrix(vectors), DiversityRules(**rules))  # type: ignore[arg-type]
    return [candidates[i].id for i in chosen]


def test_pure_relevance_takes_the_best_scores_in_order() -> None:
    candidates = [Candidate(i, score) for i, score in enumerate([0.5, 0.9, 0.7, 0.8])]
    vectors = [unit(a) for a in (0, 40, 80, 120)]
    assert picks(candidates, vectors, size=3, relevance_weight=1.0) == [1, 3, 2]


def test_near_duplicates_are_never_both_picked() -> None:
    # 1 and 2 point almost the same way (cos 1 degree = 0.99985), 3 elsewhere
    candidates = [Candidate(1, 0.9), Candidate(2, 0.89), Candidate(3, 0.5)]
    vectors = [unit(0), unit(1), unit(60)]
    assert picks(candidates, vectors, size=3, relevance_weight=1.0, max_similarity=0.99) == [1, 3]
    assert picks(candidates, vectors, size=3, relevance_weight=1.0, max_similarity=1.0) == [1, 2, 3]


@pytest.mark.parametrize("cap", [1, 2, 3])
def test_brand_cap_counts_brands_case_and_blank_insensitively(cap: int) -> None:
    brands = ["Acne", "acne ", "ACNE", " Acne", "Our Legacy", None, None]
    candidates = [Candidate(i, 1.0 - i / 100, b) for i, b in enumerate(brands)]
    vectors = [unit(i * 12) for i in range(len(brands))]
    chosen = picks(candidates, vectors, size=7, brand_cap=cap, relevance_weight=1.0, max_similarity=1.0)
    assert sum(1 for i in chosen if brand_key(brands[i]) == "acne") == min(cap, 4)
    assert {4, 5, 6} <= set(chosen)  # other brands and unknown brands are unaffected


def test_lower_relevance_weight_prefers_items_unlike_the_picks() -> None:
    # 2 is nearly as relevant as 1 but close to it; 3 is less relevant and far away
    candidates = [Candidate(1, 0.90), Candidate(2, 0.88), Candidate(3, 0.70)]
    vectors = [unit(0), unit(20), unit(90)]
    assert picks(candidates, vectors, size=2, relevance_weight=1.0) == [1, 2]
    assert picks(candidates, vectors, size=2, relevance_weight=0.5) == [1, 3]


def test_excluded_ids_are_skipped_and_size_bounds_the_result() -> None:
    candidates = [Candidate(i, 1.0 - i / 10) for i in range(6)]
    vectors = [unit(i * 30) for i in range(6)]
    rules = DiversityRules(size=3, relevance_weight=1.0)
    chosen = select_diverse(candidates, cosine_matrix(vectors), rules, exclude={0, 2})
    assert [candidates[i].id for i in chosen] == [1, 3, 4]
    assert select_diverse([], [], DiversityRules()) == []


@pytest.mark.parametrize("seed", range(20))
def test_random_inputs_always_satisfy_every_rule(seed: int) -> None:
    rng = random.Random(seed)
    n = rng.randint(1, 40)
    vectors = [[rng.gauss(0, 1) for _ in range(6)] for _ in range(n)]
    # plant exact duplicates
    for _ in range(n // 4):
        vectors[rng.randrange(n)] = list(vectors[rng.randrange(n)])
    candidates = [Candidate(i, rng.random(), rng.choice(["a", "b", "c", None])) for i in range(n)]
    rules = DiversityRules(
        size=rng.randint(1, 15), brand_cap=rng.randint(1, 3), max_similarity=0.9, relevance_weight=rng.random()
    )
    similarity = cosine_matrix(vectors)
    chosen = select_diverse(candidates, similarity, rules)
    assert len(chosen) == len(set(chosen)) <= rules.size
    for brand in "abc":
        assert sum(1 for i in chosen if candidates[i].brand == brand) <= rules.brand_cap
    for a in chosen:
        for b in chosen:
            assert a == b or similarity[a][b] <= rules.max_similarity
    # greedy stops only when nothing admissible is left
    if len(chosen) < rules.size:
        for i in set(range(n)) - set(chosen):
            brand = candidates[i].brand
            over_cap = brand is not None and sum(candidates[j].brand == brand for j in chosen) >= rules.brand_cap
            assert over_cap or any(similarity[i][j] > rules.max_similarity for j in chosen)


def test_similarity_must_match_the_candidates() -> None:
    with pytest.raises(ValueError):
        select_diverse([Candidate(1, 1.0)], [], DiversityRules())


@pytest.mark.parametrize("bad", [{"size": 0}, {"brand_cap": 0}, {"max_similarity": 1.5}, {"relevance_weight": -0.1}])
def test_rules_are_validated(bad: dict) -> None:
    with pytest.raises(ValueError):
        DiversityRules(**bad)


def test_seed_window_rotates_daily_and_differs_per_surface() -> None:
    seeds = [5, 3, 9, 1, 7]
    day = date(2024, 5, 1)
    today = pick_seeds(seeds, 2, surface="home", day=day)
    tomorrow = pick_seeds(seeds, 2, surface="home", day=day + timedelta(days=1))
    assert len(today) == 2 and set(today) <= set(seeds)
    ordered = sorted(seeds)
    assert ordered.index(tomorrow[0]) == (ordered.index(today[0]) + 1) % len(seeds)
    windows = {tuple(pick_seeds(seeds, 2, surface=s, day=day)) for s in ("home", "gifts", "sale", "new", "a", "b")}
    assert len(windows) > 1
    assert pick_seeds(seeds, 9, surface="home", day=day) == ordered
    assert pick_seeds([], 3, surface="home", day=day) == []


@pytest.mark.parametrize(
    ("label", "title"),
    [
        ("90s  grunge\n", "90s grunge"),
        ("quiet luxury", "Quiet luxury"),
        ("ACNE studios", "ACNE studios"),
    ],
)
def test_seed_titles(label: str, title: str) -> None:
    assert seed_title(label) == title


@pytest.mark.parametrize(
    ("slots", "brands", "title"),
    [
        (["outer_shell", "outer_shell", "legwear"], ["A", "B", "C"], "Outer shell edit"),
        ([None, None], ["Acne", "Acne", "Lemaire"], "Acne & Lemaire"),
        ([None, None, None], ["Acne", "Lemaire", "Sacai"], "Acne & Lemaire and more"),
        ([None], [None], "Edit 3"),
    ],
)
def test_cluster_titles(slots: list, brands: list, title: str) -> None:
    assert cluster_title(slots, brands, 3) == title


def test_repeated_titles_are_numbered() -> None:
    assert distinct_titles(["A", "B", "A", "A"]) == ["A", "B", "A 2", "A 3"]


@pytest.mark.parametrize("surface", ["", "Home", "a b", "x" * 51, "../etc"])
def test_bad_surfaces_are_refused(surface: str) -> None:
    with pytest.raises(InvalidSurface):
        check_surface(surface)
    assert check_surface("home-2_x") == "home-2_x"
