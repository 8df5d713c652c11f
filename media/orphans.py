"""Finding and removing files of the local media store that nothing references any more.

Only files older than a grace period are candidates: a just-rehosted image is written
before the item that references it commits. Abandoned temp files of a crashed write are
candidates too (never referenced by anything).
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from media.store import MediaNotFound, check_key


@dataclass(frozen=True)
class StoredFile:
    """One file of the store: its key (None for a temp file) and path."""

    key: str | None
    path: Path


def old_files(root: Path, *, older_than: float) -> Iterator[StoredFile]:
    """Every media file (and temp file) under `root` last modified before `older_than` (epoch seconds)."""
    for directory, _, names in os.walk(root):
        for name in names:
            is_key, is_temp = _is_key(name), name.startswith(".tmp-")
            if not (is_key or is_temp):
                continue
            path = Path(directory, name)
            try:
                if path.stat().st_mtime < older_than:
                    yield StoredFile(name if is_key else None, path)
            except FileNotFoundError:
                continue


def remove_if_old(path: Path, *, older_than: float) -> bool:
    """Delete `path` unless it was touched since the scan (a rehost reusing it); True when deleted."""
    try:
        if path.stat().st_mtime >= older_than:
            return False
        path.unlink()
        return True
    except FileNotFoundError:
        return False


def _is_key(name: str) -> bool:
    try:
        check_key(name)
    except MediaNotFound:
        return False
    return True
