"""The media store interface and its local-directory implementation.

Keys are content addresses (`sha256 hex` + an optional extension), so a key names its bytes
for good: re-hosting the same image yields the same key, and a changed image a new one.
"""
from __future__ import annotations

import hashlib
import os
import re
import tempfile
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[0-9a-f]{64}(\.[a-z0-9]{1,5})?$")


class MediaNotFound(KeyError):
    """No object is stored under this key."""


class MediaStore(Protocol):
    """What the actors need from a media store (an S3 store implements the same three calls)."""

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
            return key
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


def open_store(media_dir: Path | str) -> MediaStore:
    """The configured store (MEDIA_DIR, a local directory, for now)."""
    return LocalMediaStore(media_dir)
