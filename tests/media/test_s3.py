"""The S3 media store against a real local S3 server (moto's server mode on 127.0.0.1)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace

import boto3
import pytest

from media.s3 import S3MediaStore
from media.store import LocalMediaStore, MediaNotFound, content_key, open_store
from tests.s3_support import CREDENTIALS, moto_server


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    """A moto S3 server on a free loopback port."""
    with moto_server() as endpoint:
        yield endpoint


@pytest.fixture()
def bucket(s3_endpoint: str, request: pytest.FixtureRequest) -> str:
    """A fresh bucket per test."""
    name = "media-" + request.node.name.lower().replace("_", "-")[:40]
    boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS).create_bucket(Bucket=name)
    return name


def settings(s3_endpoint: str, bucket: str | None, media_dir: Path, prefix: str = "") -> SimpleNamespace:
    """What open_store reads from the settings."""
    return SimpleNamespace(
        media_dir=media_dir,
        media_s3_bucket=bucket,
        media_s3_prefix=prefix,
        media_s3_endpoint_url=s3_endpoint,
        media_s3_region="us-east-1",
        media_s3_access_key_id="testing",
        media_s3_secret_access_key="testing",
    )


def test_put_get_exists_round_trip(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    store = open_store(settings(s3_endpoint, bucket, tmp_path, prefix="media/"))
    assert isinstance(store, S3MediaStore)
    key = store.put(b"\xff\xd8jpeg bytes", extension="jpg")
    assert key == content_key(b"\xff\xd8jpeg bytes", "jpg")
    assert store.exists(key) and store.get(key) == b"\xff\xd8jpeg bytes"
    # the object really is in the bucket, under the prefix, with its content type
    raw = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS)
    head = raw.head_object(Bucket=bucket, Key=f"media/{key}")
    assert head["ContentType"] == "image/jpeg" and head["ContentLength"] == len(b"\xff\xd8jpeg bytes")
    assert not list(tmp_path.iterdir())  # nothing went to the local directory


def test_put_is_idempotent_and_content_addressed(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    store = open_store(settings(s3_endpoint, bucket, tmp_path))
    first, again, other = store.put(b"a", extension="png"), store.put(b"a", extension="png"), store.put(b"b")
    assert first == again != other
    listed = boto3.client("s3", endpoint_url=s3_endpoint, **CREDENTIALS).list_objects_v2(Bucket=bucket)
    assert sorted(o["Key"] for o in listed["Contents"]) == sorted([first, other])


def test_missing_and_malformed_keys(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    store = open_store(settings(s3_endpoint, bucket, tmp_path))
    absent = content_key(b"never stored", "jpg")
    assert not store.exists(absent)
    with pytest.raises(MediaNotFound):
        store.get(absent)
    assert not store.exists("../../etc/passwd")
    with pytest.raises(MediaNotFound):
        store.get("../../etc/passwd")


def test_a_second_process_sees_what_the_first_stored(s3_endpoint: str, bucket: str, tmp_path: Path) -> None:
    """Two stores with their own clients (as on two machines) share the bucket."""
    writer = S3MediaStore(
        bucket, endpoint_url=s3_endpoint, region="us-east-1", access_key_id="testing", secret_access_key="testing"
    )
    reader = S3MediaStore(
        bucket, endpoint_url=s3_endpoint, region="us-east-1", access_key_id="testing", secret_access_key="testing"
    )
    key = writer.put(b"shared image", extension="jpg")
    assert reader.get(key) == b"shared image"


def test_other_errors_propagate(s3_endpoint: str, tmp_path: Path) -> None:
    store = S3MediaStore(
        "no-such-bucket",
        endpoint_url=s3_endpoint,
        region="us-east-1",
        access_key_id="testing",
        secret_access_key="testing",
    )
    with pytest.raises(Exception) as caught:
        store.put(b"x")
    assert "NoSuchBucket" in str(caught.value)


def test_open_store_defaults_to_the_local_directory(s3_endpoint: str, tmp_path: Path) -> None:
    assert isinstance(open_store(settings(s3_endpoint, None, tmp_path)), LocalMediaStore)
    assert isinstance(open_store(tmp_path), LocalMediaStore)
    same = settings(s3_endpoint, "one-bucket", tmp_path)
    assert open_store(same) is open_store(same)  # one client per process and configuration
