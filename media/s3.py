"""An S3-compatible media store (AWS S3, MinIO, R2...): one bucket that every worker machine shares.

boto3 is blocking: async callers run these methods with `asyncio.to_thread`. A boto3 client is
thread-safe, so one store (one client, one connection pool) serves a whole process.
"""

from __future__ import annotations

import mimetypes
from typing import Any

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from media.store import MediaNotFound, check_key, content_key

_MISSING = {"404", "NoSuchKey", "NotFound"}


class S3MediaStore:
    """Objects under `prefix + key` in one bucket; keys are content addresses, so a put is idempotent."""

    def __init__(
        self,
        bucket: str,
        *,
        prefix: str = "",
        endpoint_url: str | None = None,
        region: str | None = None,
        access_key_id: str | None = None,
        secret_access_key: str | None = None,
        client: Any = None,
    ) -> None:
        self.bucket = bucket
        self.prefix = prefix
        self.client = client or boto3.client(
            "s3",
            endpoint_url=endpoint_url,
            region_name=region,
            aws_access_key_id=access_key_id,
            aws_secret_access_key=secret_access_key,
            config=Config(
                retries={"max_attempts": 5, "mode": "standard"},
                connect_timeout=5,
                read_timeout=30,
                max_pool_connections=16,
            ),
        )

    def object_key(self, key: str) -> str:
        """The bucket key that `key` is stored under."""
        return self.prefix + check_key(key)

    def get(self, key: str) -> bytes:
        """The bytes stored under `key`; MediaNotFound when absent."""
        try:
            reply = self.client.get_object(Bucket=self.bucket, Key=self.object_key(key))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                raise MediaNotFound(f"no media stored under {key}") from None
            raise
        return reply["Body"].read()

    def put(self, data: bytes, *, extension: str = "") -> str:
        """Store `data`; returns its content-addressed key (the same bytes under the same key: idempotent).

        No existence check first: one request for a new image, and a reused one gets a fresh
        LastModified, so an orphan purge's grace period counts from its reuse.
        """
        key = content_key(data, extension)
        content_type = mimetypes.guess_type(f"x.{extension}")[0] if extension else None
        self.client.put_object(
            Bucket=self.bucket,
            Key=self.object_key(key),
            Body=data,
            ContentType=content_type or "application/octet-stream",
            CacheControl="public, max-age=31536000, immutable",
        )
        return key

    def exists(self, key: str) -> bool:
        """True when `key` is stored."""
        try:
            object_key = self.object_key(key)
        except MediaNotFound:
            return False
        try:
            self.client.head_object(Bucket=self.bucket, Key=object_key)
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in _MISSING:
                return False
            raise
        return True
