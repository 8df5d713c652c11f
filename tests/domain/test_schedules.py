"""The schedule configuration's pure rules: defaults, the scrape plan, cadence overrides, the watches."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from domain.schedules import (
    DEFAULT_BRANDS,
    ScheduleSetting,
    ScrapeSource,
    config_from,
    dead_growth,
    effective_spec,
    is_enabled,
    newly_silent,
    scrape_plan,
    upsert_source,
)


def test_missing_lists_take_their_defaults_and_stored_empty_lists_mean_none() -> None:
    defaults = config_from({})
    assert [s.source for s in defaults.sources] == ["vinted", "grailed"]
    assert defaults.brands == list(DEFAULT_BRANDS) and defaults.surfaces == ["home"]
    empty = config_from({"sources": [], "brands": [], "surfaces": []})
    assert (empty.sources, empty.brands, empty.surfaces) == ([], [], [])


def test_the_plan_has_one_job_per_enabled_source_and_distinct_query() -> None:
    sources = [
        ScrapeSource(source="vinted", queries=["ramones", " Ramones "], limit=5),
        ScrapeSource(source="grailed", queries=["geobasket"], brands=False),
        ScrapeSource(source="shop", queries=["boots"], enabled=False),
    ]
    plan = [(j.source, j.query, j.limit) for j in scrape_plan(sources, ["Rick Owens", "ramones"])]
    assert plan == [("vinted", "ramones", 5), ("vinted", "Rick Owens", 5), ("grailed", "geobasket", 48)]


@pytest.mark.parametrize(
    "bad", [{"source": "Vinted"}, {"source": "a b"}, {"source": "x", "limit": 0}, {"source": "x", "limit": 501}]
)
def test_a_bad_source_is_refused(bad: dict) -> None:
    with pytest.raises(ValidationError):
        ScrapeSource.model_validate(bad)


def test_a_surface_must_be_a_plain_name() -> None:
    with pytest.raises(ValueError, match="invalid surface"):
        config_from({"surfaces": ["Home Page"]})


def test_upsert_replaces_by_name_or_appends() -> None:
    sources = [ScrapeSource(source="vinted"), ScrapeSource(source="grailed")]
    changed = upsert_source(sources, ScrapeSource(source="vinted", limit=3))
    assert [(s.source, s.limit) for s in changed] == [("vinted", 3), ("grailed", 48)]
    assert [s.source for s in upsert_source(sources, ScrapeSource(source="shop"))] == ["vinted", "grailed", "shop"]


def test_cadence_override_and_on_off() -> None:
    assert effective_spec("0 2 * * *", None) == "0 2 * * *"
    assert effective_spec("0 2 * * *", ScheduleSetting(actor="a", cron="30 1 * * *")) == "30 1 * * *"
    assert effective_spec("0 2 * * *", ScheduleSetting(actor="a", enabled=False)) == "0 2 * * *"
    assert is_enabled(None) and not is_enabled(ScheduleSetting(actor="a", enabled=False))


def test_silent_nodes_are_those_seen_live_not_live_now_and_not_yet_alerted() -> None:
    assert newly_silent(live=["a"], watched=["a", "b", "c"], alerted=["c"]) == ["b"]
    assert newly_silent(live=[], watched=[], alerted=[]) == []


def test_dead_growth_needs_a_previous_check() -> None:
    assert dead_growth(None, {"default": 3}) == {}
    assert dead_growth(1_000, {"ml": 0, "default": 2, "edge": 1}) == {"default": 2, "edge": 1}
