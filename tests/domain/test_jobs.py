"""Job statuses, redaction and summaries: pure rules."""

from __future__ import annotations

import pytest

from domain.jobs import (
    REDACTED,
    JobStatus,
    error_text,
    redact,
    status_after_attempt,
    status_on_enqueue,
    summarise_result,
)
from domain.tokens import grants, hash_token, make_token, validate_scopes


@pytest.mark.parametrize(
    ("retries", "delayed", "expected"),
    [
        (0, False, JobStatus.QUEUED),
        (0, True, JobStatus.DELAYED),
        (1, True, JobStatus.RETRYING),
        (2, False, JobStatus.RETRYING),
    ],
)
def test_status_on_enqueue(retries: int, delayed: bool, expected: JobStatus) -> None:
    assert status_on_enqueue(retries=retries, delayed=delayed) is expected


@pytest.mark.parametrize(
    ("failed", "dead", "expected"),
    [(False, False, JobStatus.SUCCEEDED), (True, False, JobStatus.RETRYING), (True, True, JobStatus.DEAD)],
)
def test_status_after_attempt(failed: bool, dead: bool, expected: JobStatus) -> None:
    assert status_after_attempt(failed=failed, dead_lettered=dead) is expected


@pytest.mark.parametrize("status", list(JobStatus))
def test_final_and_cancellable_are_disjoint(status: JobStatus) -> None:
    assert not (status.final and status.cancellable)
    assert status.cancellable == (status in {JobStatus.QUEUED, JobStatus.DELAYED, JobStatus.RETRYING})


def test_redact_nested_secret_keys() -> None:
    value = {"email": "a@b.c", "api_key": "k", "nested": [{"Password": "p", "n": 1}], "auth": {"token": "t"}}
    assert redact(value) == {
        "email": "a@b.c",
        "api_key": REDACTED,
        "nested": [{"Password": REDACTED, "n": 1}],
        "auth": {"token": REDACTED},
    }


def test_summarise_result_cuts_big_values() -> None:
    assert summarise_result({"a": 1}) == {"a": 1}
    assert summarise_result(None) is None
    big = summarise_result(list(range(5000)))
    assert isinstance(big, str) and len(big) <= 2001
    assert summarise_result({"secret": "s"}) == {"secret": REDACTED}


def test_error_text() -> None:
    assert error_text(ValueError("bad")) == "ValueError: bad"
    assert error_text(KeyError()) == "KeyError"
    assert len(error_text(RuntimeError("x" * 5000))) == 1001


def test_tokens_and_scopes() -> None:
    token = make_token("ab" * 32)
    assert token.startswith("brt_") and len(hash_token(token)) == 64
    assert validate_scopes(["jobs", "jobs"]) == ["jobs"]
    with pytest.raises(ValueError, match="unknown scope 'root'"):
        validate_scopes(["root"])
    with pytest.raises(ValueError):
        validate_scopes([])
    assert grants(("admin",), "jobs") and grants(("admin",), "admin:read")
    assert not grants(("admin:read",), "admin") and not grants(("jobs",), "admin:read")


def test_redact_hides_marketplace_urls_in_edge_results() -> None:
    value = {
        "source": "vinted",
        "listings": [
            {
                "title": "Coat",
                "url": "https://www.vinted.fr/items/1",
                "image_urls": ["https://images1.vinted.net/a.jpg"],
            }
        ],
    }
    assert redact(value) == {
        "source": "vinted",
        "listings": [{"title": "Coat", "url": REDACTED, "image_urls": REDACTED}],
    }
