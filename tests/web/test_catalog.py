"""/v1/integrations/payload: the shared secret or HMAC, bounds, validation, one job per event id."""
from __future__ import annotations

import hashlib
import hmac
import json

import pytest

from tests.actors.test_catalog import product_event
from tests.orders_support import restore_env, set_env

URL = "/v1/integrations/payload/product-changed"
SECRET = "payload-shared-secret"


@pytest.fixture()
def configured():  # type: ignore[no-untyped-def]
    saved = set_env({"PAYLOAD_WEBHOOK_SECRET": SECRET})
    yield
    restore_env(saved)


async def test_not_configured_is_503(client) -> None:
    response = await client.post(URL, json=product_event("p", minutes=1, title="T"),
                                 headers={"X-Internal-Webhook-Secret": SECRET})
    assert response.status_code == 503


async def test_the_secret_or_the_signature_authenticates(client, configured) -> None:
    body = json.dumps(product_event("p-auth", minutes=1, title="T")).encode()
    wrong = await client.post(URL, data=body, headers={"X-Internal-Webhook-Secret": "nope",
                                                       "Content-Type": "application/json"})
    assert wrong.status_code == 401
    signed = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    by_hmac = await client.post(URL, data=body, headers={"X-Signature": f"sha256={signed}",
                                                         "Content-Type": "application/json"})
    assert by_hmac.status_code == 202
    again = await client.post(URL, data=body, headers={"X-Internal-Webhook-Secret": SECRET,
                                                       "Content-Type": "application/json"})
    first, second = await by_hmac.get_json(), await again.get_json()
    assert first["event_id"] == second["event_id"] == "sha256:" + hashlib.sha256(body).hexdigest()
    assert first["job_id"] == second["job_id"]  # deduplicated while the first is queued


async def test_bad_bodies_are_refused_with_what_is_wrong(client, configured) -> None:
    headers = {"X-Internal-Webhook-Secret": SECRET, "X-Event-Id": "evt-1"}
    missing_ts = product_event("p", minutes=1, title="T")
    del missing_ts["ts"]
    response = await client.post(URL, json=missing_ts, headers=headers)
    assert response.status_code == 422 and "ts" in (await response.get_json())["errors"]
    not_json = await client.post(URL, data=b"{", headers={**headers, "Content-Type": "application/json"})
    assert not_json.status_code == 400
    huge = await client.post(URL, data=b"x" * (600 * 1024), headers={**headers, "Content-Type": "application/json"})
    assert huge.status_code == 413
    unknown = await client.post("/v1/integrations/payload/user-changed", json={}, headers=headers)
    assert unknown.status_code == 404


async def test_post_seed_needs_admin_and_a_valid_body(client, tokens) -> None:
    from tests.web.conftest import bearer

    body = {"label": "quiet luxury", "image_url": "https://images.example.com/look.jpg"}
    assert (await client.post("/v1/seeds", json=body, headers=bearer(tokens["jobs"]))).status_code == 403
    accepted = await client.post("/v1/seeds", json=body, headers=bearer(tokens["admin"]))
    assert accepted.status_code == 202 and (await accepted.get_json())["job_id"]
    for bad in ({"label": "", "image_url": body["image_url"]}, {"label": "x", "image_url": "file:///etc/passwd"},
                {**body, "extra": True}):
        assert (await client.post("/v1/seeds", json=bad, headers=bearer(tokens["admin"]))).status_code == 422
