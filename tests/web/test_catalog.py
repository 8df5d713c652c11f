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
    response = await client.post(
        URL, json=product_event("p", minutes=1, title="T"), headers={"X-Internal-Webhook-Secret": SECRET}
    )
    assert response.status_code == 503


async def test_the_secret_or_the_signature_authenticates(client, configured) -> None:
    body = json.dumps(product_event("p-auth", minutes=1, title="T")).encode()
    wrong = await client.post(
        URL, data=body, headers={"X-Internal-Webhook-Secret": "nope", "Content-Type": "application/json"}
    )
    assert wrong.status_code == 401
    signed = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    by_hmac = await client.post(
        URL, data=body, headers={"X-Signature": f"sha256={signed}", "Content-Type": "application/json"}
    )
    assert by_hmac.status_code == 202
    again = await client.post(
        URL, data=body, headers={"X-Internal-Webhook-Secret": SECRET, "Content-Type": "application/json"}
    )
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
    for bad in (
        {"label": "", "image_url": body["image_url"]},
        {"label": "x", "image_url": "file:///etc/passwd"},
        {**body, "extra": True},
        {**body, "label": "a\x00b"},
        {**body, "description": "x\x00"},
    ):
        assert (await client.post("/v1/seeds", json=bad, headers=bearer(tokens["admin"]))).status_code == 422


def image_bytes(image_format: str, size: tuple[int, int] = (32, 24)) -> bytes:
    """A small real image in `image_format`."""
    import io

    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, (200, 30, 90)).save(out, format=image_format)
    return out.getvalue()


@pytest.fixture()
def media_dir(tmp_path, monkeypatch):  # type: ignore[no-untyped-def]
    """A fresh local media store for the web process."""
    from config.settings import get_settings

    settings = get_settings()
    monkeypatch.setattr(settings, "media_dir", tmp_path / "media")
    monkeypatch.setattr(settings, "media_s3_bucket", None)
    return tmp_path / "media"


async def test_an_uploaded_seed_image_is_staged_in_the_media_store_and_enqueued(
    client, tokens, media_dir, redis_client
) -> None:
    from media.store import LocalMediaStore
    from tests.web.conftest import bearer

    png = image_bytes("PNG")
    headers = {**bearer(tokens["admin"]), "Content-Type": "image/png"}
    url = "/v1/seeds/upload?label=quiet%20luxury%20upload&description=Muted"
    denied = await client.post(url, data=png, headers={**headers, **bearer(tokens["jobs"])})
    assert denied.status_code == 403
    accepted = await client.post(url, data=png, headers=headers)
    assert accepted.status_code == 202, await accepted.get_data()
    job_id = (await accepted.get_json())["job_id"]
    record = redis_client.hgetall(f"{_jobs_prefix()}{job_id}")
    assert record[b"actor"] == b"add_seed_upload"
    args = json.loads(record[b"args"])
    key = args["kwargs"]["upload_key"]
    assert key.endswith(".raw") and args["kwargs"]["label"] == "quiet luxury upload"
    assert LocalMediaStore(media_dir).get(key) == png  # staged as it came: the worker re-encodes it


def _jobs_prefix() -> str:
    import actors

    return actors.broker.jobs.keys.job("")


async def test_an_upload_that_is_no_image_is_refused_with_a_4xx(client, tokens, media_dir) -> None:
    from tests.web.conftest import bearer

    url = "/v1/seeds/upload?label=look"
    admin = bearer(tokens["admin"])
    png = image_bytes("PNG")
    for content_type in ("application/json", "text/plain", "image/gif", "application/octet-stream"):
        response = await client.post(url, data=png, headers={**admin, "Content-Type": content_type})
        assert response.status_code == 415, content_type
        assert "image/png" in (await response.get_json())["detail"]
    for data, content_type in (
        (b"not an image at all", "image/png"),
        (png[:60], "image/png"),
        (image_bytes("GIF"), "image/png"),
        (image_bytes("JPEG"), "image/png"),
        (b"", "image/jpeg"),
    ):
        response = await client.post(url, data=data, headers={**admin, "Content-Type": content_type})
        assert response.status_code == 422, (data[:10], content_type)
    too_big = await client.post(
        url, data=b"\xff\xd8" + b"x" * (1024 * 1024), headers={**admin, "Content-Type": "image/jpeg"}
    )
    assert too_big.status_code == 413
    for query in ("", "?label=", f"?label={'x' * 101}", "?label=a%00b", "?label=a&extra=1&description=%00"):
        response = await client.post(
            f"/v1/seeds/upload{query}", data=png, headers={**admin, "Content-Type": "image/png"}
        )
        assert response.status_code == 422, query
    assert not media_dir.exists()  # nothing refused was staged


async def test_an_unwritable_media_store_is_a_503_and_nothing_is_enqueued(
    client, tokens, tmp_path, monkeypatch
) -> None:
    from config.settings import get_settings
    from tests.web.conftest import bearer

    blocked = tmp_path / "a-file"
    blocked.write_text("the media directory cannot be made under a file")
    monkeypatch.setattr(get_settings(), "media_dir", blocked / "media")
    monkeypatch.setattr(get_settings(), "media_s3_bucket", None)
    response = await client.post(
        "/v1/seeds/upload?label=look",
        data=image_bytes("JPEG"),
        headers={**bearer(tokens["admin"]), "Content-Type": "image/jpeg"},
    )
    assert response.status_code == 503 and response.headers["Retry-After"]


async def test_the_upload_is_documented_with_its_body_and_error_answers(client) -> None:
    document = await (await client.get("/openapi.json")).get_json()
    operation = document["paths"]["/v1/seeds/upload"]["post"]
    assert set(operation["requestBody"]["content"]) == {"image/jpeg", "image/png", "image/webp"}
    assert operation["requestBody"]["required"] is True
    assert {"202", "413", "415", "422"} <= set(operation["responses"])
    assert "400" not in operation["responses"]
    assert {p["name"] for p in operation["parameters"] if p["in"] == "query"} == {"label", "description"}
