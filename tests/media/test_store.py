"""The local content-addressed media store."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from media.store import LocalMediaStore, MediaNotFound, content_key


def test_put_get_roundtrip_is_content_addressed(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path)
    key = store.put(b"jpeg bytes", extension="JPG")
    assert key == hashlib.sha256(b"jpeg bytes").hexdigest() + ".jpg" == content_key(b"jpeg bytes", "jpg")
    assert store.put(b"jpeg bytes", extension="jpg") == key  # idempotent
    assert store.get(key) == b"jpeg bytes" and store.exists(key)
    assert store.path(key).parent.parent.parent == tmp_path


def test_missing_and_malformed_keys(tmp_path: Path) -> None:
    store = LocalMediaStore(tmp_path)
    with pytest.raises(MediaNotFound):
        store.get("0" * 64)
    with pytest.raises(MediaNotFound, match="malformed"):
        store.get("../../etc/passwd")
    assert not store.exists("../x")
