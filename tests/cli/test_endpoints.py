"""`backroom endpoints ...`: add (secret shown once), list, disable/enable, log, replay, remove; audited."""

from __future__ import annotations

import re

import redis

import actors
from tests.cli.test_schedules import db, ok, runner, WIDE
from cli.main import app


def test_endpoints_from_the_command_line(database_url: str, redis_client: redis.Redis) -> None:
    db(database_url, "DELETE FROM storefront_endpoints")
    added = ok("endpoints", "add", "kickz", "https://kickz.example.com/api/backroom", "--type", "item.sold")
    secret = re.search(r"whsec_\S+", added)
    assert secret is not None
    endpoint_id = db(database_url, "SELECT id FROM storefront_endpoints WHERE name = 'kickz'")[0]["id"]
    listed = ok("endpoints")
    assert "kickz" in listed and "item.sold" in listed and secret.group(0) not in listed
    refused = runner.invoke(app, ["endpoints", "add", "bad", "https://x.example.com", "--type", "item.gone"], env=WIDE)
    assert refused.exit_code == 1 and "unknown event type" in refused.output
    assert "off" in ok("endpoints", "disable", str(endpoint_id))
    assert "off (disabled by cli:" in ok("endpoints")
    ok("endpoints", "enable", str(endpoint_id))
    item = db(
        database_url,
        "INSERT INTO items (source, source_listing_id, title, kind, status)"
        " VALUES ('test', md5(random()::text), 'Piece', 'one_of_one', 'available') RETURNING id",
    )
    db(database_url, "UPDATE items SET status = 'sold' WHERE id = $1", item[0]["id"])
    sold = db(
        database_url,
        "SELECT id FROM storefront_events WHERE resource_id = $1 AND event_type = 'item.sold'",
        str(item[0]["id"]),
    )[0]["id"]
    assert "1 deliveries queued again" in ok("endpoints", "replay", str(endpoint_id), "--event", str(sold))
    assert "0 deliveries queued again" in ok("endpoints", "replay", str(endpoint_id), "--since", "2999-01-01T00:00:00")
    sent = [m for m in redis_client.hvals(actors.broker.jobs.keys.messages("events"))]
    assert any(b"sweep_events" in m for m in sent)
    assert "no endpoint" in runner.invoke(app, ["endpoints", "remove", "999999"], env=WIDE).output
    ok("endpoints", "remove", str(endpoint_id))
    actions = db(database_url, "SELECT action FROM audit_log WHERE target = $1 ORDER BY id", f"endpoint:{endpoint_id}")
    assert [a["action"] for a in actions] == [
        "endpoints.add",
        "endpoints.disable",
        "endpoints.enable",
        "endpoints.replay",
        "endpoints.replay",
        "endpoints.remove",
    ]
