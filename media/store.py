"""The media store interface and its local-directory implementation.

Keys are content addresses (`sha256 hex` + an optional extension), so a key names its bytes
for good: re-hosting the same image yields the same key, and a changed image a new one.
"""

from __future__ import annotations

import functools
import hashlib
import os
import re
import tempfile
import threading
from pathlib import Path
from typing import Any, Protocol

_KEY = re.compile(r"^[0-9a-f]{64}(\.[a-z0-9]{1,5})?$")


class MediaNotFound(KeyError):
    """No object is stored under this key."""


class MediaStore(Protocol):
    """What the actors need from a media store (media.s3.S3MediaStore implements the same three calls)."""

    def get(self, key: str) -> bytes:
        """The bytes stored under `key`; MediaNotFound when absent."""
        ...

    def put(self, data: bytes, *, extension: str = "") -> str:
        """Store `data`; returns its content-addressed key (idempotent)."""
        ...

    def exists(self, key: str) -> bool:
        """True when `key` is stored."""
        ...


def content_key(data: bytes, extension: str = "") -> str:
    """The content address of `data`: its sha256 hex, plus `.ext` when given."""
    suffix = f".{extension.lower().lstrip('.')}" if extension else ""
    return hashlib.sha256(data).hexdigest() + suffix


def check_key(key: str) -> str:
    """Return `key` if it is a well-formed content address, else raise MediaNotFound."""
    if not _KEY.match(key):
        raise MediaNotFound(f"malformed media key {key!r}")
    return key


class LocalMediaStore:
    """Objects as files under `root/ab/cd/<key>` (written atomically)."""

    def __init__(self, root: Path | str) -> None:
        self.root = Path(root)

    def path(self, key: str) -> Path:
        """Where `key` lives on disk."""
        check_key(key)
        return self.root / key[:2] / key[2:4] / key

    def get(self, key: str) -> bytes:
        """The bytes stored under `key`; MediaNotFound when absent."""
        try:
            return self.path(key).read_bytes()
        except FileNotFoundError:
            raise MediaNotFound(f"no media stored under {key}") from None

    def put(self, data: bytes, *, extension: str = "") -> str:
        """Store `data` (a no-op when already there); returns its key."""
        key = content_key(data, extension)
        target = self.path(key)
        if target.exists():
            try:  # a fresh mtime keeps a reused file out of the orphan purge's reach (media/orphans.py)
                os.utime(target)
                return key
            except FileNotFoundError:  # purged just now: write it again
                pass
        target.parent.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(dir=target.parent, prefix=".tmp-")
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temp, target)
        return key

    def exists(self, key: str) -> bool:
        """True when `key` is stored."""
        try:
            return self.path(key).is_file()
        except MediaNotFound:
            return False


class MediaSettings(Protocol):
    """The settings that choose a store (config.settings.Settings has them)."""

    media_dir: Path
    media_s3_bucket: str | None
    media_s3_prefix: str
    media_s3_endpoint_url: str | None
    media_s3_region: str | None
    media_s3_access_key_id: str | None
    media_s3_secret_access_key: Any


def open_store(config: MediaSettings | Path | str) -> MediaStore:
    """The configured store: the S3 bucket when MEDIA_S3_BUCKET is set, else the MEDIA_DIR directory.

    S3 stores are built once per process and configuration (a boto3 client owns a connection pool).
    """
    if isinstance(config, (Path, str)):
        return LocalMediaStore(config)
    if not config.media_s3_bucket:
        return LocalMediaStore(config.media_dir)
    secret = config.media_s3_secret_access_key
    return _s3_store(
        config.media_s3_bucket,
        config.media_s3_prefix,
        config.media_s3_endpoint_url,
        config.media_s3_region,
        config.media_s3_access_key_id,
        secret.get_secret_value() if hasattr(secret, "get_secret_value") else secret,
    )


_s3_lock = threading.Lock()


@functools.lru_cache(maxsize=8)
def _cached_s3_store(*args: str | None) -> MediaStore:
    from media.s3 import S3MediaStore  # boto3 is imported only by processes that use S3

    bucket, prefix, endpoint_url, region, key_id, secret = args
    return S3MediaStore(
        bucket or "",
        prefix=prefix or "",
        endpoint_url=endpoint_url,
        region=region,
        access_key_id=key_id,
        secret_access_key=secret,
    )


def _s3_store(*args: str | None) -> MediaStore:
    with _s3_lock:  # building boto3 clients from several threads at once is not safe
        return _cached_s3_store(*args)
