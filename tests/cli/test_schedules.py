"""`backroom schedules ...`: cadence, on/off, sources, brands and surfaces, each change audited."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import asyncpg
import pytest
from typer.testing import CliRunner

from cli.main import app

runner = CliRunner()
WIDE = {"COLUMNS": "220"}


def db(database_url: str, query: str, *args: Any) -> list[asyncpg.Record]:
    async def fetch() -> list[asyncpg.Record]:
        conn = await asyncpg.connect(database_url)
        try:
            return await conn.fetch(query, *args)
        finally:
            await conn.close()

    return asyncio.run(fetch())


@pytest.fixture()
def clean(database_url: str) -> str:
    db(database_url, "TRUNCATE schedule_settings, schedule_config")
    return database_url


def ok(*args: str) -> str:
    result = runner.invoke(app, list(args), env=WIDE)
    assert result.exit_code == 0, result.output
    return result.output


def schedule(name: str) -> dict[str, Any]:
    view = json.loads(ok("schedules", "--json"))
    return next(s for s in view["schedules"] if s["actor"] == name)


def test_set_cadence_disable_enable_and_back_to_the_declaration(clean: str) -> None:
    ok("schedules", "set", "schedule_prune_listings", "30 1 * * *")
    row = schedule("schedule_prune_listings")
    assert (row["spec"], row["default_spec"], row["enabled"]) == ("30 1 * * *", "0 2 * * *", True)
    assert "declared 0 2 * * *" in ok("schedules")
    ok("schedules", "disable", "schedule_prune_listings")
    row = schedule("schedule_prune_listings")
    assert row["enabled"] is False and row["next_tick"] is None and row["spec"] == "30 1 * * *"
    ok("schedules", "enable", "schedule_prune_listings")
    ok("schedules", "set", "schedule_prune_listings", "--default")
    assert schedule("schedule_prune_listings")["spec"] == "0 2 * * *"
    audit = db(
        clean,
        "SELECT actor, before, after FROM audit_log WHERE target = $1 ORDER BY id DESC LIMIT 4",
        "schedule:schedule_prune_listings",
    )
    assert [json.loads(r["after"]) for r in reversed(audit)] == [
        {"cron": "30 1 * * *", "overridden": True, "enabled": True},
        {"cron": "30 1 * * *", "overridden": True, "enabled": False},
        {"cron": "30 1 * * *", "overridden": True, "enabled": True},
        {"cron": "0 2 * * *", "overridden": False, "enabled": True},
    ]
    assert audit[0]["actor"].startswith("cli:")


@pytest.mark.parametrize(
    "args, reason",
    [
        (["set", "schedule_prune_listings", "0 25 * * *"], "hour field: 25"),
        (["set", "no_such_schedule", "0 1 * * *"], "unknown schedule 'no_such_schedule'"),
        (["disable", "ping"], "unknown schedule 'ping'"),
        (["sources", "set", "Bad Name"], "invalid source"),
        (["surfaces", "add", "Not A Surface"], "invalid surface"),
    ],
)
def test_bad_changes_are_refused_and_nothing_is_stored(clean: str, args: list[str], reason: str) -> None:
    result = runner.invoke(app, ["schedules", *args], env=WIDE)
    assert result.exit_code == 1 and reason in result.output
    assert db(clean, "SELECT count(*) AS n FROM schedule_settings")[0]["n"] == 0
    assert db(clean, "SELECT count(*) AS n FROM schedule_config")[0]["n"] == 0


def test_sources_brands_and_surfaces(clean: str) -> None:
    defaults = json.loads(ok("schedules", "sources", "--json"))
    assert [s["source"] for s in defaults] == ["vinted", "grailed"]
    ok("schedules", "sources", "set", "shop", "-q", "boots", "-q", "derby", "--limit", "12", "--no-brands")
    ok("schedules", "sources", "set", "vinted", "--disable")
    ok("schedules", "sources", "remove", "grailed")
    sources = {s["source"]: s for s in json.loads(ok("schedules", "sources", "--json"))}
    assert set(sources) == {"vinted", "shop"} and sources["vinted"]["enabled"] is False
    assert sources["shop"] == {
        "source": "shop",
        "queries": ["boots", "derby"],
        "limit": 12,
        "brands": False,
        "enabled": True,
    }
    assert "boots, derby" in ok("schedules", "sources")
    ok("schedules", "brands", "set", "Rick Owens", "Raf Simons")
    ok("schedules", "brands", "add", "Helmut Lang", "rick owens")  # a brand already there is not doubled
    ok("schedules", "brands", "remove", "RAF SIMONS")
    assert json.loads(ok("schedules", "brands", "--json")) == ["Rick Owens", "Helmut Lang"]
    ok("schedules", "surfaces", "set", "home", "drops")
    assert json.loads(ok("schedules", "surfaces", "--json")) == ["home", "drops"]
    ok("schedules", "surfaces", "reset")
    assert json.loads(ok("schedules", "surfaces", "--json")) == ["home"]
    config = json.loads(ok("schedules", "--json"))["config"]
    assert config["brands"] == ["Rick Owens", "Helmut Lang"] and len(config["sources"]) == 2
    actions = [
        r["action"]
        for r in db(clean, "SELECT action FROM audit_log WHERE target LIKE 'schedules:%' ORDER BY id DESC LIMIT 8")
    ]
    assert actions == [
        "schedules.surfaces",
        "schedules.surfaces",
        "schedules.brands",
        "schedules.brands",
        "schedules.brands",
        "schedules.sources",
        "schedules.sources",
        "schedules.sources",
    ]
