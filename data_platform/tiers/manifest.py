"""The warm tier's per-month manifest: levels of files, processed slots, a chain of versions.

`<warm>/YYYY/MM/manifest.json` is the head, replaced only with If-Match on the etag it was read at
(If-None-Match for the first). Before a head is written, the same content is stored once as
`versions/<sequence>-<attempt>.json`; the head names it (`version_key`) and the one before it
(`previous`), so every committed version stays readable for rollback until vacuum retires it. A
version file whose head write lost or never happened is referenced by nobody.
"""

from __future__ import annotations

import base64
import json
import logging
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime

from pydantic import TypeAdapter, ValidationError

from data_platform.core.objectstore import (
    ObjectNotFound,
    ObjectStore,
    ObjectStoreError,
    PreconditionFailed,
)
from data_platform.tiers.config import SLOT, TiersError, parse_month

log = logging.getLogger(__name__)

FORMAT = 1
FANOUT = 8  # m: every 8 files of level k merge into one file of level k+1
MANIFEST_NAME = "manifest.json"
VERSIONS_FOLDER = "versions/"
CHECKPOINT_NAME = "checkpoint.parquet"
HEAD_WRITE_TRIES = 3  # head writes that failed while the head stayed at the base version


class CommitLost(PreconditionFailed):
    """Another version replaced the head this commit was based on; this one was not committed."""


class CommitOutcomeUnknown(ObjectStoreError):
    """The head write failed and the head could not tell whether it landed; nothing was deleted."""


class CorruptManifestError(TiersError):
    """A manifest could not be parsed; the message names its key."""


@dataclass(frozen=True)
class FileEntry:
    """One live file: a hot file at level 0 or a merged warm file; from/to are level-0 ordinals."""

    key: str
    level: int
    first: int
    last: int
    bytes: int
    min_time: str
    max_time: str
    rows: int | None = None

    @property
    def min_dt(self) -> datetime:
        return datetime.fromisoformat(self.min_time)

    @property
    def max_dt(self) -> datetime:
        return datetime.fromisoformat(self.max_time)


@dataclass(frozen=True)
class Manifest:
    provider: str
    month: str
    sequence: int = 0
    levels: tuple[tuple[FileEntry, ...], ...] = ()
    processed: bytes = b""  # bitset over the month's slots: bit i = slot i has been compacted
    last_slot: str | None = None  # latest slot compacted so far (ISO); the hot tail starts after
    committed_at: str | None = None
    version_key: str | None = None
    previous: str | None = None
    fanout: int = FANOUT
    format: int = FORMAT
    etag: str | None = field(default=None, compare=False)

    @property
    def processed_count(self) -> int:
        return sum(bin(byte).count("1") for byte in self.processed)

    def is_processed(self, slot: datetime) -> bool:
        index = slot_index(self.month, slot)
        return index // 8 < len(self.processed) and bool(
            self.processed[index // 8] >> index % 8 & 1
        )

    def with_processed(self, slot: datetime) -> Manifest:
        index = slot_index(self.month, slot)
        bits = bytearray(self.processed.ljust(index // 8 + 1, b"\0"))
        bits[index // 8] |= 1 << index % 8
        last = max(self.last_slot or "", slot.isoformat())
        return replace(self, processed=bytes(bits), last_slot=last)

    def live_files(self) -> list[FileEntry]:
        return [entry for level in self.levels for entry in level]

    def to_json(self) -> bytes:
        body = asdict(self)
        body.pop("etag")
        body["processed"] = base64.b64encode(self.processed).decode("ascii")
        body["processed_count"] = self.processed_count
        body["levels"] = [[asdict(e) for e in level] for level in self.levels]
        return json.dumps(body, indent=1, sort_keys=True).encode()

    @classmethod
    def from_json(cls, data: bytes, key: str, etag: str | None = None) -> Manifest:
        try:
            body = json.loads(data)
            if not isinstance(body, dict):
                raise ValueError(f"a JSON {type(body).__name__}, not an object")
            if body.get("format") != FORMAT:
                raise ValueError(f"format {body.get('format')!r}, expected {FORMAT}")
            body.pop("processed_count", None)
            body["processed"] = base64.b64decode(body["processed"])
            return replace(_MANIFEST_FIELDS.validate_python(body), etag=etag)
        except ValidationError as exc:
            error = exc.errors()[0]
            where = ".".join(str(part) for part in error["loc"])
            problem = f"{where}: {error['msg']}"
        except (ValueError, TypeError, KeyError) as exc:
            problem = str(exc)
        raise CorruptManifestError(
            f"manifest {key} is unreadable ({problem}); restore it from its versions/ folder"
        )


# Checks every field's type (nested file entries too) while building a Manifest from JSON.
_MANIFEST_FIELDS = TypeAdapter(Manifest)


def slot_index(month: str, slot: datetime) -> int:
    index, remainder = divmod(slot - parse_month(month), SLOT)
    if remainder or index < 0 or slot >= _month_end(month):
        raise TiersError(f"{slot.isoformat()} is not a 10-minute slot of {month}")
    return index


def _month_end(month: str) -> datetime:
    start = parse_month(month)
    return start.replace(year=start.year + start.month // 12, month=start.month % 12 + 1)


def read_manifest(store: ObjectStore, prefix: str, provider: str, month: str) -> Manifest:
    """The head manifest of `prefix` (a month's warm folder), or an empty one (sequence 0)."""
    key = prefix + MANIFEST_NAME
    try:
        with store.open(key) as stream:
            data = stream.read()
            etag = stream.info.etag
    except ObjectNotFound:
        return Manifest(provider=provider, month=month)
    return Manifest.from_json(data, key, etag)


def read_version(store: ObjectStore, key: str) -> Manifest:
    return Manifest.from_json(store.get(key), key)


def commit_manifest(
    store: ObjectStore, prefix: str, base: Manifest, new: Manifest, attempt: str
) -> Manifest:
    """Store `new` as the version after `base` and return it as committed.

    The version file is written first, so a head always names a version that exists. When the
    head write fails in a way that leaves its outcome unknown (412 on a retry of a write that may
    have landed, a broken connection, a timeout), the head is re-read: a head that names this
    version, or chains to it, means the commit happened; a head still at `base` means it did not,
    and the write is repeated. Raises CommitLost (after deleting the version file, which nobody
    names) only when another version took this one's place; CommitOutcomeUnknown when the head
    cannot tell, in which case nothing is deleted (vacuum collects what nobody names).
    """
    sequence = base.sequence + 1
    version_key = f"{prefix}{VERSIONS_FOLDER}{sequence:08d}-{attempt}.json"
    committed = replace(
        new,
        sequence=sequence,
        committed_at=datetime.now(UTC).isoformat(),
        version_key=version_key,
        previous=base.version_key,
        etag=None,
    )
    data = committed.to_json()
    _put_new(store, version_key, data)
    for _ in range(HEAD_WRITE_TRIES):
        try:
            if base.etag is None:
                etag = store.put_if_absent(prefix + MANIFEST_NAME, data)
            else:
                etag = store.put_if_match(prefix + MANIFEST_NAME, data, base.etag)
            return replace(committed, etag=etag)
        except (ObjectStoreError, OSError) as exc:  # OSError: a client that lets socket errors out
            error = exc
        head = read_manifest(store, prefix, base.provider, base.month)
        if head.sequence == base.sequence and head.version_key == base.version_key:
            continue  # the head has not moved: the write did not land (yet); write it again
        winner = _version_at(store, head, sequence)
        if winner is None:
            break
        if winner.version_key == version_key:
            return replace(committed, etag=head.etag if head.version_key == version_key else None)
        delete_unreferenced(store, [version_key])
        raise CommitLost(
            f"{prefix}{MANIFEST_NAME} moved on to {winner.version_key} while this attempt wrote it"
        )
    raise CommitOutcomeUnknown(
        f"{prefix}{MANIFEST_NAME}: cannot tell whether version {version_key} was committed "
        f"({error}); nothing was deleted: run the command again"
    )


def _put_new(store: ObjectStore, key: str, data: bytes) -> None:
    """Write a uniquely named object; a 412 from a retried write of the same bytes is success."""
    try:
        store.put_if_absent(key, data)
    except PreconditionFailed:
        if store.get(key) != data:
            raise


def _version_at(store: ObjectStore, head: Manifest, sequence: int) -> Manifest | None:
    """The version `head` chains to whose sequence is `sequence`; None if the chain is broken."""
    version = head
    while version.sequence > sequence and version.previous:
        try:
            version = read_version(store, version.previous)
        except ObjectNotFound:
            return None
    return version if version.sequence == sequence else None


def delete_unreferenced(store: ObjectStore, keys: list[str]) -> None:
    """Delete files no committed version names; one that will not go is left for vacuum."""
    for key in keys:
        try:
            store.delete(key)
        except ObjectStoreError:
            log.warning("could not delete %s; vacuum will collect it", key)
