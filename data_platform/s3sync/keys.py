"""Mapping between local relative paths and S3 keys under a prefix."""

from __future__ import annotations

import os
from pathlib import Path


class UnsafeKeyError(ValueError):
    """An object key that would land outside the local directory."""


def normalize_prefix(prefix: str) -> str:
    """'data', 'data/' and '/data/' all mean folder 'data/'; '' or '/' is the whole bucket."""
    stripped = prefix.strip("/")
    return f"{stripped}/" if stripped else ""


def key_for(prefix: str, relative_path: str) -> str:
    """S3 key of a local file given its path relative to the synced directory (the OS separator
    becomes "/"). Plain string work: a sync computes thousands of these."""
    return normalize_prefix(prefix) + relative_path.replace(os.sep, "/")


def is_folder_marker(key: str) -> bool:
    """Zero-byte 'folder/' objects that consoles create; they have no local file."""
    return key.endswith("/")


def relative_path_for(prefix: str, key: str) -> str:
    """Local relative path (POSIX) of `key`; refuses keys that would escape the local directory."""
    normalized = normalize_prefix(prefix)
    if not key.startswith(normalized):
        raise UnsafeKeyError(f"key {key!r} is not under prefix {normalized!r}")
    relative = key[len(normalized) :]
    parts = relative.split("/")
    if not relative or any(part in ("", ".", "..") for part in parts) or "\x00" in relative:
        raise UnsafeKeyError(
            f"refusing key {key!r}: its path {relative!r} has empty, '.' or '..' segments "
            "and could land outside the local directory"
        )
    return relative


def local_path_for(local_dir: Path, prefix: str, key: str) -> Path:
    """Absolute local destination of `key` under `local_dir`, guaranteed to stay inside it."""
    relative = relative_path_for(prefix, key)
    root = os.path.abspath(local_dir)
    target = os.path.join(root, *relative.split("/"))
    # Segments that are neither empty, "." nor ".." cannot leave `root` where "/" is the only
    # separator; elsewhere ("\\" on Windows) the resolved path is checked.
    if os.sep != "/" or os.altsep:
        target = os.path.abspath(target)
        if os.path.commonpath([root, target]) != root:
            raise UnsafeKeyError(f"refusing key {key!r}: it resolves outside {root}")
    return Path(target)
