"""/v1/reminders and /v1/notifications: bounded bodies, 202 enqueues, reads of sends, preferences and the log."""

from __future__ import annotations

import secrets
from datetime import date, datetime, time, UTC

import asyncpg
import pytest

import actors
from db.reminders import upsert_preferences, upsert_subject
from domain.reminders import Occasion, Preferences, Subject
from tests.web.conftest import bearer

SUBJECT = {
    "recipient": "user-1",
    "addresses": {"email": "ada@example.com"},
    "occurs_on": "2030-02-28",
    "time_zone": "Europe/London",
    "recurrence": "yearly",
    "offsets_minutes": [0, 4320],
    "channels": ["email"],
    "template": "ops_message",
    "data": {"title": "Ada's birthday", "text": "soon"},
}


async def test_put_subject_enqueues_the_upsert(client, tokens, redis_client) -> None:
    response = await client.put("/v1/reminders/subjects/occasion:1", json=SUBJECT, headers=bearer(tokens["jobs"]))
    assert response.status_code == 202
    record = actors.broker.jobs.get((await response.get_json())["job_id"])
    assert record is not None and record.actor == "upsert_reminder_subject" and record.queue == "notify"
    deleted = await client.delete("/v1/reminders/subjects/occasion:1", headers=bearer(tokens["jobs"]))
    assert deleted.status_code == 202
    assert actors.broker.jobs.get((await deleted.get_json())["job_id"]).actor == "delete_reminder_subject"


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"time_zone": "Mars/Olympus"}, "time_zone"),
        ({"channels": []}, "body"),
        ({"offsets_minutes": [10_000_000]}, "offsets_minutes"),
        ({"occurs_on": "1800-01-01"}, "body"),
        ({"recurrence": "weekly"}, "recurrence"),
        ({"data": {str(i): i for i in range(51)}}, "data"),
        ({"addresses": {"email": ""}}, "addresses"),
        ({"template": "a\u0000b"}, "template"),
    ],
)
async def test_bad_subjects_are_422_naming_the_field(client, tokens, change: dict, field: str) -> None:
    response = await client.put(
        "/v1/reminders/subjects/occasion:2", json={**SUBJECT, **change}, headers=bearer(tokens["jobs"])
    )
    assert response.status_code == 422
    fields = (await response.get_json()).get("errors", {})
    assert any(name == field or name.startswith(f"{field}.") for name in fields), fields


@pytest.mark.parametrize(
    ("change", "status", "named"),
    [
        ({"offsets_minutes": [], "channels": []}, 404, "policy"),  # no policy, and no default policy either
        ({"policy_id": "no-such-policy"}, 404, "policy"),
        ({"template": "no_such_template"}, 404, "template"),
        ({"addresses": {"push": "u"}}, 409, "addresses"),
        ({"data": {"title": "only"}}, 409, "data"),
    ],
)
async def test_subjects_naming_what_is_not_there_are_404_or_409(
    client, tokens, change: dict, status: int, named: str
) -> None:
    """Well-formed bodies (the schema takes them) that the stored policies or templates cannot serve."""
    response = await client.put(
        "/v1/reminders/subjects/occasion:2", json={**SUBJECT, **change}, headers=bearer(tokens["jobs"])
    )
    assert response.status_code == status
    assert named in (await response.get_json())["detail"]


async def test_bad_ids_are_404_and_a_token_is_needed(client, tokens) -> None:
    bad = await client.put("/v1/reminders/subjects/" + "x" * 201, json=SUBJECT, headers=bearer(tokens["jobs"]))
    assert bad.status_code == 404
    assert (await client.get("/v1/notifications/preferences/u1")).status_code == 401
    assert (await client.get("/v1/notifications/log")).status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"quiet_start": "22:00"},
        {"daily_cap": 0},
        {"daily_cap": 1001},
        {"channels_off": ["fax"]},
        {"time_zone": "Nowhere/City"},
        {"opted_out": True, "extra": 1},
    ],
)
async def test_bad_preferences_are_422(client, tokens, body: dict) -> None:
    response = await client.put("/v1/notifications/preferences/u1", json=body, headers=bearer(tokens["jobs"]))
    assert response.status_code == 422


async def test_preferences_read_defaults_then_stored_values_and_writes_enqueue(
    client, tokens, database_url, redis_client
) -> None:
    who = f"u-{secrets.token_hex(4)}"
    default = await client.get(f"/v1/notifications/preferences/{who}", headers=bearer(tokens["jobs"]))
    assert (await default.get_json())["opted_out"] is False and (await default.get_json())["time_zone"] == "UTC"
    conn = await asyncpg.connect(database_url)
    try:
        await upsert_preferences(conn, who, Preferences("Europe/Paris", frozenset({"push"}), time(22), time(7), 3))
    finally:
        await conn.close()
    stored = await (await client.get(f"/v1/notifications/preferences/{who}", headers=bearer(tokens["jobs"]))).get_json()
    assert stored == {
        "recipient": who,
        "time_zone": "Europe/Paris",
        "channels_off": ["push"],
        "quiet_start": "22:00:00",
        "quiet_end": "07:00:00",
        "daily_cap": 3,
        "opted_out": False,
        "locale": "en",
        "default_policy_id": None,
    }
    put = await client.put(
        f"/v1/notifications/preferences/{who}",
        json={"opted_out": True, "quiet_start": "23:00", "quiet_end": "06:30"},
        headers=bearer(tokens["jobs"]),
    )
    assert put.status_code == 202
    record = actors.broker.jobs.get((await put.get_json())["job_id"])
    assert record.actor == "update_preferences"


async def test_a_subjects_sends_and_log_are_readable(client, tokens, database_url) -> None:
    subject = f"occasion:{secrets.token_hex(4)}"
    spec = Subject(
        subject,
        "reader-1",
        {"email": "r@example.com"},
        Occasion(date(2030, 6, 1), "UTC"),
        (0, 1440),
        ("email",),
        "ops_message",
    )
    conn = await asyncpg.connect(database_url)
    try:
        async with conn.transaction():
            await upsert_subject(conn, spec, datetime(2030, 1, 1, tzinfo=UTC))
    finally:
        await conn.close()
    sends = await (await client.get(f"/v1/reminders/subjects/{subject}", headers=bearer(tokens["jobs"]))).get_json()
    assert [(r["offset_minutes"], r["due_at"], r["status"]) for r in sends["reminders"]] == [
        (1440, "2030-05-31T09:00:00Z", "pending"),
        (0, "2030-06-01T09:00:00Z", "pending"),
    ]
    log = await (
        await client.get(f"/v1/notifications/log?subject={subject}&limit=1", headers=bearer(tokens["jobs"]))
    ).get_json()
    assert len(log["entries"]) == 1 and log["entries"][0]["event"] == "queued"
    older = await (
        await client.get(
            f"/v1/notifications/log?subject={subject}&before_id={log['entries'][0]['id']}",
            headers=bearer(tokens["jobs"]),
        )
    ).get_json()
    assert [e["event"] for e in older["entries"]] == ["queued"]
    missing = await client.get("/v1/reminders/subjects/occasion:none", headers=bearer(tokens["jobs"]))
    assert missing.status_code == 404
    bad = await client.get("/v1/notifications/log?limit=501", headers=bearer(tokens["jobs"]))
    assert bad.status_code == 422
