"""A job's history for admins: error fingerprints and groups, attempts, unredaction."""

from __future__ import annotations

from datetime import datetime, timedelta, UTC

import pytest

from admin.timeline import JobEvent, attempts_from, error_signature, fingerprint, group_errors, ordered, unredact
from domain.jobs import REDACTED

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@pytest.mark.parametrize(
    ("one", "two"),
    [
        ("TimeoutError: order 1234 timed out after 30.5 s", "TimeoutError: order 99 timed out after 2 s"),
        ("KeyError: 'sku-a'", 'KeyError: "sku-b"'),
        ("NotFound: item 3f2a9c1e-1111-2222-3333-444455556666", "NotFound: item 00000000-0000-0000-0000-000000000000"),
        ("Failed at 0xdeadbeef", "Failed at 0x1"),
    ],
)
def test_alike_errors_share_a_fingerprint(one: str, two: str) -> None:
    assert fingerprint(one) == fingerprint(two)


def test_different_errors_and_missing_errors() -> None:
    assert fingerprint("TimeoutError: x") != fingerprint("ValueError: x")
    assert error_signature(None) == error_signature("  ") == "(no error recorded)"
    assert error_signature("ValueError: bad\nmore lines") == "ValueError: bad"


def test_group_errors_biggest_first_with_actors_and_range() -> None:
    groups = group_errors([("Timeout: 1", "a", at(0)), ("Timeout: 2", "b", at(5)), ("Boom", "a", at(3))])
    assert [(g.count, g.actors) for g in groups] == [(2, ["a", "b"]), (1, ["a"])]
    assert groups[0].newest == at(5) and groups[0].oldest == at(0)


def test_attempts_pair_starts_with_outcomes() -> None:
    events = [
        JobEvent(at=at(0), event="queued"),
        JobEvent(at=at(1), event="started", worker="w:1"),
        JobEvent(at=at(1.5), event="retrying"),
        JobEvent(at=at(1.5005), event="failed", error="E: x", traceback="tb"),
        JobEvent(at=at(3), event="retry_due"),
        JobEvent(at=at(3.1), event="started", worker="w:2"),
        JobEvent(at=at(3.2), event="recovered", worker="w:2"),
        JobEvent(at=at(9), event="started", worker="w:3"),
    ]
    timeline = ordered(events)
    assert [e.event for e in timeline][2:4] == ["failed", "retrying"]  # the failure before the retry it caused
    attempts = attempts_from(timeline)
    assert [(a.number, a.outcome, a.worker) for a in attempts] == [
        (1, "failed", "w:1"),
        (2, "recovered", "w:2"),
        (3, "running", "w:3"),
    ]
    assert attempts[0].error == "E: x" and attempts[0].traceback == "tb" and attempts[0].duration_ms == 500
    assert attempts[2].finished_at is None and attempts[2].duration_ms is None


def test_unredact_keeps_originals_only_where_the_marker_was_left() -> None:
    original = {"api_key": "s3cret", "n": 1, "nested": {"token": "t", "x": 2}}
    edited = {"api_key": REDACTED, "n": 5, "nested": {"token": REDACTED, "x": 3}, "new": REDACTED}
    assert unredact(edited, original) == {
        "api_key": "s3cret",
        "n": 5,
        "nested": {"token": "t", "x": 3},
        "new": REDACTED,
    }
    assert unredact([REDACTED, "b", "c"], ["a", "x"]) == ["a", "b", "c"]
