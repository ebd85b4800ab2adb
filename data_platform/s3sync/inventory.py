"""What is on each side: a recursive scan of the local directory and one listing of the prefix."""

from __future__ import annotations

import logging
import os
import re
import stat as stat_module
from dataclasses import dataclass
from pathlib import Path

from data_platform.core.objectstore import ObjectInfo
from data_platform.s3sync.remote import Remote, RemoteError

log = logging.getLogger(__name__)

_INVALID_PATH = re.compile(r'Error parsing Path "([^"]*)"')
# Downloads write here first and rename; an interrupted run may leave one behind.
TEMP_SUFFIX = ".s3sync-tmp"
# The bookkeeping folder of a local-folder object store (core.objectstore_local.RESERVED).
LOCAL_STORE_BOOKKEEPING = ".objectstore"


class SyncError(Exception):
    """A problem that stops the whole sync before anything is transferred."""


class Cancelled(Exception):
    """The sync is stopping (SIGTERM or Ctrl-C): a transfer in flight cleans up and ends."""

    def __str__(self) -> str:
        return "stopped before it finished"


@dataclass(frozen=True)
class LocalFile:
    relative: str  # POSIX path relative to the synced directory
    path: Path
    stat: os.stat_result

    @property
    def size(self) -> int:
        return self.stat.st_size


@dataclass(frozen=True)
class Failure:
    name: str  # relative path or key
    reason: str


NOT_UTF8 = "file name is not valid UTF-8 (S3 keys must be); rename the file"


def is_utf8(name: str) -> bool:
    """False for names the OS handed over with undecodable bytes (surrogate escapes)."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable(name: str) -> str:
    """The name with undecodable bytes shown as \\xNN, safe to print on any terminal."""
    return os.fsencode(name).decode("utf-8", "backslashreplace")


def describe_os_error(exc: OSError) -> str:
    reason = exc.strerror or str(exc)
    if isinstance(exc, FileNotFoundError) and exc.filename:
        path = Path(exc.filename)
        if path.is_symlink():
            return f"{reason} (broken symlink to {os.readlink(path)})"
    return reason


def scan_local_dir(root: Path) -> tuple[list[LocalFile], list[Failure]]:
    """Regular files under `root` (symlinks followed, loops skipped) and unreadable entries."""
    files: list[LocalFile] = []
    problems: list[Failure] = []
    seen_dirs: set[tuple[int, int]] = set()
    pending: list[tuple[str, str]] = [(str(root), "")]
    while pending:
        directory, relative_dir = pending.pop()
        dir_stat = os.stat(directory)
        identity = (dir_stat.st_dev, dir_stat.st_ino)
        if identity in seen_dirs:
            log.warning("skipping %s: directory already visited (symlink loop?)", directory)
            continue
        seen_dirs.add(identity)
        try:
            entries = list(os.scandir(directory))
        except OSError as exc:
            problems.append(Failure(relative_dir or ".", f"cannot list: {describe_os_error(exc)}"))
            continue
        for entry in entries:
            relative = relative_dir + entry.name
            if entry.name.endswith(TEMP_SUFFIX):
                continue
            if not relative_dir and entry.name == LOCAL_STORE_BOOKKEEPING:
                continue  # a local object store's sidecars and locks, not its objects
            if not is_utf8(entry.name):
                problems.append(Failure(printable(relative), NOT_UTF8))
                continue
            try:
                entry_stat = entry.stat()
            except OSError as exc:
                exc.filename = exc.filename or entry.path
                problems.append(Failure(relative, describe_os_error(exc)))
                continue
            if stat_module.S_ISDIR(entry_stat.st_mode):
                pending.append((entry.path, relative + "/"))
            elif stat_module.S_ISREG(entry_stat.st_mode):
                files.append(LocalFile(relative, Path(entry.path), entry_stat))
            else:
                problems.append(Failure(relative, "not a regular file (FIFO, socket or device)"))
    files.sort(key=lambda item: item.relative)
    return files, problems


def client_error_code(exc: Exception) -> str:
    return exc.code if isinstance(exc, RemoteError) else ""


_TRANSFER_ERRORS = {
    "PreconditionFailed": "the object changed since it was listed; run the sync again",
    "NoSuchKey": "the object was deleted since it was listed",
    "AccessDenied": "access denied; check the profile's permissions for this key",
    "BadDigest": "the bytes arrived corrupted (MD5 mismatch); run the sync again",
}


def describe_transfer_error(exc: Exception) -> str:
    """One line for the failure list: the OS reason, or the S3 error code with advice."""
    if isinstance(exc, OSError):
        return describe_os_error(exc)
    code = client_error_code(exc)
    return f"{code}: {_TRANSFER_ERRORS[code]}" if code in _TRANSFER_ERRORS else str(exc)


def explain_listing_error(exc: Exception, bucket: str, prefix: str) -> SyncError:
    code = client_error_code(exc)
    where = f"s3://{bucket}/{prefix}"
    if code in ("NoSuchBucket", "404"):
        return SyncError(f"bucket {bucket!r} does not exist; create it or check --bucket")
    if code in ("AccessDenied", "403", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
        return SyncError(f"access denied listing {where} ({code}); check --profile and MFA")
    if code:
        return SyncError(f"listing {where} failed: {exc}")
    bad_key = _INVALID_PATH.search(str(exc))
    if bad_key:
        return SyncError(
            f"{where} holds the key {bad_key[1]!r}, which cannot be a file path (empty, '.' or "
            "'..' segments); nothing was transferred: rename or delete that object"
        )
    return SyncError(f"cannot reach S3 to list {where}: {exc}; check --endpoint-url/--region")


def request_errors() -> tuple[type[Exception], ...]:
    """What a failed S3 request raises."""
    return (RemoteError,)


def body_errors() -> tuple[type[Exception], ...]:
    """What reading a response body that breaks off raises (obstore's errors while streaming)."""
    from obstore.exceptions import BaseError

    return (RemoteError, BaseError, ConnectionError, TimeoutError)


def list_remote(remote: Remote, prefix: str) -> dict[str, ObjectInfo]:
    """Every object under `prefix`, from one paginated listing (no HEAD per object)."""
    try:
        return {info.key: info for info in remote.list(prefix)}
    except request_errors() as exc:
        raise explain_listing_error(exc, remote.bucket, prefix) from None
